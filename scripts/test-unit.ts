/**
 * `npm run test:unit`: every file under test/unit/, shared out over a few Node
 * processes (scripts/unit-files.ts: several files per process, tsx as the TypeScript
 * loader); prints one line per process and the totals, and exits 1 when a test fails
 * (that process's TAP output is printed then).
 *
 * Why not tap's runner: on Node 20, tap loads test files through ts-node (its
 * TypeScript plugin uses Node's own type stripping only from Node 22), which compiles
 * with the TypeScript compiler in every test process: about 4x the CPU of tsx's
 * esbuild before the first assertion (measured in docs/development.md). A tap test file
 * is a program of its own: run by node, it prints TAP and exits non-zero on a failure.
 * `npm test` still runs every tier through tap, one process per file, with the
 * coverage gate.
 *
 *   npm run test:unit                    every file of test/unit/
 *   npm run test:unit -- client          those whose path contains "client"
 *   npm run test:unit -- --isolated      one process per file (slower; names the file that fails,
 *                                        and records each file's time to balance later runs)
 */
import { spawn } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
/** Processes at once: the tests mostly wait on sockets and timers, so more than the cores. */
const JOBS = 4
/** Per process, as .taprc's timeout per file: a process runs several files. */
const PROCESS_TIMEOUT_MS = 300_000
const LOG_DIR = join(ROOT, '.scratch', 'test-unit')
/** Each file's duration from the last --isolated run: the groups are balanced by it. */
const TIMES = join(LOG_DIR, 'times.json')

function filesUnder (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    return entry.isDirectory() ? filesUnder(path) : entry.name.endsWith('.test.ts') ? [path] : []
  })
}

interface Result { files: string[], code: number | undefined, ms: number, output: string }

function run (files: string[], log: string): Promise<Result> {
  const began = Date.now()
  return new Promise((resolve) => {
    const output: Buffer[] = []
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts', 'unit-files.ts'), ...files], {
      cwd: ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      // A file run alone gives its tests 30 s unless told: .taprc's limit instead.
      env: { ...process.env, TAP_COLOR: '0', TAP_TIMEOUT: '180' }
    })
    child.stdout.on('data', (chunk: Buffer) => output.push(chunk))
    child.stderr.on('data', (chunk: Buffer) => output.push(chunk))
    let isTimedOut = false
    const timer = setTimeout(() => {
      isTimedOut = true
      try { process.kill(-(child.pid as number), 'SIGKILL') } catch {}
    }, PROCESS_TIMEOUT_MS)
    child.on('close', (code) => {
      clearTimeout(timer)
      const text = Buffer.concat(output).toString()
      writeFileSync(join(LOG_DIR, log), text)
      resolve({ files, code: isTimedOut ? undefined : code ?? 1, ms: Date.now() - began, output: text })
    })
  })
}

/** The files in `count` groups of about equal time, longest first into the lightest group. */
function balance (files: string[], weight: (file: string) => number, count: number): string[][] {
  const groups = Array.from({ length: count }, () => ({ files: [] as string[], total: 0 }))
  for (const file of [...files].sort((a, b) => weight(b) - weight(a))) {
    const lightest = groups.reduce((a, b) => (b.total < a.total ? b : a))
    lightest.files.push(file)
    lightest.total += weight(file)
  }
  return groups.map((group) => group.files).filter((group) => group.length > 0)
}

async function main (): Promise<number> {
  const args = process.argv.slice(2)
  const isIsolated = args.includes('--isolated')
  const filters = args.filter((arg) => arg !== '--isolated')
  mkdirSync(LOG_DIR, { recursive: true })
  let times: Record<string, number> = {}
  try { times = JSON.parse(readFileSync(TIMES, 'utf8')) as Record<string, number> } catch {}
  const files = filesUnder(join(ROOT, 'test', 'unit'))
    .map((path) => relative(ROOT, path))
    .filter((file) => filters.length === 0 || filters.some((filter) => file.includes(filter)))
  // Without a recorded time, a file's size stands in (about 1 s per 3 kB).
  const weight = (file: string): number => times[file] ?? statSync(join(ROOT, file)).size / 3
  const groups = isIsolated ? balance(files, weight, files.length) : balance(files, weight, JOBS)
  const started = Date.now()
  const results: Result[] = []
  const queue = [...groups]
  await Promise.all(Array.from({ length: Math.min(JOBS, queue.length) }, async () => {
    for (let group = queue.shift(); group !== undefined; group = queue.shift()) {
      const result = await run(group, `${results.length + queue.length}.tap`)
      results.push(result)
      const status = result.code === 0 ? 'ok  ' : result.code === undefined ? 'TIME' : 'FAIL'
      console.log(`${status} ${(result.ms / 1000).toFixed(1).padStart(5)} s  ${group.join(' ')}`)
    }
  }))
  if (isIsolated) {
    for (const result of results) times[result.files[0]] = result.ms
    writeFileSync(TIMES, JSON.stringify(times, null, 2))
  }
  const failed = results.filter((result) => result.code !== 0)
  for (const result of failed) {
    const why = result.code === undefined ? `timed out after ${PROCESS_TIMEOUT_MS / 1000} s` : `exit ${result.code}`
    console.log(`\n--- ${result.files.join(' ')} (${why})\n${result.output}`)
  }
  // tap's closing line per process: "# { total: 443, pass: 443 }".
  const assertions = results.reduce((sum, result) => sum + Number(/^# \{ total: (\d+)/m.exec(result.output)?.[1] ?? 0), 0)
  const verdict = failed.length === 0 ? 'all passed' : `${failed.length} failed`
  console.log(`\n${files.length} files, ${assertions} assertions, in ${results.length} processes: ${verdict}, in ${((Date.now() - started) / 1000).toFixed(1)} s (${JOBS} at a time)`)
  return failed.length === 0 ? 0 : 1
}

main().then((code) => { process.exitCode = code }, (err: Error) => {
  console.error(err)
  process.exitCode = 2
})
