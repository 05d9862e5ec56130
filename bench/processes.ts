/**
 * The child processes of a benchmark: forked with IPC, remembered, asked to exit
 * and killed by PID when they do not, so no child outlives the script that started it.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Peer } from './ipc.js'
import type { ServerApi } from './servers/harness.js'

/** Every child process started here and not seen to exit. */
const children = new Set<ChildProcess>()

/**
 * Forks `modulePath` (relative to this directory, as built: `./servers/raw.js`, or a file URL: another build's, `--compare-build`) with
 * an IPC channel.
 *
 * @example
 * const server = new Peer<ServerApi>(spawnChild('./servers/raw.js', ['--expose-gc']))
 */
export function spawnChild (modulePath: string, execArgv: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const child = fork(fileURLToPath(new URL(modulePath, import.meta.url)), [], {
    execArgv,
    env,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

/**
 * Asks a child to exit, then kills it (by its PID) if it has not within 3 s.
 *
 * @example
 * await stopChild(server)
 */
export async function stopChild (peer: Peer<any>): Promise<void> {
  const { child } = peer
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  await peer.call('exit', undefined, 3000).catch(() => {})
  const timer = setTimeout(() => { if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL') }, 3000)
  await exited
  clearTimeout(timer)
}

/**
 * Kills (by PID) every child still alive; for exit and signal handlers.
 *
 * @example
 * process.once('exit', killChildren)
 */
export function killChildren (): void {
  for (const child of children) {
    if (child.pid !== undefined && child.exitCode === null) {
      try { process.kill(child.pid, 'SIGKILL') } catch {}
    }
  }
}

/**
 * Polls `server` until it holds exactly `count` streams, or throws after `timeoutMs`.
 *
 * @example
 * await waitForConnections(server, 5000, 10_000)
 */
export async function waitForConnections (server: Peer<ServerApi>, count: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let seen = -1
  while (Date.now() < deadline) {
    seen = await server.call('connections', undefined, timeoutMs)
    if (seen === count) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`server holds ${seen} streams, expected ${count}`)
}
