/**
 * A private Redis for tests: `redis-server` on a free port of 127.0.0.1, without
 * persistence, its own process, stopped by PID at teardown (never any other Redis).
 * Tests skip with a clear message when the binary is missing, except under CI=true,
 * where they run and fail: a CI without Redis must not pass by skipping.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { connect, createServer } from 'node:net'
import type { Redis } from 'ioredis'
import type { ChannelListener, EngineMessage, SseEngine } from '../../lib/engine.js'

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
  #process: ChildProcess | undefined

  constructor (port: number) {
    this.port = port
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
      '--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'
    ], { stdio: ['ignore', 'ignore', 'pipe'] })
    this.#process = child
    child.on('exit', () => { if (this.#process === child) this.#process = undefined })
    const deadline = Date.now() + START_TIMEOUT_MS
    for (;;) {
      try {
        if ((await rawCommand(this.port, 'PING')).startsWith('+PONG')) return
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
