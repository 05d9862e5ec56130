/**
 * The typed client as the example page loads it: `/client/client.js`, a plain ES
 * module with no imports. Built (`npm start`), it is dist/lib/client.js; from source
 * (tests, tsx), lib/client.ts compiled alone with the project's compiler options,
 * which gives the same output (the project sets `isolatedModules`).
 */
import { existsSync, readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'

/** dist/lib/client.js next to dist/example/, or lib/client.js (absent) next to example/. */
const BUILT_CLIENT = fileURLToPath(new URL('../lib/client.js', import.meta.url))
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const CLIENT_SOURCE = `${ROOT}/lib/client.ts`

/**
 * The JavaScript of lib/client.ts, compiled with tsconfig.json's options. TypeScript
 * is loaded only here, so the built example does not need it.
 *
 * @example
 * const source = await compileClientModule()
 */
export async function compileClientModule (): Promise<string> {
  const { default: ts } = await import('typescript')
  const config = ts.readConfigFile(`${ROOT}/tsconfig.json`, ts.sys.readFile)
  const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT)
  const output = ts.transpileModule(readFileSync(CLIENT_SOURCE, 'utf8'), {
    compilerOptions: { ...options, sourceMap: false, declaration: false },
    // Under NodeNext a .ts file is an ES module because package.json says "type":
    // "module", which transpileModule does not read; the .mts name says the same.
    fileName: CLIENT_SOURCE.replace(/\.ts$/, '.mts'),
    reportDiagnostics: true
  })
  if (output.diagnostics !== undefined && output.diagnostics.length > 0) {
    throw new Error(ts.formatDiagnostics(output.diagnostics, {
      getCanonicalFileName: (name) => name, getCurrentDirectory: () => ROOT, getNewLine: () => '\n'
    }))
  }
  return output.outputText
}

/**
 * Serves the typed client at `GET /client/client.js`, for `import { createClient } from '/client/client.js'`.
 *
 * @example
 * registerClientModule(app)
 */
export function registerClientModule (app: FastifyInstance): void {
  let source: Promise<string> | undefined
  app.get('/client/client.js', async (_request, reply) => {
    source ??= existsSync(BUILT_CLIENT) ? readFile(BUILT_CLIENT, 'utf8') : compileClientModule()
    return await reply.type('text/javascript; charset=utf-8').send(await source)
  })
}
