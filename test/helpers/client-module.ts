/**
 * The typed client as a browser loads it (compiled by the example's own helper, with
 * the project's compiler options, in memory: no build, and no race with one), and a
 * check of what a module imports.
 */
import ts from 'typescript'

export { compileClientModule } from '../../example/client-module.js'

/**
 * Every module specifier a JavaScript source imports or re-exports, static or dynamic.
 *
 * @example
 * moduleImports("import { a } from './a.js'; export * from 'b'") // ['./a.js', 'b']
 */
export function moduleImports (source: string): string[] {
  return ts.preProcessFile(source, true, true).importedFiles.map((file) => file.fileName)
}
