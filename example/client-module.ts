/**
 * The typed client as the example page loads it: `/client/client.js`, a plain ES
 * module, and the files of lib/client/ it imports by relative path, which the
 * browser fetches as `/client/client/<name>.js`. Built (`npm start`), they are
 * dist/lib/client.js and dist/lib/client/; from source (tests, tsx), each .ts file
 * compiled alone with the project's compiler options, which gives the same output
 * (the project sets `isolatedModules`).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'

/** dist/lib/ next to dist/example/, or lib/ next to example/ (where client.js is absent). */
const BUILT_LIB = fileURLToPath(new URL('../lib/', import.meta.url))
const ROOT = fileURLToPath(new URL('..', import.meta.url))

/**
 * The modules of the client, by path under lib/ without extension: `client`, the
 * entry, and every file of lib/client/.
 *
 * @example
 * clientModules() // ['client', 'client/backoff', 'client/errors', ...]
 */
export function clientModules (): string[] {
  // Sources (.ts) next to example/, or the build (.js, beside its .d.ts) next to dist/example/.
  const names = readdirSync(`${ROOT}/lib/client`)
    .filter((name) => /\.[jt]s$/.test(name) && !name.endsWith('.d.ts'))
    .map((name) => `client/${name.slice(0, -3)}`)
  return ['client', ...new Set(names)].sort()
}

/** TypeScript and the project's compiler options, loaded once (reading tsconfig.json lists every project file). */
let compiler: Promise<{ ts: typeof import('typescript'), options: import('typescript').CompilerOptions }> | undefined

async function loadCompiler (): Promise<{ ts: typeof import('typescript'), options: import('typescript').CompilerOptions }> {
  const { default: ts } = await import('typescript')
  const config = ts.readConfigFile(`${ROOT}/tsconfig.json`, ts.sys.readFile)
  return { ts, options: ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT).options }
}

/**
 * The JavaScript of one client module (`client`, or `client/<name>`), compiled with
 * tsconfig.json's options. TypeScript is loaded only here, so the built example does
 * not need it.
 *
 * @example
 * const source = await compileClientModule()
 * const parser = await compileClientModule('client/parser')
 */
export async function compileClientModule (module = 'client'): Promise<string> {
  if (!clientModules().includes(module)) throw new Error(`Not a client module: ${module}`)
  const source = `${ROOT}/lib/${module}.ts`
  const { ts, options } = await (compiler ??= loadCompiler())
  const output = ts.transpileModule(readFileSync(source, 'utf8'), {
    compilerOptions: { ...options, sourceMap: false, declaration: false },
    // Under NodeNext a .ts file is an ES module because package.json says "type":
    // "module", which transpileModule does not read; the .mts name says the same.
    fileName: source.replace(/\.ts$/, '.mts'),
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
 * Serves the typed client at `GET /client/client.js` (for
 * `import { createClient } from '/client/client.js'`) and the files it imports at
 * `GET /client/client/<name>.js`. Only the client's own modules are served.
 *
 * @example
 * registerClientModule(app)
 */
export function registerClientModule (app: FastifyInstance): void {
  const sources = new Map<string, Promise<string>>()
  const isBuilt = existsSync(`${BUILT_LIB}client.js`)
  const serve = (module: string): Promise<string> => {
    let source = sources.get(module)
    if (source === undefined) {
      source = isBuilt ? readFile(`${BUILT_LIB}${module}.js`, 'utf8') : compileClientModule(module)
      sources.set(module, source)
    }
    return source
  }
  const modules = new Set(clientModules())
  app.get('/client/client.js', async (_request, reply) => {
    return await reply.type('text/javascript; charset=utf-8').send(await serve('client'))
  })
  app.get<{ Params: { name: string } }>('/client/client/:name', async (request, reply) => {
    const module = `client/${request.params.name.replace(/\.js$/, '')}`
    if (!request.params.name.endsWith('.js') || !modules.has(module)) return await reply.code(404).send()
    return await reply.type('text/javascript; charset=utf-8').send(await serve(module))
  })
}
