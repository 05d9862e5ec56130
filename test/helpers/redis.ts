/**
 * A private Redis for tests: `redis-server` on a free port of 127.0.0.1, without
 * persistence, its own process, stopped by PID at teardown (never any other Redis).
 * Tests skip with a clear message when the binary is missing.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { connect, createServer } from 'node:net'

/** Why Redis tests are skipped, or undefined when `redis-server` can run. */
export const REDIS_MISSING: string | undefined = spawnSync('redis-server', ['--version']).error === undefined
  ? undefined
  : 'redis-server not found: apt-get install redis-server'

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
  t.teardown(async () => await server.kill())
  await server.start()
  return server
}
