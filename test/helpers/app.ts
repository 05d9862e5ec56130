/**
 * Builders for tests: a Fastify app with the plugin, listening on 127.0.0.1 port 0,
 * closed in teardown, and a log capture so tests can assert logged error codes.
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { Writable } from 'node:stream'
import sse, { type EventCatalog, type OpenOptions, type SseStream, type SsePluginOptions } from '../../lib/index.js'

/** What tap's `t` offers that the builders use. */
export interface Teardown {
  teardown (fn: () => unknown): void
}

/** One pino log line, parsed. */
export interface LogLine {
  level: number
  msg: string
  err?: { code?: string, type?: string, message?: string }
  [key: string]: unknown
}

/** pino's numeric levels. */
export const LEVEL = { info: 30, warn: 40, error: 50 } as const

export interface BuildOptions {
  /** Plugin options. */
  sse?: SsePluginOptions
  /** Fastify options (the logger is always the capturing one). */
  fastify?: Omit<FastifyServerOptions, 'logger' | 'loggerInstance'>
}

export interface TestApp {
  app: FastifyInstance
  /** Every log line written so far. */
  logs: LogLine[]
  /** Listens on 127.0.0.1, port 0; resolves to the origin, e.g. `http://127.0.0.1:40123`. */
  start (): Promise<string>
}

/**
 * A Fastify app with the plugin registered, closed in `t.teardown`.
 *
 * @example
 * const { app, start } = await buildApp(t, { sse: { heartbeatMs: 100 } })
 * app.get('/s', (request, reply) => { reply.sse(catalog) })
 * const origin = await start()
 */
export async function buildApp (t: Teardown, options: BuildOptions = {}): Promise<TestApp> {
  const logs: LogLine[] = []
  const sink = new Writable({
    write (chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') logs.push(JSON.parse(line) as LogLine)
      callback()
    }
  })
  const app = Fastify({ ...options.fastify, logger: { level: 'info', stream: sink } })
  t.teardown(() => app.close())
  await app.register(sse, options.sse ?? {})
  return {
    app,
    logs,
    start: () => app.listen({ port: 0, host: '127.0.0.1' })
  }
}

/**
 * A queue of values produced by one side (a route handler) and awaited by the other
 * (the test), each wait bounded in time.
 */
export class Inbox<T> {
  readonly #items: T[] = []
  readonly #waiters: Array<(item: T) => void> = []

  push (item: T): void {
    const waiter = this.#waiters.shift()
    if (waiter !== undefined) waiter(item)
    else this.#items.push(item)
  }

  /** How many values wait to be taken. */
  get size (): number {
    return this.#items.length
  }

  /** The next value, or a rejection after `timeoutMs`. */
  next (timeoutMs = 2000): Promise<T> {
    // By length, not by value: `undefined` is a value too.
    if (this.#items.length > 0) return Promise.resolve(this.#items.shift() as T)
    return withTimeout(new Promise<T>((resolve) => { this.#waiters.push(resolve) }), timeoutMs, 'Inbox.next')
  }
}

/**
 * Declares `GET path` opening a stream of `catalog` and hands each opened stream to
 * the test, which then drives it.
 *
 * @example
 * const streams = streamRoute(app, '/s', catalog)
 * const stream = await streams.next()
 */
export function streamRoute<C extends EventCatalog<any>> (
  app: FastifyInstance, path: string, catalog: C, open?: OpenOptions
): Inbox<SseStream<C>> {
  const inbox = new Inbox<SseStream<C>>()
  app.get(path, (_request, reply) => {
    inbox.push(reply.sse(catalog, open))
  })
  return inbox
}

/** Rejects with a labelled error when `promise` takes longer than `ms`. */
export function withTimeout<T> (promise: Promise<T>, ms: number, label: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${label}: timed out after ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** Polls `condition` every `stepMs` until true; rejects after `timeoutMs`. */
export async function waitUntil (condition: () => boolean, timeoutMs = 2000, label = 'condition', stepMs = 5): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${label}: not met after ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, stepMs))
  }
}

/** Resolves after `ms`. */
export function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** The error `fn` throws (or undefined), for asserting `err.code`. */
export function thrown (fn: () => unknown): (Error & { code?: string }) | undefined {
  try {
    fn()
  } catch (err) {
    return err as Error & { code?: string }
  }
  return undefined
}

/**
 * The origin a child server process prints as its first line once it listens (the
 * test helpers' *-child.ts); rejects if it exits first, or after 60 s (a busy machine
 * loads a TypeScript child slowly).
 *
 * @example
 * const origin = await childOrigin(spawn(process.execPath, ['--import', 'tsx', file], { stdio: ['ignore', 'pipe', 'inherit'] }))
 */
export function childOrigin (child: { stdout: NodeJS.ReadableStream | null, once: (event: 'exit', listener: () => void) => unknown }): Promise<string> {
  return withTimeout(new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      if (out.includes('\n')) resolve(out.trim())
    })
    child.once('exit', () => reject(new Error('the child exited before listening')))
  }), 60_000, 'child listening')
}
