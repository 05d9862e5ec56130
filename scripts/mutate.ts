/**
 * `npm run mutate`: plants the bugs of scripts/mutants.ts in lib/, one at a time, runs
 * the test files aimed at each, and reports which were killed (a test failed), which
 * survived (every aimed test passed: a missing test) and which timed out.
 *
 *   npm run mutate                      every mutant
 *   npm run mutate -- queue-full-at-limit timers-chain-fires-early   those mutants only
 *   npm run mutate -- --timeout 60      seconds per mutant (default 120)
 *   npm run mutate -- --list            the list, nothing planted
 *
 * A mutant is found by its snippet, not by a file path: the snippet must occur exactly
 * once across lib/**\/*.ts, so the list survives files moving between folders. Its tests
 * are test file basenames, found anywhere under test/ for the same reason. lib/ is
 * always restored (after each mutant, on an error, on SIGINT/SIGTERM/SIGHUP), and the
 * run refuses to start while `git status --porcelain lib` shows changes.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { basename, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { MUTANTS, type Mutant } from './mutants.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const DEFAULT_TIMEOUT_S = 120
const LOG_DIR = join(ROOT, '.scratch', 'mutate')

type Outcome = 'killed' | 'survived' | 'timed out'

/** Every file under `dir` whose name ends with `suffix`, as absolute paths. */
function filesUnder (dir: string, suffix: string): string[] {
  const found: string[] = []
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) found.push(...filesUnder(path, suffix))
    else if (entry.name.endsWith(suffix)) found.push(path)
  }
  return found
}

function occurrences (text: string, snippet: string): number {
  let count = 0
  for (let at = text.indexOf(snippet); at !== -1; at = text.indexOf(snippet, at + 1)) count++
  return count
}

/** The one lib file holding `mutant.snippet`; throws when it is in none or in more than one place. */
function locate (mutant: Mutant, sources: ReadonlyMap<string, string>): string {
  const places = [...sources].flatMap(([path, text]) => Array(occurrences(text, mutant.snippet)).fill(path) as string[])
  if (places.length !== 1) {
    const where = places.length === 0 ? 'nowhere' : `${places.length} times (${[...new Set(places)].map((path) => relative(ROOT, path)).join(', ')})`
    throw new Error(`mutant ${mutant.id}: its snippet must occur exactly once in lib/, found ${where}: ${JSON.stringify(mutant.snippet)}`)
  }
  return places[0]
}

/** The paths of the test files named by basename; throws for a name missing or held twice. */
function testPaths (mutant: Mutant, tests: ReadonlyMap<string, string[]>): string[] {
  if (mutant.tests.length === 0) throw new Error(`mutant ${mutant.id}: names no test file`)
  return mutant.tests.map((name) => {
    const paths = tests.get(name) ?? []
    if (paths.length !== 1) throw new Error(`mutant ${mutant.id}: test file ${name} found ${paths.length} times under test/`)
    return relative(ROOT, paths[0])
  })
}

function parseArgs (argv: string[]): { ids: string[], timeoutS: number, isList: boolean } {
  const ids: string[] = []
  let timeoutS = DEFAULT_TIMEOUT_S
  let isList = false
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--timeout') {
      timeoutS = Number(argv[++i])
      if (!Number.isFinite(timeoutS) || timeoutS <= 0) throw new Error(`--timeout takes seconds, got ${argv[i]}`)
    } else if (argv[i] === '--list') {
      isList = true
    } else {
      ids.push(argv[i])
    }
  }
  return { ids, timeoutS, isList }
}

let running: ChildProcess | undefined
/** The file planted now and its original text, put back by {@link restore}. */
let planted: { path: string, original: string } | undefined

function restore (): void {
  if (planted === undefined) return
  writeFileSync(planted.path, planted.original)
  planted = undefined
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    // The tap run is a process group of its own (detached): end all of it.
    if (running?.pid !== undefined) {
      try { process.kill(-running.pid, 'SIGKILL') } catch {}
    }
    restore()
    console.error(`\n${signal}: lib/ restored, run stopped`)
    process.exit(130)
  })
}

/** Runs tap on `paths`; resolves with its exit code, or undefined when it passed `timeoutS`. */
function runTests (paths: string[], grep: readonly string[], timeoutS: number, log: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const output: Buffer[] = []
    const child = spawn(process.execPath, [join(ROOT, 'node_modules/tap/dist/esm/run.mjs'), '--disable-coverage', '--timeout', String(timeoutS), ...grep.map((pattern) => `--grep=${pattern}`), ...paths], {
      cwd: ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, TAP_COLOR: '0' }
    })
    running = child
    child.stdout?.on('data', (chunk: Buffer) => output.push(chunk))
    child.stderr?.on('data', (chunk: Buffer) => output.push(chunk))
    let isTimedOut = false
    const timer = setTimeout(() => {
      isTimedOut = true
      try { process.kill(-(child.pid as number), 'SIGKILL') } catch {}
    }, timeoutS * 1000)
    child.on('close', (code) => {
      clearTimeout(timer)
      running = undefined
      writeFileSync(log, Buffer.concat(output))
      resolve(isTimedOut ? undefined : code ?? 1)
    })
  })
}

async function main (): Promise<number> {
  const { ids, timeoutS, isList } = parseArgs(process.argv.slice(2))
  const known = new Set<string>()
  for (const mutant of MUTANTS) {
    if (known.has(mutant.id)) throw new Error(`mutant id ${mutant.id} is listed twice`)
    if (mutant.snippet === mutant.replacement) throw new Error(`mutant ${mutant.id}: the replacement is the snippet`)
    known.add(mutant.id)
  }
  const unknown = ids.filter((id) => !known.has(id))
  if (unknown.length > 0) throw new Error(`no mutant named ${unknown.join(', ')}`)
  const chosen = ids.length === 0 ? MUTANTS : MUTANTS.filter((mutant) => ids.includes(mutant.id))

  const dirty = execFileSync('git', ['status', '--porcelain', 'lib'], { cwd: ROOT, encoding: 'utf8' })
  if (dirty.trim() !== '') {
    console.error(`lib/ has uncommitted changes; commit or stash them first (the run restores lib/ from what it read):\n${dirty}`)
    return 2
  }
  const sources = new Map(filesUnder(join(ROOT, 'lib'), '.ts').map((path) => [path, readFileSync(path, 'utf8')]))
  const tests = new Map<string, string[]>()
  for (const path of filesUnder(join(ROOT, 'test'), '.test.ts')) tests.set(basename(path), [...(tests.get(basename(path)) ?? []), path])
  // Every mutant is checked before any is planted: a stale snippet stops the run at once.
  const plans = chosen.map((mutant) => ({ mutant, path: locate(mutant, sources), tests: testPaths(mutant, tests) }))
  if (isList) {
    for (const { mutant, path, tests } of plans) console.log(`${mutant.id}\t${relative(ROOT, path)}\t${tests.join(' ')}\n  ${mutant.what}`)
    console.log(`${plans.length} mutants`)
    return 0
  }

  mkdirSync(LOG_DIR, { recursive: true })
  const results: Array<{ id: string, outcome: Outcome, seconds: number }> = []
  const started = Date.now()
  for (const [i, { mutant, path, tests }] of plans.entries()) {
    const original = sources.get(path) as string
    const mutated = original.replace(mutant.snippet, () => mutant.replacement)
    const began = Date.now()
    let code: number | undefined
    planted = { path, original }
    try {
      writeFileSync(path, mutated)
      code = await runTests(tests, mutant.grep ?? [], mutant.timeoutS ?? timeoutS, join(LOG_DIR, `${mutant.id}.log`))
    } finally {
      restore()
    }
    if (readFileSync(path, 'utf8') !== original) throw new Error(`${relative(ROOT, path)} was not restored`)
    const outcome: Outcome = code === undefined ? 'timed out' : code === 0 ? 'survived' : 'killed'
    const seconds = (Date.now() - began) / 1000
    results.push({ id: mutant.id, outcome, seconds })
    console.log(`[${i + 1}/${plans.length}] ${outcome.padEnd(9)} ${seconds.toFixed(1).padStart(6)} s  ${mutant.id}  (${relative(ROOT, path)}; ${tests.map((test) => basename(test)).join(', ')})`)
    if (outcome !== 'killed') console.log(`    ${mutant.what}\n    log: ${relative(ROOT, join(LOG_DIR, `${mutant.id}.log`))}`)
  }
  const count = (outcome: Outcome): number => results.filter((result) => result.outcome === outcome).length
  const minutes = ((Date.now() - started) / 60_000).toFixed(1)
  console.log(`\n${results.length} mutants: ${count('killed')} killed, ${count('survived')} survived, ${count('timed out')} timed out, in ${minutes} min`)
  for (const result of results) if (result.outcome !== 'killed') console.log(`  ${result.outcome}: ${result.id}`)
  return count('survived') + count('timed out') === 0 ? 0 : 1
}

main().then((code) => { process.exitCode = code }, (err: Error) => {
  restore()
  console.error(err.message)
  process.exitCode = 2
})
