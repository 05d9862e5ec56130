/**
 * The command connection: runs the engine's commands on its connection to Redis (or a
 * Cluster), with the coded error when Redis is away or a command fails, a deadline for
 * every command, and a reset of the connection when one passes it.
 */
import type { Redis } from 'ioredis'
import { EngineError } from '../../core/errors.js'
import { isTimeout, reset, unavailable, quit, type Connection } from './connections.js'

/** Ticks of the watchdog per command timeout: a command times out after 1 to 1.25 times `commandTimeoutMs`. */
const WATCH_TICKS = 4

/**
 * The command connection: runs one command at a time per call, with the coded error
 * when Redis is away or the command fails, and a reset of the connection when a
 * command timed out (a hung Redis): the reset fails what is still pending on it, so
 * nothing waits for, or is held for, a server that does not answer.
 *
 * On one Redis the deadline is kept by one watchdog for every command in flight, not
 * by ioredis's timer per command (`commandTimeout`, which the command connection is
 * made without: connections.ts `commandConnectionOptions`): with one reader per
 * channel, a timer armed and cleared per publish was a visible share of its CPU (a
 * Timeout, a list insert and removal, a clock read). One connection answers
 * in order, so calls settle in the order they were made, and a count tells whether the
 * calls made before a tick have all settled.
 */
export class Commands {
  readonly connection: Connection
  /** A deadline of our own for a cluster, whose redirections and retries happen above its nodes' command timeouts. */
  readonly #deadlineMs: number | undefined
  readonly #timeoutMs: number
  #isClosed = false
  /** The command socket is corked until the end of this tick (#corkForTick). */
  #isCorked = false
  /** Calls made, and calls settled, since the engine started (one Redis). */
  #made = 0
  #settled = 0
  /** `#made` at each of the watchdog's last ticks, oldest first. */
  #marks: number[] = []
  #watchdog: NodeJS.Timeout | undefined
  /** Calls up to this count were pending when the watchdog reset the connection: they failed for want of an answer. */
  #timedOutUpTo = 0

  constructor (connection: Connection, commandTimeoutMs: number) {
    this.connection = connection
    this.#timeoutMs = commandTimeoutMs
    this.#deadlineMs = connection.isCluster ? commandTimeoutMs : undefined
  }

  get isReady (): boolean {
    return !this.#isClosed && this.connection.status === 'ready'
  }

  /**
   * Runs `command` now, or rejects at once with TYPED_SSE_ENGINE_UNAVAILABLE when the
   * connection is not ready (nothing is queued for later).
   *
   * Not an async function: the command's own promise gets one pair of handlers, so a
   * publish costs no wrapping promise and no extra microtask.
   *
   * @example
   * await commands.run(async (redis) => await redis.publish(key, text))
   */
  run<T> (command: (connection: Connection) => Promise<T>): Promise<T> {
    if (this.#isClosed) return Promise.reject(new EngineError('the Redis engine is closed'))
    if (this.connection.status !== 'ready') return Promise.reject(unavailable(`the command connection to Redis is ${this.connection.status}`))
    const deadlineMs = this.#deadlineMs
    if (deadlineMs === undefined) {
      this.#corkForTick(this.connection as Redis)
      this.#made++
      this.#watchdog ??= setTimeout(this.#watch, this.#timeoutMs / WATCH_TICKS).unref()
    }
    let sent: Promise<T>
    try {
      sent = deadlineMs === undefined ? command(this.connection) : withDeadline(command(this.connection), deadlineMs)
    } catch (err) {
      // A command that throws instead of rejecting still fails as a promise, settled.
      if (deadlineMs === undefined) this.#settled++
      return Promise.reject(this.#failure(err))
    }
    return deadlineMs === undefined ? sent.then(this.#onSettled, this.#onSettledFailure) : sent.then(undefined, this.#onFailure)
  }

  readonly #onSettled = <T>(value: T): T => {
    this.#settled++
    return value
  }

  readonly #onSettledFailure = (err: unknown): never => {
    if (++this.#settled <= this.#timedOutUpTo) throw unavailable(`Redis did not answer within ${this.#timeoutMs} ms`, err)
    throw this.#failure(err)
  }

  readonly #onFailure = (err: unknown): never => { throw this.#failure(err) }

  /** The coded error of a command that failed; a timed-out one resets the connection first. */
  #failure (err: unknown): Error {
    if (isTimeout(err)) reset(this.connection)
    return unavailable('a Redis command failed', err)
  }

  /**
   * A tick of the watchdog, while calls are in flight: when a call made before the tick
   * {@link WATCH_TICKS} ticks ago has not settled, Redis stopped answering; the reset
   * fails every call pending on the connection.
   */
  readonly #watch = (): void => {
    this.#watchdog = undefined
    if (this.#settled === this.#made) {
      this.#marks = []
      return
    }
    this.#marks.push(this.#made)
    if (this.#marks.length > WATCH_TICKS && this.#settled < (this.#marks.shift() as number)) {
      this.#marks = []
      this.#timedOutUpTo = this.#made
      reset(this.connection)
    }
    if (!this.#isClosed) this.#watchdog = setTimeout(this.#watch, this.#timeoutMs / WATCH_TICKS).unref()
  }

  /**
   * Holds this tick's commands in the socket and writes them at its end, in one system
   * call: ioredis writes each command at once, and many channels publishing in one tick
   * (one reader each) paid a write per command, as much CPU as the rest of the publish.
   * Order is kept; a socket closed meanwhile fails its commands as before. (A cluster's
   * commands go to the node connections it picks, uncorked.)
   */
  #corkForTick (redis: Redis): void {
    if (this.#isCorked) return
    const socket = redis.stream as { cork?: () => void, uncork?: () => void } | undefined
    if (typeof socket?.cork !== 'function' || typeof socket.uncork !== 'function') return
    socket.cork()
    this.#isCorked = true
    process.nextTick(() => {
      this.#isCorked = false
      socket.uncork?.()
    })
  }

  /** Quits the connection; later calls reject. */
  async close (): Promise<void> {
    this.#isClosed = true
    clearTimeout(this.#watchdog)
    await quit(this.connection)
  }
}

async function withDeadline<T> (promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error('Command timed out')), ms)
  })
  try {
    return await Promise.race([promise, expired])
  } finally {
    clearTimeout(timer)
  }
}
