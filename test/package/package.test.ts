/**
 * The package as npm would publish it: `npm pack` (which builds through `prepack`),
 * then publint and Are the Types Wrong on the tarball, then the packed files
 * imported by a project that installed them, under the Node version running the test.
 * The entry points come from package.json's `exports`, the one place that names them.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { publint } from 'publint'
import { formatMessage } from 'publint/utils'
import t from 'tap'
import { installPacked, PACK_TIMEOUT_MS, packOnce, ROOT, run } from '../helpers/packed.js'

const ATTW = join(ROOT, 'node_modules/@arethetypeswrong/cli/dist/index.js')

/** The pack (shared with the other tests of the packed package: test/helpers/packed.ts), then the checks. */
const CHECK_TIMEOUT_MS = 60_000
t.setTimeout(PACK_TIMEOUT_MS + 3 * CHECK_TIMEOUT_MS)

/** The subpaths users import; each must resolve to JavaScript and to types. */
const ENTRY_POINTS = ['.', './redis', './client']

/**
 * TypeScript resolutions an ESM-only package must serve: node16/nodenext importing
 * from ESM, and bundlers. Left out: `node10` (no `exports` support, so no subpaths)
 * and `node16-cjs` (attw predates require(esm)); docs/development.md says so.
 */
const RESOLUTIONS = ['node16-esm', 'bundler']

type ExportTarget = string | { types?: string, default?: string }
interface AttwResolution { resolution?: { fileName: string, isTypeScript: boolean } }
interface AttwReport {
  analysis: {
    entrypoints: Record<string, { resolutions: Record<string, AttwResolution> }>
    problems: Array<{ kind: string, entrypoint?: string, resolutionKind?: string }>
  }
}

const manifest = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
  name: string, exports: Record<string, ExportTarget>
}

t.test('the packed tarball passes publint and Are the Types Wrong, and its entry points load', async (t) => {
  const dir = t.testdir({ consumer: {} })
  const packed = await packOnce()
  const tarball = packed.tarball
  const files = new Set(packed.files)

  t.same(Object.keys(manifest.exports).filter((path) => path !== './package.json'), ENTRY_POINTS, 'exports names the three entry points')
  for (const [path, target] of Object.entries(manifest.exports)) {
    const targets = typeof target === 'string' ? [target] : Object.values(target)
    for (const file of targets) t.ok(files.has(file.replace(/^\.\//, '')), `${path}: ${file} is in the tarball`)
  }
  t.ok(files.has('LICENSE') && files.has('README.md'), 'LICENSE and README are packed')
  // The README and the docs pages link to each other: every such link must resolve in the
  // package, where npm users read them (links into the repository, ../bench or example/,
  // are for readers of the repository).
  const pages = [...files].filter((file) => file === 'README.md' || /^docs\/[^/]+\.md$/.test(file))
  t.ok(pages.length > 5, 'the docs pages are packed')
  const unresolved: string[] = []
  for (const page of pages) {
    const text = await readFile(join(ROOT, page), 'utf8')
    for (const [, target] of text.matchAll(/\]\(([^)#\s]+\.md)(?:#[^)]*)?\)/g)) {
      if (/^[a-z]+:/.test(target) || target.startsWith('../bench/')) continue
      const resolved = join(page, '..', target)
      if (!files.has(resolved)) unresolved.push(`${page} -> ${target}`)
    }
  }
  t.same(unresolved, [], 'every Markdown link between the README and docs/ resolves in the package')
  t.same([...files].filter((file) => /^(test|example|bench|dist\/(test|example|bench))\//.test(file)), [],
    'no tests, example or benchmarks in the package')
  for (const file of files) {
    if (!file.endsWith('.d.ts.map')) continue
    const map = JSON.parse(await readFile(join(ROOT, file), 'utf8')) as { sources: string[] }
    const sources = map.sources.map((source) => join(file, '..', source))
    t.same(sources.filter((source) => !files.has(source)), [], `${file}: its sources are packed`)
  }

  const bytes = await readFile(tarball)
  const { messages, pkg } = await publint({ pack: { tarball: new Uint8Array(bytes).buffer }, level: 'suggestion' })
  t.same(messages.map((message) => `${message.type}: ${formatMessage(message, pkg, { color: false }) ?? message.code}`), [],
    'publint: no error, warning or suggestion')

  // attw exits non-zero on a problem in the profile's resolutions; the JSON says which.
  const attw = await run(process.execPath, [ATTW, '--profile', 'esm-only', '--format', 'json', tarball], { timeoutMs: CHECK_TIMEOUT_MS })
    .catch((err: Error & { stdout?: string }) => {
      t.fail(`attw: ${err.message}`)
      return err.stdout ?? '{ "analysis": { "entrypoints": {}, "problems": [] } }'
    })
  const report = JSON.parse(attw) as AttwReport
  for (const entry of ENTRY_POINTS) {
    for (const kind of RESOLUTIONS) {
      const resolved = report.analysis.entrypoints[entry]?.resolutions[kind]?.resolution
      t.ok(resolved?.isTypeScript === true && resolved.fileName.endsWith('.d.ts'), `attw: ${entry} has types under ${kind} (${resolved?.fileName})`)
    }
  }
  t.same(report.analysis.problems.filter((problem) => RESOLUTIONS.includes(problem.resolutionKind ?? '')), [],
    `attw: no problem under ${RESOLUTIONS.join(', ')}`)

  // Installed as a user would have it: unpacked into node_modules; its dependencies
  // resolve from the repository's node_modules above the test directory.
  const installed = await installPacked(join(dir, 'consumer'), packed)
  const specifiers = ENTRY_POINTS.map((entry) => manifest.name + entry.slice(1))
  await writeFile(join(dir, 'consumer/esm.mjs'), `for (const name of ${JSON.stringify(specifiers)}) {
  const module = await import(name)
  console.log(name, Object.keys(module).length, import.meta.resolve(name))
}\n`)
  // CommonJS users on Node >= 20.19 (the engines range) load it with require(esm).
  await writeFile(join(dir, 'consumer/cjs.cjs'), `for (const name of ${JSON.stringify(specifiers)}) {
  console.log(name, Object.keys(require(name)).length, require.resolve(name))
}\n`)
  for (const script of ['esm.mjs', 'cjs.cjs']) {
    const stdout = await run(process.execPath, ['--no-warnings', script], { cwd: join(dir, 'consumer'), timeoutMs: CHECK_TIMEOUT_MS })
    const exported = stdout.trim().split('\n').map((line) => line.split(' '))
    t.same(exported.map(([name]) => name), specifiers, `${script}: every entry point loads on Node ${process.version}`)
    t.ok(exported.every(([, count]) => Number(count) > 0), `${script}: each has exports`)
    t.ok(exported.every(([, , from]) => from.includes(installed)), `${script}: loaded from the installed tarball`)
  }
})
