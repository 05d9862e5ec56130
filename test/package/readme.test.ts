/**
 * The docs compile: every ```ts block of README.md and docs/*.md is type-checked under the
 * project's compiler options (strict) against the package as installed from its packed
 * tarball (test/helpers/packed.ts), as a user's code would be. Each block becomes a module
 * of its own, importing from a copy of test/readme/prelude.ts only the names it uses and
 * does not declare: an application's own parts (an `app`, a catalog of an earlier block, an
 * SDK), never the package's or a library's exports, which a block imports itself so that
 * it runs as pasted. A block whose first line is `// name.ts` is that file of its page
 * (the README's quick start: events.ts, server.ts, client.ts). All blocks are checked by
 * one TypeScript program, with `skipLibCheck: false`, by the pinned compiler (its API, for
 * the Markdown lines) and by TypeScript 7 (its tsc, the compiler `npm i typescript` gives
 * users). An error names the file and line it is on.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { basename, join, relative, resolve } from 'node:path'
import t from 'tap'
import ts from 'typescript'
import { installPacked, PACK_TIMEOUT_MS, packOnce, ROOT, runTsc, tscOf } from '../helpers/packed.js'

const PRELUDE = join(ROOT, 'test', 'readme', 'prelude.ts')
/** The Markdown files whose blocks are checked, relative to the repository. */
const PAGES = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((name) => name.endsWith('.md')).sort().map((name) => `docs/${name}`)]
/** The prelude imports the sources (so `tsc -p tsconfig.json` checks it); its copy imports the package. */
const PACKAGE_SPECIFIERS: Record<string, string> = {
  '../../lib/index.js': 'fastify-typed-sse',
  '../../lib/client.js': 'fastify-typed-sse/client',
  '../../lib/redis.js': 'fastify-typed-sse/redis'
}
/** `// events.ts` on a block's first line: the block is that file. */
const FILE_MARKER = /^\/\/ ([\w.-]+\.ts)$/

/** How long one compiler may take over every block. */
const COMPILE_TIMEOUT_MS = 180_000

t.setTimeout(PACK_TIMEOUT_MS + 2 * COMPILE_TIMEOUT_MS)

/** One ```ts block: its code (indentation of a list item removed) and the README line of its first code line. */
interface Block {
  code: string
  line: number
}

/** Every ```ts block of a Markdown text, in order. */
function tsBlocks (markdown: string): Block[] {
  const blocks: Block[] = []
  const lines = markdown.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```ts\s*$/.exec(lines[i])
    if (open === null) continue
    const indent = open[1].length
    const start = i + 1
    let end = start
    while (end < lines.length && !/^\s*```\s*$/.test(lines[end])) end++
    if (end === lines.length) throw new Error(`line ${i + 1}: a \`\`\`ts block that never closes`)
    blocks.push({ code: lines.slice(start, end).map((line) => line.slice(indent)).join('\n'), line: start + 1 })
    i = end
  }
  return blocks
}

/**
 * The names a module exports, each marked whether it is only a type (imported with
 * `type` under verbatimModuleSyntax), read from its syntax: a type-checked program
 * for this would double the test's time.
 */
function exportedNames (file: string): Map<string, 'type' | 'value'> {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS)
  const names = new Map<string, 'type' | 'value'>()
  const isExported = (node: ts.Node): boolean => ts.canHaveModifiers(node) && (ts.getModifiers(node) ?? []).some((modifier) => modifier.kind === ts.SyntaxKind.ExportKeyword)
  for (const statement of source.statements) {
    if (ts.isExportDeclaration(statement) && statement.exportClause !== undefined && ts.isNamedExports(statement.exportClause)) {
      for (const element of statement.exportClause.elements) names.set(element.name.text, statement.isTypeOnly || element.isTypeOnly ? 'type' : 'value')
    } else if (ts.isVariableStatement(statement) && isExported(statement)) {
      for (const declaration of statement.declarationList.declarations) if (ts.isIdentifier(declaration.name)) names.set(declaration.name.text, 'value')
    } else if ((ts.isFunctionDeclaration(statement) || ts.isClassDeclaration(statement)) && statement.name !== undefined && isExported(statement)) {
      names.set(statement.name.text, 'value')
    } else if ((ts.isInterfaceDeclaration(statement) || ts.isTypeAliasDeclaration(statement)) && isExported(statement)) {
      names.set(statement.name.text, 'type')
    }
  }
  return names
}

/** Names a block declares at its top level (imports included), and every identifier it mentions. */
function namesOf (code: string): { declared: Set<string>, used: Set<string> } {
  const source = ts.createSourceFile('block.ts', code, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS)
  const declared = new Set<string>()
  const used = new Set<string>()
  const declareBinding = (name: ts.BindingName): void => {
    if (ts.isIdentifier(name)) declared.add(name.text)
    else for (const element of name.elements) if (!ts.isOmittedExpression(element)) declareBinding(element.name)
  }
  for (const statement of source.statements) {
    if (ts.isVariableStatement(statement)) for (const declaration of statement.declarationList.declarations) declareBinding(declaration.name)
    else if ((ts.isFunctionDeclaration(statement) || ts.isClassDeclaration(statement) || ts.isInterfaceDeclaration(statement) || ts.isTypeAliasDeclaration(statement)) && statement.name !== undefined) declared.add(statement.name.text)
    else if (ts.isImportDeclaration(statement) && statement.importClause !== undefined) {
      const { name, namedBindings } = statement.importClause
      if (name !== undefined) declared.add(name.text)
      if (namedBindings !== undefined && ts.isNamespaceImport(namedBindings)) declared.add(namedBindings.name.text)
      if (namedBindings !== undefined && ts.isNamedImports(namedBindings)) for (const element of namedBindings.elements) declared.add(element.name.text)
    }
  }
  const visit = (node: ts.Node): void => {
    if (ts.isIdentifier(node)) used.add(node.text)
    ts.forEachChild(node, visit)
  }
  visit(source)
  return { declared, used }
}

/** The project's compiler options, as a user's strict app would have them, for the folder `dir`. */
function blocksConfig (dir: string, files: string[]): object {
  return {
    extends: join(relative(dir, ROOT), 'tsconfig.json'),
    compilerOptions: {
      noEmit: true,
      // Every library's types checked too, as in a user's project that keeps the default.
      skipLibCheck: false,
      // Blocks show a handler's full signature and declare names for the reader: unused is fine.
      noUnusedLocals: false,
      noUnusedParameters: false,
      rootDir: '.'
    },
    // The files by name; the base's `include` (the repository's sources) is not inherited.
    files,
    include: []
  }
}

/** {@link blocksConfig} parsed by the pinned compiler, for its API. */
function compilerOptions (dir: string): ts.CompilerOptions {
  const config = { ...blocksConfig(dir, []), files: undefined }
  const parsed = ts.parseJsonConfigFileContent(config, ts.sys, dir)
  // TS18003 "no inputs": the program gets its files by name, not from `include`.
  const errors = parsed.errors.filter((error) => error.code !== 18003)
  if (errors.length > 0) throw new Error(ts.formatDiagnostics(errors, formatHost))
  return parsed.options
}

const formatHost: ts.FormatDiagnosticsHost = {
  getCanonicalFileName: (name) => name,
  getCurrentDirectory: () => ROOT,
  getNewLine: () => '\n'
}

t.test('every ```ts block of the README and docs/ type-checks under strict against the packed package', async (t) => {
  const packed = await packOnce()
  // Inside the repository, so the package's dependencies resolve; .scratch/ is git-ignored.
  mkdirSync(join(ROOT, '.scratch'), { recursive: true })
  const dir = mkdtempSync(join(ROOT, '.scratch', 'readme-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  await installPacked(dir, packed)
  const options = compilerOptions(dir)
  const preludeNames = exportedNames(PRELUDE)
  let prelude = readFileSync(PRELUDE, 'utf8')
  for (const [source, name] of Object.entries(PACKAGE_SPECIFIERS)) prelude = prelude.replaceAll(`'${source}'`, `'${name}'`)
  writeFileSync(join(dir, 'prelude.ts'), prelude)

  const files = new Map<string, Block & { page: string, preludeLines: number }>()
  let count = 0
  for (const page of PAGES) {
    const pageDir = join(dir, page.replace(/\.md$/, '').replace('/', '-'))
    mkdirSync(pageDir)
    const blocks = tsBlocks(readFileSync(join(ROOT, page), 'utf8'))
    count += blocks.length
    const named = new Set(blocks.map((block) => FILE_MARKER.exec(block.code.split('\n')[0])?.[1]).filter((name) => name !== undefined))
    // Client blocks import their catalog from './events.js', as an app would; unless the page writes its own.
    if (!named.has('events.ts')) writeFileSync(join(pageDir, 'events.ts'), "export { clock, llm } from '../prelude.js'\n")
    for (const block of blocks) {
      const { declared, used } = namesOf(block.code)
      const needed = [...used].filter((name) => preludeNames.has(name) && !declared.has(name)).sort()
        .map((name) => preludeNames.get(name) === 'type' ? `type ${name}` : name)
      const header = needed.length > 0 ? `import { ${needed.join(', ')} } from '../prelude.js'\n` : ''
      // `export {}` makes a block without imports a module too, so blocks never share a scope.
      const preamble = `${header}export {}\n`
      const name = FILE_MARKER.exec(block.code.split('\n')[0])?.[1] ?? `block-${block.line}.ts`
      const file = join(pageDir, name)
      writeFileSync(file, `${preamble}${block.code}\n`)
      files.set(file, { ...block, page, preludeLines: preamble.split('\n').length - 1 })
    }
  }
  t.ok(count >= 25, `${count} blocks found in ${PAGES.length} pages`)

  const program = ts.createProgram([...files.keys()], options)
  // Only the blocks' own diagnostics: the package is checked by test/package/consumer.test.ts.
  const diagnostics = [
    ...program.getOptionsDiagnostics(),
    ...program.getGlobalDiagnostics(),
    ...[...files.keys()].flatMap((file) => {
      const source = program.getSourceFile(file)
      return source === undefined ? [] : [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)]
    })
  ]
  const problems = diagnostics.map((diagnostic) => {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')
    const block = diagnostic.file === undefined ? undefined : files.get(resolve(diagnostic.file.fileName))
    if (diagnostic.file === undefined || diagnostic.start === undefined || block === undefined) {
      return `${diagnostic.file === undefined ? '(program)' : basename(diagnostic.file.fileName)}: TS${diagnostic.code}: ${message}`
    }
    const { line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start)
    return `${block.page}:${block.line + line - block.preludeLines}: TS${diagnostic.code}: ${message}`
  })
  t.same(problems, [], 'no compile error in any block')

  // TypeScript 7 on the same files: its tsc prints `file(line,col): error TSn: message`.
  const tsc7 = tscOf('typescript7')
  if (tsc7 === undefined) {
    t.fail('"typescript7" is not installed (a devDependency: run npm ci)')
    return
  }
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify(blocksConfig(dir, [...files.keys()].map((file) => relative(dir, file))), null, 2))
  const output = await runTsc(tsc7, ['-p', 'tsconfig.json', '--pretty', 'false'], dir, COMPILE_TIMEOUT_MS)
  const problems7 = output.split('\n').filter((line) => line.trim() !== '').map((line) => {
    const at = /^(.+?)\((\d+),\d+\): (.*)$/.exec(line)
    const block = at === null ? undefined : files.get(resolve(dir, at[1]))
    return at === null || block === undefined ? line : `${block.page}:${block.line + Number(at[2]) - 1 - block.preludeLines}: ${at[3]}`
  })
  t.same(problems7, [], 'no compile error in any block under TypeScript 7')
})
