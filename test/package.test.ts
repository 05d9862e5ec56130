/**
 * The package as npm would publish it: `npm pack` (which builds through `prepack`),
 * then publint and Are the Types Wrong on the tarball, then the packed files
 * imported by a project that installed them, under the Node version running the test.
 * The entry points come from package.json's `exports`, the one place that names them.
 */
import { spawn } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { publint } from 'publint'
import { formatMessage } from 'publint/utils'
import t from 'tap'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const ATTW = join(ROOT, 'node_modules/@arethetypeswrong/cli/dist/index.js')

/**
 * `npm pack` builds first (tsc over lib, example and bench): 15-20 s on an idle
 * 2-core machine, up to 2 minutes on a busy one. The file gets more than tap's
 * default 180 s so that a slow build fails here, with the command named.
 */
const PACK_TIMEOUT_MS = 200_000
const CHECK_TIMEOUT_MS = 60_000
t.setTimeout(PACK_TIMEOUT_MS + 3 * CHECK_TIMEOUT_MS)

/** The subpaths users import; each must resolve to JavaScript and to types. */
const ENTRY_POINTS = ['.', './redis', './client']

/**
 * TypeScript resolutions an ESM-only package must serve: node16/nodenext importing
 * from ESM, and bundlers. Left out: `node10` (no `exports` support, so no subpaths)
 * and `node16-cjs` (attw predates require(esm)); the README says so.
 */
const RESOLUTIONS = ['node16-esm', 'bundler']

interface PackResult { filename: string, files: Array<{ path: string }> }
type ExportTarget = string | { types?: string, default?: string }
interface AttwResolution { resolution?: { fileName: string, isTypeScript: boolean } }
interface AttwReport {
  analysis: {
    entrypoints: Record<string, { resolutions: Record<string, AttwResolution> }>
    problems: Array<{ kind: string, entrypoint?: string, resolutionKind?: string }>
  }
}

/** Process groups still running; killed if this test process exits first (tap's timeout). */
const running = new Set<number>()
process.on('exit', () => { for (const pid of running) killGroup(pid) })

function killGroup (pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL')
  } catch {
    // ESRCH: the group is already gone.
  }
}

/**
 * Runs a command in a process group of its own and resolves with its stdout once it
 * exits 0. Past `timeoutMs` the whole group is killed (`npm pack` runs the build in
 * grandchildren, which killing npm alone would leave running) and the promise rejects.
 */
function run (command: string, args: string[], options: { cwd?: string, timeoutMs: number }): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    const pid = child.pid
    if (pid !== undefined) running.add(pid)
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
    const timer = setTimeout(() => {
      if (pid !== undefined) killGroup(pid)
      reject(new Error(`${command} ${args.join(' ')}: killed after ${options.timeoutMs} ms\n${stderr}`))
    }, options.timeoutMs)
    child.once('error', reject)
    child.once('close', (code, signal) => {
      if (pid !== undefined) running.delete(pid)
      clearTimeout(timer)
      if (code === 0) resolve(stdout)
      else reject(Object.assign(new Error(`${command} ${args.join(' ')}: exit ${code ?? signal}\n${stderr}`), { stdout }))
    })
  })
}

const manifest = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
  name: string, exports: Record<string, ExportTarget>
}

t.test('the packed tarball passes publint and Are the Types Wrong, and its entry points load', async (t) => {
  const dir = t.testdir({ consumer: {} })
  const stdout = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: ROOT, timeoutMs: PACK_TIMEOUT_MS })
  // The JSON follows what the prepack build prints.
  const [packed] = JSON.parse(stdout.slice(stdout.search(/^\[/m))) as PackResult[]
  const tarball = join(dir, packed.filename)
  const files = new Set(packed.files.map((file) => file.path))

  t.same(Object.keys(manifest.exports).filter((path) => path !== './package.json'), ENTRY_POINTS, 'exports names the three entry points')
  for (const [path, target] of Object.entries(manifest.exports)) {
    const targets = typeof target === 'string' ? [target] : Object.values(target)
    for (const file of targets) t.ok(files.has(file.replace(/^\.\//, '')), `${path}: ${file} is in the tarball`)
  }
  t.ok(files.has('LICENSE') && files.has('README.md'), 'LICENSE and README are packed')
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
  const installed = join(dir, 'consumer/node_modules', manifest.name)
  await mkdir(installed, { recursive: true })
  // A package.json of its own: otherwise the repository's, two levels up, would let
  // Node resolve the package name to the working tree itself (self-reference).
  await writeFile(join(dir, 'consumer/package.json'), '{ "name": "consumer", "private": true }\n')
  await run('tar', ['-xzf', tarball, '-C', installed, '--strip-components=1'], { timeoutMs: CHECK_TIMEOUT_MS })
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
