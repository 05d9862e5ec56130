/**
 * A private Redis for tests: `redis-server` on a free port of 127.0.0.1, without
 * persistence, its own process, stopped by PID at teardown (never any other Redis).
 * Tests skip with a clear message when the binary is missing, except under CI=true,
 * where they run and fail: a CI without Redis must not pass by skipping.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { connect, createServer } from 'node:net'
import type { Redis } from 'ioredis'
import type { ChannelListener, EngineMessage, SseEngine } from '../../lib/engine/engine.js'

/** Why Redis can not run here (redis-server and redis-cli come in one Debian package), or undefined. */
const NOT_INSTALLED: string | undefined = ['redis-server', 'redis-cli'].every((binary) => spawnSync(binary, ['--version']).error === undefined)
  ? undefined
  : 'redis-server or redis-cli not found: apt-get install redis-server'

/**
 * Why Redis tests are skipped, or undefined when they run. Never set under CI=true:
 * there the tests run, and starting Redis fails with {@link NOT_INSTALLED}.
 */
export const REDIS_MISSING: string | undefined = process.env.CI === 'true' ? undefined : NOT_INSTALLED

/** Time a started server gets to answer PING. */
const START_TIMEOUT_MS = 5000

/** A port nobody listens on now (the OS picks it; the listener is closed again). */
export async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  server.close()
  await once(server, 'close')
  return port
}

/** Sends one inline command and resolves with the raw reply (enough for PING and CLIENT LIST). */
export async function rawCommand (port: number, command: string, timeoutMs = 1000): Promise<string> {
  return await new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port })
    let reply = ''
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`${command}: no reply within ${timeoutMs} ms`)) }, timeoutMs)
    socket.setEncoding('utf8')
    socket.on('connect', () => socket.write(`${command}\r\n`))
    socket.on('data', (chunk: string) => {
      reply += chunk
      // A simple string (+PONG) or a bulk string ($len\r\n...\r\n) read whole.
      const bulk = /^\$(\d+)\r\n/.exec(reply)
      if ((reply.startsWith('+') || reply.startsWith('-') || reply.startsWith(':')) ? reply.endsWith('\r\n')
        : bulk !== null && Buffer.byteLength(reply) >= bulk[0].length + Number(bulk[1]) + 2) {
        clearTimeout(timer)
        socket.end()
        resolve(reply)
      }
    })
    socket.on('error', (err) => { clearTimeout(timer); reject(err) })
  })
}

/**
 * One `redis-server` process. `kill()` stops it hard (SIGKILL); `start()` starts a
 * new one on the same port (empty: nothing is saved).
 */
export class RedisServer {
  readonly port: number
  readonly #args: readonly string[]
  #process: ChildProcess | undefined

  /** @param args more redis-server arguments (a cluster node's) */
  constructor (port: number, args: readonly string[] = []) {
    this.port = port
    this.#args = args
  }

  get url (): string {
    return `redis://127.0.0.1:${this.port}`
  }

  get pid (): number | undefined {
    return this.#process?.pid
  }

  async start (): Promise<void> {
    if (NOT_INSTALLED !== undefined) throw new Error(NOT_INSTALLED)
    if (this.#process !== undefined) throw new Error(`redis-server ${this.pid} is still running`)
    const child = spawn('redis-server', [
      '--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...this.#args
    ], { stdio: ['ignore', 'ignore', 'pipe'] })
    this.#process = child
    child.on('exit', () => { if (this.#process === child) this.#process = undefined })
    const deadline = Date.now() + START_TIMEOUT_MS
    for (;;) {
      try {
        // -NOAUTH: up, with a password (requirepass).
        if (/^(\+PONG|-NOAUTH)/.test(await rawCommand(this.port, 'PING'))) return
      } catch {}
      if (this.#process !== child) throw new Error(`redis-server exited at start (port ${this.port})`)
      if (Date.now() > deadline) {
        await this.kill()
        throw new Error(`redis-server did not answer on port ${this.port} within ${START_TIMEOUT_MS} ms`)
      }
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }

  /** Stops this process by its PID and waits for it to exit. */
  async kill (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.#process
    if (child === undefined) return
    const exited = once(child, 'exit')
    child.kill(signal)
    await exited
  }

  /** Freezes the process (SIGSTOP: its sockets stay open, nothing answers), or thaws it (SIGCONT). */
  signal (signal: 'SIGSTOP' | 'SIGCONT'): void {
    if (this.#process === undefined) throw new Error(`redis-server on port ${this.port} is not running`)
    this.#process.kill(signal)
  }

  /** The connections Redis has now (CLIENT LIST lines), excluding the one asking. */
  async clients (): Promise<string[]> {
    const reply = await rawCommand(this.port, 'CLIENT LIST')
    return reply.split('\n').filter((line) => line.startsWith('id=') && !line.includes(' cmd=client|list'))
  }
}

/** What tap's `t` offers that {@link startRedis} uses. */
interface Teardown {
  teardown (fn: () => unknown): void
}

/**
 * Starts a private Redis, stopped at `t`'s teardown.
 *
 * @example
 * if (REDIS_MISSING !== undefined) t.skip(REDIS_MISSING)
 * const redis = await startRedis(t)
 * redisEngine({ url: redis.url })
 */
export async function startRedis (t: Teardown): Promise<RedisServer> {
  const server = new RedisServer(await freePort())
  // SIGKILL ends a frozen (SIGSTOP) process too.
  t.teardown(async () => await server.kill())
  await server.start()
  return server
}

/**
 * A channel listener (what a channel gives its engine) that records what the engine
 * delivers and how many gaps it reports.
 *
 * @example
 * const seen = new Recorder()
 * engine.channel('scores', history, seen)
 */
export class Recorder implements ChannelListener {
  readonly messages: EngineMessage[] = []
  gaps = 0

  readonly deliver = (message: EngineMessage): void => { this.messages.push(message) }
  readonly gap = (): void => { this.gaps++ }

  get ids (): string[] {
    return this.messages.map((message) => message.id as string)
  }
}

/**
 * Kills every connection named `name` (CLIENT KILL by id, all in one round trip, so
 * they drop together) and resolves with how many it killed.
 */
export async function killNamed (admin: Redis, name: string): Promise<number> {
  const list = await admin.client('LIST') as string
  const ids = list.split('\n').filter((line) => line.includes(` name=${name} `)).map((line) => (/^id=(\d+)/.exec(line) as RegExpExecArray)[1])
  const pipeline = admin.pipeline()
  for (const id of ids) pipeline.client('KILL', 'ID', id)
  const results = await pipeline.exec() ?? []
  return results.filter(([err, killed]) => err === null && killed === 1).length
}

/** An engine whose reported gaps are counted. */
export interface GapCounting extends SseEngine {
  /** Gaps reported to channels so far (each channel resyncs its streams on one). */
  readonly gaps: number
}

/**
 * Wraps `engine` so a test can see the gaps it reports through the channels it serves.
 *
 * @example
 * const engine = countGaps(redisEngine({ url }))
 * t.ok(seqs(client).length === 5 || engine.gaps > 0)
 */
export function countGaps (engine: SseEngine): GapCounting {
  let gaps = 0
  return {
    get gaps () { return gaps },
    compareIds: (a, b) => engine.compareIds(a, b),
    health: () => engine.health?.() ?? 'connected',
    ready: async () => await engine.ready?.(),
    close: async () => await engine.close(),
    channel: (name, history, listener) => engine.channel(name, history, {
      deliver: (message) => listener.deliver(message),
      gap: () => { gaps++; listener.gap() }
    })
  }
}

/** Cluster nodes take ports from here up (below the ephemeral range, 32768-60999, bus ports included). */
const CLUSTER_PORTS_FROM = 12000
const CLUSTER_PORTS_SPAN = 8000
/** Redis Cluster puts a node's bus on its port + 10000. */
const BUS_OFFSET = 10000
/** Time a started cluster gets to agree (every node cluster_state:ok, every replica attached). */
const CLUSTER_TIMEOUT_MS = 30_000

async function isFree (port: number): Promise<boolean> {
  const server = createServer()
  const listening = new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false))
    server.once('listening', () => resolve(true))
  })
  server.listen(port, '127.0.0.1')
  const free = await listening
  if (free) {
    server.close()
    await once(server, 'close')
  }
  return free
}

/** `count` ports, each free with its bus port, below 32768 (bounded attempts). */
async function clusterPorts (count: number): Promise<number[]> {
  const ports: number[] = []
  for (let attempt = 0; ports.length < count && attempt < 200; attempt++) {
    const port = CLUSTER_PORTS_FROM + Math.floor(Math.random() * CLUSTER_PORTS_SPAN)
    if (!ports.includes(port) && await isFree(port) && await isFree(port + BUS_OFFSET)) ports.push(port)
  }
  if (ports.length < count) throw new Error(`found only ${ports.length} free cluster ports of ${count}`)
  return ports
}

/** A Redis Cluster of private redis-server processes: 3 masters, 3 replicas, on loopback. */
export class RedisCluster {
  readonly servers: RedisServer[]

  constructor (servers: RedisServer[]) {
    this.servers = servers
  }

  /** Startup nodes for ioredis. */
  get nodes (): Array<{ host: string, port: number }> {
    return this.servers.map((server) => ({ host: '127.0.0.1', port: server.port }))
  }

  /** The server listening on `port`. */
  server (port: number): RedisServer {
    const found = this.servers.find((server) => server.port === port)
    if (found === undefined) throw new Error(`no cluster node on port ${port}`)
    return found
  }

  /** The ports of the masters now (as the running nodes see them), by CLUSTER NODES. */
  async masters (): Promise<number[]> {
    for (const server of this.servers) {
      if (server.pid === undefined) continue
      const nodes = await rawCommand(server.port, 'CLUSTER NODES').catch(() => '')
      // Lines: id host:port@bus flags master ping pong epoch link slots...
      const masters = nodes.split('\n').map((line) => line.split(' ')).filter((fields) => {
        const flags = (fields[2] ?? '').split(',')
        return flags.includes('master') && !flags.includes('fail') && !flags.includes('fail?') && fields[7] === 'connected'
      })
      if (masters.length > 0) return masters.map((fields) => Number(/:(\d+)@/.exec(fields[1])?.[1]))
    }
    throw new Error('no cluster node answers')
  }

  /**
   * Resolves when every running node says cluster_state:ok, sees `masters` masters, and
   * each master has a replica attached; bounded.
   */
  async settled (masters = 3, timeoutMs = CLUSTER_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs
    let last = ''
    for (;;) {
      try {
        const running = this.servers.filter((server) => server.pid !== undefined)
        const states = await Promise.all(running.map(async (server) => await rawCommand(server.port, 'CLUSTER INFO')))
        const replications = await Promise.all(running.map(async (server) => await rawCommand(server.port, 'INFO replication')))
        const isOk = states.every((state) => state.includes('cluster_state:ok') && state.includes(`cluster_size:${masters}`))
        const attached = replications.filter((info) => info.includes('role:master') && /connected_slaves:[1-9]/.test(info)).length
        const linked = replications.filter((info) => info.includes('role:slave')).every((info) => info.includes('master_link_status:up'))
        last = `ok ${String(isOk)}, masters with a replica ${attached}, replicas linked ${String(linked)}`
        if (isOk && attached === masters && linked) return
      } catch (err) {
        last = (err as Error).message
      }
      if (Date.now() > deadline) throw new Error(`the cluster did not settle within ${timeoutMs} ms (${last})`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
}

/**
 * Starts a Redis Cluster of 6 private redis-server processes (3 masters, 3 replicas;
 * `redis-cli --cluster create`), on free ports below 32768, in a temporary directory;
 * every process is stopped by its PID at `t`'s teardown. Failover is fast
 * (cluster-node-timeout 1000 ms) so tests can kill a master.
 *
 * @example
 * const cluster = await startCluster(t)
 * redisEngine({ cluster: { nodes: cluster.nodes } })
 */
export async function startCluster (t: Teardown): Promise<RedisCluster> {
  if (NOT_INSTALLED !== undefined) throw new Error(NOT_INSTALLED)
  const dir = await mkdtemp(join(tmpdir(), 'typed-sse-cluster-'))
  const ports = await clusterPorts(6)
  const servers = ports.map((port) => new RedisServer(port, [
    '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '1000',
    '--dir', dir
  ]))
  t.teardown(async () => {
    await Promise.all(servers.map(async (server) => await server.kill()))
    await rm(dir, { recursive: true, force: true })
  })
  await Promise.all(servers.map(async (server) => await server.start()))
  await promisify(execFile)('redis-cli', [
    '--cluster', 'create', ...ports.map((port) => `127.0.0.1:${port}`), '--cluster-replicas', '1', '--cluster-yes'
  ], { timeout: CLUSTER_TIMEOUT_MS })
  const cluster = new RedisCluster(servers)
  await cluster.settled()
  return cluster
}
