/**
 * A private `redis-server` for the benchmark: on a free port below the ephemeral
 * range (32768+, which the load generators' thousands of client sockets use), without
 * persistence, stopped by its PID. Never any other Redis.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { rawCommand, startCluster } from '../test/helpers/redis.js'

/** Ports tried for Redis: below the ephemeral range, above the well-known ones. */
const PORT_MIN = 20_000
const PORT_MAX = 32_000
/** Random ports tried before giving up. */
const PORT_ATTEMPTS = 50
/** Time a started server gets to answer PING. */
const START_TIMEOUT_MS = 5000

async function isFree (port: number): Promise<boolean> {
  const server = createServer()
  return await new Promise((resolve) => {
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

async function freeLowPort (): Promise<number> {
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    const port = PORT_MIN + Math.floor(Math.random() * (PORT_MAX - PORT_MIN))
    if (await isFree(port)) return port
  }
  throw new Error(`no free port in ${PORT_MIN}-${PORT_MAX} after ${PORT_ATTEMPTS} attempts`)
}

/** A running private Redis: its URL and how to stop it. */
export interface BenchRedis {
  url: string
  pid: number
  stop: () => Promise<void>
}

/**
 * Starts `redis-server` on 127.0.0.1 (`--save '' --appendonly no`) and waits for PING.
 * Throws a clear error when the binary is missing.
 *
 * @example
 * const redis = await startRedisServer()
 * try { ... redisEngine({ url: redis.url }) } finally { await redis.stop() }
 */
export async function startRedisServer (): Promise<BenchRedis> {
  if (spawnSync('redis-server', ['--version']).error !== undefined) {
    throw new Error('redis-server not found (apt-get install redis-server): the typed-sse-redis contender and capacity-redis need it')
  }
  const port = await freeLowPort()
  const child: ChildProcess = spawn('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxclients', '1000'
  ], { stdio: ['ignore', 'ignore', 'inherit'] })
  const pid = child.pid
  if (pid === undefined) throw new Error('redis-server did not start')
  let hasExited = false
  child.once('exit', () => { hasExited = true })
  // A runner that dies (an error, Ctrl-C) must not leave this Redis behind.
  const killAtExit = (): void => { if (!hasExited) try { process.kill(pid, 'SIGKILL') } catch {} }
  process.once('exit', killAtExit)
  const stop = async (): Promise<void> => {
    process.off('exit', killAtExit)
    if (hasExited) return
    const exited = once(child, 'exit')
    process.kill(pid, 'SIGKILL')
    await exited
  }
  const deadline = Date.now() + START_TIMEOUT_MS
  for (;;) {
    try {
      if ((await rawCommand(port, 'PING')).startsWith('+PONG')) break
    } catch {}
    if (hasExited) throw new Error(`redis-server exited at start (port ${port})`)
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`redis-server did not answer on port ${port} within ${START_TIMEOUT_MS} ms`)
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return { url: `redis://127.0.0.1:${port}`, pid, stop }
}

/** A running private Redis Cluster: its startup nodes and how to stop it. */
export interface BenchCluster {
  /** `host:port,...` of every node. */
  nodes: string
  stop: () => Promise<void>
}

/**
 * Starts a Redis Cluster of 6 private redis-server processes (3 masters, 3 replicas) on
 * loopback ports below the ephemeral range, with the tests' cluster starter; every
 * process is stopped by its PID, at `stop()` or when the runner exits.
 *
 * @example
 * const cluster = await startRedisCluster()
 * try { ... redisEngine({ cluster: { nodes } }) } finally { await cluster.stop() }
 */
export async function startRedisCluster (): Promise<BenchCluster> {
  const teardowns: Array<() => unknown> = []
  const stop = async (): Promise<void> => {
    process.off('exit', killAtExit)
    for (const teardown of teardowns.splice(0).reverse()) await teardown()
  }
  let pids: number[] = []
  const killAtExit = (): void => {
    for (const pid of pids) try { process.kill(pid, 'SIGKILL') } catch {}
  }
  process.once('exit', killAtExit)
  try {
    const cluster = await startCluster({ teardown: (fn) => { teardowns.push(fn) } })
    pids = cluster.servers.map((server) => server.pid as number)
    return { nodes: cluster.nodes.map(({ host, port }) => `${host}:${port}`).join(','), stop }
  } catch (err) {
    await stop()
    throw err
  }
}
