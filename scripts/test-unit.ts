/**
 * `npm run test:unit`: every file under test/unit/, each in a Node process of its own
 * with tsx as the TypeScript loader, four at a time; prints one line per file and the
 * totals, and exits 1 when a file fails (its TAP output is printed then).
 *
 * Why not tap's runner: on Node 20, tap loads test files through ts-node (its
 * TypeScript plugin uses Node's own type stripping only from Node 22), which compiles
 * with the TypeScript compiler in every test process: about 4x the CPU of tsx's
 * esbuild before the first assertion (measured in docs/development.md). A tap test file
 * is a program of its own: run by node, it prints TAP and exits non-zero on a failure.
 * `npm test` still runs every tier through tap, with the coverage gate.
 *
 *   npm run test:unit                  every file of test/unit/
 *   npm run test:unit -- client        those whose path contains "client"
 */
import { spawn } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { basename, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const JOBS = 4
/** Per file, as .taprc's timeout for the whole suite. */
const FILE_TIMEOUT_MS = 180_000
const LOG_DIR = join(ROOT, '.scratch', 'test-unit')
/** Each file's last duration: the longest start first, so the run ends with short ones. */
const TIMES = join(LOG_DIR, 'times.json')

function filesUnder (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    return entry.isDirectory() ? filesUnder(path) : entry.name.endsWith('.test.ts') ? [path] : []
  })
}

interface Result { file: string, code: number | undefined, ms: number, output: string }

function runFile (file: string): Promise<Result> {
  const began = Date.now()
  return new Promise((resolve) => {
    const output: Buffer[] = []
    const child = spawn(process.execPath, ['--import', 'tsx', file], {
      cwd: ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      // A file run alone gives its tests 30 s unless told: the suite's limit (.taprc) instead.
      env: { ...process.env, TAP_COLOR: '0', TAP_TIMEOUT: String(FILE_TIMEOUT_MS / 1000) }
    })
    child.stdout.on('data', (chunk: Buffer) => output.push(chunk))
    child.stderr.on('data', (chunk: Buffer) => output.push(chunk))
    let isTimedOut = false
    const timer = setTimeout(() => {
      isTimedOut = true
      try { process.kill(-(child.pid as number), 'SIGKILL') } catch {}
    }, FILE_TIMEOUT_MS)
    child.on('close', (code) => {
      clearTimeout(timer)
      const text = Buffer.concat(output).toString()
      writeFileSync(join(LOG_DIR, `${basename(file)}.tap`), text)
      resolve({ file, code: isTimedOut ? undefined : code ?? 1, ms: Date.now() - began, output: text })
    })
  })
}

async function main (): Promise<number> {
  const filters = process.argv.slice(2)
  mkdirSync(LOG_DIR, { recursive: true })
  let times: Record<string, number> = {}
  try { times = JSON.parse(readFileSync(TIMES, 'utf8')) as Record<string, number> } catch {}
  const files = filesUnder(join(ROOT, 'test', 'unit'))
    .map((path) => relative(ROOT, path))
    .filter((file) => filters.length === 0 || filters.some((filter) => file.includes(filter)))
    .sort((a, b) => (times[b] ?? statSync(join(ROOT, b)).size / 1000) - (times[a] ?? statSync(join(ROOT, a)).size / 1000))
  const started = Date.now()
  const results: Result[] = []
  const queue = [...files]
  await Promise.all(Array.from({ length: Math.min(JOBS, queue.length) }, async () => {
    for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
      const result = await runFile(file)
      results.push(result)
      const status = result.code === 0 ? 'ok  ' : result.code === undefined ? 'TIME' : 'FAIL'
      console.log(`${status} ${(result.ms / 1000).toFixed(1).padStart(5)} s  ${file}`)
    }
  }))
  for (const result of results) times[result.file] = result.ms
  writeFileSync(TIMES, JSON.stringify(times, null, 2))
  const failed = results.filter((result) => result.code !== 0)
  for (const result of failed) console.log(`\n--- ${result.file} ${result.code === undefined ? `(timed out after ${FILE_TIMEOUT_MS / 1000} s)` : `(exit ${result.code})`}\n${result.output}`)
  console.log(`\n${results.length} files: ${results.length - failed.length} passed, ${failed.length} failed, in ${((Date.now() - started) / 1000).toFixed(1)} s (${JOBS} at a time)`)
  return failed.length === 0 ? 0 : 1
}

main().then((code) => { process.exitCode = code }, (err: Error) => {
  console.error(err)
  process.exitCode = 2
})
