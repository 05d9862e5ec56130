/**
 * The typed client as a browser loads it (compiled by the example's own helper, with
 * the project's compiler options, in memory: no build, and no race with one), a
 * check of what a module imports, and the client bundled and minified as a page
 * with a bundler would ship it (for its size).
 */
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import ts from 'typescript'

export { clientModules, compileClientModule } from '../../example/client-module.js'

/**
 * Every module specifier a JavaScript source imports or re-exports, static or dynamic.
 *
 * @example
 * moduleImports("import { a } from './a.js'; export * from 'b'") // ['./a.js', 'b']
 */
export function moduleImports (source: string): string[] {
  return ts.preProcessFile(source, true, true).importedFiles.map((file) => file.fileName)
}

/**
 * lib/client.ts and what it imports, bundled into one minified ES module by esbuild
 * (which tsx brings), as a page with a bundler would ship it.
 *
 * @example
 * const minified = await bundleClient()
 */
export async function bundleClient (): Promise<string> {
  const result = await build({
    entryPoints: [fileURLToPath(new URL('../../lib/client.ts', import.meta.url))],
    bundle: true,
    minify: true,
    format: 'esm',
    target: 'es2022',
    write: false,
    logLevel: 'silent'
  })
  return result.outputFiles[0].text
}
