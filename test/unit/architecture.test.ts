/**
 * The layout of lib/ is checked, not only drawn: every import of every lib file
 * (static, dynamic, re-exports, and `import type` too) is held against its folder's
 * allow-list, and neither folders nor files import each other in a circle. The map in
 * lib/index.ts and docs/architecture.md say what this test enforces, no more.
 *
 * Run-time and type-only imports are told apart only for the client: it may take types
 * from core/ (the catalog's and the control events'), never code. Under
 * `verbatimModuleSyntax`, `import { type A }` stays an import at run time, so only
 * `import type` and `export type` count as type-only.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import ts from 'typescript'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const LIB = join(ROOT, 'lib')

/**
 * The folders of lib/, lowest first, and what each may import of ours. A folder
 * always may import itself; `index.ts` and `plugin.ts` (wiring) may import anything.
 */
const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  core: [],
  engine: ['core'],
  stream: ['core'],
  channel: ['core', 'engine', 'stream'],
  http: ['core', 'engine', 'stream', 'channel'],
  client: [],
  'redis.ts': ['engine'],
  'client.ts': ['client'],
  'plugin.ts': ['core', 'engine', 'stream', 'channel', 'http'],
  'index.ts': ['core', 'engine', 'stream', 'channel', 'http', 'plugin.ts']
}

/** Folders whose files may take types (never code) from these. */
const TYPES_ALLOWED: Readonly<Record<string, readonly string[]>> = {
  client: ['core'],
  'client.ts': ['core']
}

/**
 * Rules inside a folder: a subfolder below its parent may not import the parent's
 * files (the HTTP adapters know nothing of the stream), and Redis stays in engine/redis/.
 */
const INNER: ReadonlyArray<{ readonly from: string, readonly mayNotImport: (target: string) => boolean, readonly why: string }> = [
  { from: 'stream/adapters/', mayNotImport: (target) => target.startsWith('stream/') && !target.startsWith('stream/adapters/'), why: 'adapters sit below the stream' },
  { from: '', mayNotImport: (target) => target.startsWith('engine/redis/'), why: 'only engine/redis/ and the ./redis entry know Redis' }
]

interface Import {
  /** The lib file imported, relative to lib/ (`core/frame.ts`), or a package name. */
  readonly target: string
  readonly isTypeOnly: boolean
  readonly line: number
}

function libFiles (dir = LIB): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return libFiles(path)
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [relative(LIB, path)] : []
  })
}

/** Every import of a file: declarations, re-exports, `import()` calls and `import('x')` types. */
function importsOf (file: string): Import[] {
  const text = readFileSync(join(LIB, file), 'utf8')
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true)
  const found: Import[] = []
  const add = (specifier: ts.Expression | undefined, isTypeOnly: boolean, node: ts.Node): void => {
    if (specifier === undefined || !ts.isStringLiteralLike(specifier)) return
    const name = specifier.text
    const target = name.startsWith('.') ? relative(LIB, resolve(LIB, dirname(file), name)).replace(/\.js$/, '.ts') : name
    found.push({ target, isTypeOnly, line: source.getLineAndCharacterOfPosition(node.getStart()).line + 1 })
  }
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) add(node.moduleSpecifier, node.importClause?.isTypeOnly === true, node)
    else if (ts.isExportDeclaration(node)) add(node.moduleSpecifier, node.isTypeOnly, node)
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) add(node.arguments[0], false, node)
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node.argument.literal as ts.Expression, true, node)
    ts.forEachChild(node, visit)
  }
  visit(source)
  return found
}

/** The unit of the allow-list a lib file belongs to: its top folder, or its own name at the top. */
function unitOf (file: string): string {
  return file.includes('/') ? file.slice(0, file.indexOf('/')) : file
}

const files = libFiles()
const imports = new Map(files.map((file) => [file, importsOf(file)]))
const ours = (target: string): boolean => files.includes(target)

t.test('the walk sees the layout', async (t) => {
  for (const unit of Object.keys(ALLOWED)) t.ok(files.some((file) => unitOf(file) === unit), `lib has ${unit}`)
  t.same(files.filter((file) => ALLOWED[unitOf(file)] === undefined), [], 'every lib file is in a unit of the allow-list')
  t.ok(imports.get('plugin.ts')?.some((found) => found.target === 'http/open.ts'), 'imports are read (plugin.ts imports http/open.ts)')
  t.ok(imports.get('http/metrics.ts')?.some((found) => found.target === 'prom-client' && !found.isTypeOnly), 'dynamic imports are read (prom-client)')
  t.ok(imports.get('client/types.ts')?.some((found) => found.target === 'core/catalog.ts' && found.isTypeOnly), 'type-only imports are read')
})

t.test('every import points to a unit its folder may import', async (t) => {
  const broken: string[] = []
  for (const [file, found] of imports) {
    const unit = unitOf(file)
    for (const { target, isTypeOnly, line } of found) {
      if (!target.includes('.ts') && !ours(target)) continue
      if (!ours(target)) {
        broken.push(`${file}:${line} imports ${target}, which is not a lib file`)
        continue
      }
      const to = unitOf(target)
      if (to === unit || ALLOWED[unit].includes(to)) continue
      if (isTypeOnly && TYPES_ALLOWED[unit]?.includes(to) === true) continue
      broken.push(`${file}:${line} imports ${target}${isTypeOnly ? ' (types)' : ''}: ${unit} may import ${[unit, ...ALLOWED[unit]].join(', ')}`)
    }
  }
  t.same(broken, [], 'no import outside the allow-list')
})

t.test('inside the folders: adapters below the stream, Redis inside engine/redis/', async (t) => {
  const broken: string[] = []
  for (const [file, found] of imports) {
    for (const rule of INNER) {
      if (!file.startsWith(rule.from) || file.startsWith('engine/redis/') || file === 'redis.ts') continue
      for (const { target, line } of found) if (rule.mayNotImport(target)) broken.push(`${file}:${line} imports ${target}: ${rule.why}`)
    }
    const isRedis = file.startsWith('engine/redis/')
    for (const { target, line } of found) if (!isRedis && target === 'ioredis') broken.push(`${file}:${line} imports ioredis: ${INNER[1].why}`)
  }
  t.same(broken, [], 'no inner rule broken')
})

/** The circles of a graph, each once, as the path that closes it. */
function circles (edges: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  const found: string[][] = []
  const state = new Map<string, 'open' | 'done'>()
  const path: string[] = []
  const visit = (node: string): void => {
    state.set(node, 'open')
    path.push(node)
    for (const next of edges.get(node) ?? []) {
      if (state.get(next) === 'open') found.push([...path.slice(path.indexOf(next)), next])
      else if (state.get(next) === undefined) visit(next)
    }
    path.pop()
    state.set(node, 'done')
  }
  for (const node of [...edges.keys()].sort()) if (state.get(node) === undefined) visit(node)
  return found
}

t.test('no circle between files, type imports included', async (t) => {
  const edges = new Map(files.map((file) => [file, new Set((imports.get(file) ?? []).map((found) => found.target).filter(ours))]))
  t.same(circles(edges).map((circle) => circle.join(' -> ')), [], 'no file imports itself through others')
})

t.test('no circle between folders', async (t) => {
  const edges = new Map<string, Set<string>>()
  for (const [file, found] of imports) {
    const unit = unitOf(file)
    const targets = edges.get(unit) ?? new Set<string>()
    for (const { target } of found) if (ours(target) && unitOf(target) !== unit) targets.add(unitOf(target))
    edges.set(unit, targets)
  }
  t.same(circles(edges).map((circle) => circle.join(' -> ')), [], 'the folders form layers')
})

t.test('the circle finder finds a circle', async (t) => {
  const planted = new Map([['a', new Set(['b'])], ['b', new Set(['c'])], ['c', new Set(['a'])]])
  t.same(circles(planted), [['a', 'b', 'c', 'a']])
})

t.test('no lib file over 400 lines', async (t) => {
  const long = files
    .map((file) => ({ file, lines: readFileSync(join(LIB, file), 'utf8').split('\n').length - 1 }))
    .filter(({ lines }) => lines > 400)
    .map(({ file, lines }) => `${file}: ${lines} lines`)
  t.same(long, [], 'every file fits')
})

t.test("lib/index.ts's layout map names the folders of the allow-list, and no file", async (t) => {
  const text = readFileSync(join(LIB, 'index.ts'), 'utf8')
  const map = text.slice(0, text.indexOf('@example'))
  for (const unit of Object.keys(ALLOWED)) {
    if (unit.endsWith('.ts')) continue
    const line = map.split('\n').find((each) => each.includes(` ${unit}/ `))
    t.ok(line, `the map has a line for ${unit}/`)
    for (const allowed of ALLOWED[unit]) t.match(line, allowed, `${unit}/'s line names ${allowed}`)
  }
})
