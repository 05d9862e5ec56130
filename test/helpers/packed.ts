/**
 * The package as npm would publish it, packed once per change of its sources and shared by
 * the tests that need it (test/package/package.test.ts, test/package/consumer.test.ts, test/package/readme.test.ts):
 * `npm pack` builds through `prepack` (15-20 s on an idle 2-core machine, up to 2 minutes
 * on a busy one), so each packing its own would cost minutes and race on dist/.
 *
 * The tarball is kept in `.scratch/pack-<hash>/`, the hash taken over what the build reads
 * (package.json, the tsconfigs, lib/). A lock directory makes concurrent test files wait for
 * the one that packs instead of packing (and deleting dist/) under it.
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join, relative } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** Longest a pack may take, and longest a test waits for another's. */
export const PACK_TIMEOUT_MS = 200_000
const LOCK_POLL_MS = 250
/** A lock older than this was left by a killed run: taken over. */
const STALE_LOCK_MS = PACK_TIMEOUT_MS + 30_000

export interface Packed {
  /** Absolute path of the .tgz. */
  tarball: string
  /** The files npm put in it, relative to the package root. */
  files: string[]
  /** The package's name, from package.json. */
  name: string
}

/** Process groups still running; killed if the test process exits first (tap's timeout). */
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
 * grandchildren, which killing npm alone would leave running) and the promise rejects
 * with the command, its exit and its stderr.
 */
export function run (command: string, args: string[], options: { cwd?: string, timeoutMs: number, env?: NodeJS.ProcessEnv }): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
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
      else reject(Object.assign(new Error(`${command} ${args.join(' ')}: exit ${code ?? signal}\n${stdout}\n${stderr}`), { stdout }))
    })
  })
}

async function filesUnder (dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true })
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name)).sort()
}

/** A hash of everything the packed package is built from. */
async function sourceHash (): Promise<string> {
  const hash = createHash('sha256')
  const inputs = ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'README.md', 'CHANGELOG.md', 'LICENSE']
    .map((file) => join(ROOT, file))
  for (const file of [...inputs, ...await filesUnder(join(ROOT, 'lib'))]) {
    hash.update(relative(ROOT, file)).update('\0').update(await readFile(file)).update('\0')
  }
  return hash.digest('hex').slice(0, 16)
}

async function withLock<T> (lock: string, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + STALE_LOCK_MS
  for (;;) {
    try {
      await mkdir(lock)
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const age = await stat(lock).then((s) => Date.now() - s.mtimeMs, () => 0)
      if (age > STALE_LOCK_MS || Date.now() > deadline) await rm(lock, { recursive: true, force: true })
      else await sleep(LOCK_POLL_MS)
    }
  }
  try {
    return await fn()
  } finally {
    await rm(lock, { recursive: true, force: true })
  }
}

/**
 * Packs the package (once per source hash, whichever test asks first) and returns the
 * tarball. Throws with npm's output when the build fails.
 *
 * @example
 * const { tarball } = await packOnce()
 */
export async function packOnce (): Promise<Packed> {
  const manifest = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { name: string }
  const scratch = join(ROOT, '.scratch')
  await mkdir(scratch, { recursive: true })
  const dir = join(scratch, `pack-${await sourceHash()}`)
  const result = join(dir, 'pack.json')
  return await withLock(join(scratch, 'pack.lock'), async () => {
    if (!existsSync(result)) {
      // Tarballs of earlier sources are of no more use.
      for (const old of await readdir(scratch)) if (old.startsWith('pack-')) await rm(join(scratch, old), { recursive: true, force: true })
      await mkdir(dir, { recursive: true })
      const stdout = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: ROOT, timeoutMs: PACK_TIMEOUT_MS })
      // The JSON follows what the prepack build prints.
      const [packed] = JSON.parse(stdout.slice(stdout.search(/^\[/m))) as Array<{ filename: string, files: Array<{ path: string }> }>
      const value: Packed = { tarball: join(dir, packed.filename), files: packed.files.map((file) => file.path), name: manifest.name }
      await writeFile(result, JSON.stringify(value))
    }
    return JSON.parse(await readFile(result, 'utf8')) as Packed
  })
}

/**
 * Installs the packed package into `dir/node_modules/<name>` as npm would (the tarball
 * unpacked), with a package.json of the project's own at `dir` (`"type": "module"`; also
 * so that Node does not resolve the name to the working tree by self-reference). `dir`
 * must be inside the repository: the package's dependencies resolve from its node_modules.
 */
export async function installPacked (dir: string, packed: Packed): Promise<string> {
  const installed = join(dir, 'node_modules', packed.name)
  await mkdir(installed, { recursive: true })
  await writeFile(join(dir, 'package.json'), '{ "name": "consumer", "private": true, "type": "module" }\n')
  await run('tar', ['-xzf', packed.tarball, '-C', installed, '--strip-components=1'], { timeoutMs: 60_000 })
  return installed
}

/**
 * The `tsc` of an installed compiler package (`typescript`, or the `typescript7` alias),
 * or `undefined` when it is not installed (a devDependency: `npm ci` installs both).
 *
 * @example
 * const tsc = tscOf('typescript7')
 */
export function tscOf (name: string): string | undefined {
  try {
    return join(dirname(createRequire(join(ROOT, 'package.json')).resolve(`${name}/package.json`)), 'bin', 'tsc')
  } catch {
    return undefined
  }
}

/**
 * Runs a compiler's `tsc` in `cwd` and resolves with what it printed: its diagnostics when
 * it fails, nothing when the program is clean. It runs without tap's loader, which tap's
 * process tracking adds to every child's NODE_OPTIONS: TypeScript 7's tsc is an ES module
 * that cannot load under it (ERR_REQUIRE_CYCLE_MODULE).
 *
 * @example
 * const output = await runTsc(tscOf('typescript7')!, ['-p', 'tsconfig.json', '--pretty', 'false'], dir, 120_000)
 */
export async function runTsc (tsc: string, args: string[], cwd: string, timeoutMs: number): Promise<string> {
  return await run('env', ['-u', 'NODE_OPTIONS', process.execPath, tsc, ...args], { cwd, timeoutMs })
    .catch((err: Error & { stdout?: string }) => err.stdout ?? err.message)
}
