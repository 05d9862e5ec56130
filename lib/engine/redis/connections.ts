/**
 * The engine's own connections to Redis: the settings they are made with, waiting
 * until one is ready, running a command on one with the engine's coded errors, and
 * quitting. A connection is an ioredis `Redis` or `Cluster`; nothing here knows channels.
 */
import type { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis'
import { EngineError } from '../../core/errors.js'

/** Reconnection attempts back off exponentially up to this delay (plus jitter). */
const MAX_RECONNECT_DELAY_MS = 2000
/** Time `quit()` waits for a connection to end before it drops the socket. */
const QUIT_TIMEOUT_MS = 1000
/** ioredis's grace for a socket it ends before destroying it. */
const DISCONNECT_TIMEOUT_MS = 100

/** An ioredis connection of either kind. */
export type Connection = Redis | Cluster

/**
 * The settings of every connection the engine opens.
 *
 * Our connections never queue: a command while Redis is away fails at once (publish
 * reports it), and one in flight when the connection drops fails instead of being
 * sent again after the reconnect (a resent publish could be delivered twice). Every
 * command has a deadline, so a hung Redis cannot hold calls (and their memory).
 *
 * @example
 * new Redis(url, connectionOptions(5000, 2000))
 */
export function connectionOptions (connectTimeoutMs: number, commandTimeoutMs: number): RedisOptions {
  return {
    connectTimeout: connectTimeoutMs,
    commandTimeout: commandTimeoutMs,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    // The engine resubscribes itself, so it knows when each subscription is back.
    autoResubscribe: false,
    lazyConnect: false,
    // disconnect() between reconnection attempts arms a timer for a socket that is
    // already closed; keep it short so a closed engine does not hold the process.
    disconnectTimeout: DISCONNECT_TIMEOUT_MS,
    retryStrategy: (times: number) => Math.min(50 * 2 ** (times - 1), MAX_RECONNECT_DELAY_MS) + Math.floor(Math.random() * 100)
  }
}

/**
 * The settings of the command connection to one Redis: {@link connectionOptions}
 * without ioredis's timer per command; {@link Commands} keeps the deadline of every
 * command in flight with one watchdog.
 *
 * @example
 * new Redis(url, commandConnectionOptions(connectionOptions(5000, 2000)))
 */
export function commandConnectionOptions (settings: RedisOptions): RedisOptions {
  return { ...settings, commandTimeout: undefined }
}

/**
 * The settings of the engine's own Cluster connection (commands), over the user's
 * cluster options (startup nodes' auth, TLS, natMap): its node connections get the
 * settings of {@link connectionOptions}; the engine subscribes itself (shard by shard).
 *
 * @example
 * new Cluster(nodes, clusterOptions(connectionOptions(5000, 2000), userOptions))
 */
export function clusterOptions (settings: RedisOptions, user: ClusterOptions = {}): ClusterOptions {
  const { retryStrategy, enableOfflineQueue, lazyConnect, ...nodeSettings } = settings
  return {
    ...user,
    enableOfflineQueue,
    lazyConnect,
    enableReadyCheck: true,
    shardedSubscribers: false,
    clusterRetryStrategy: retryStrategy,
    // A failover or a moved slot is retried briefly (bounded by the command timeout).
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    slotsRefreshTimeout: settings.commandTimeout,
    redisOptions: { ...user.redisOptions, ...nodeSettings }
  }
}

/** The settings of a per-master subscriber connection on a cluster: the user's node options, then ours. */
export function shardOptions (settings: RedisOptions, user: ClusterOptions = {}): RedisOptions {
  return { ...user.redisOptions, ...settings }
}

/**
 * The engine's coded error, with the cause's message (or the connection's last
 * error) in its own so logs say why.
 *
 * @example
 * throw unavailable('a Redis command failed', err)
 */
export function unavailable (reason: string, cause?: unknown): Error {
  const detail = cause instanceof Error ? cause.message : undefined
  const err = new EngineError(detail === undefined ? reason : `${reason} (${detail})`)
  if (cause !== undefined) err.cause = cause
  return err
}

/** Error codes of a connection that waiting will not cure: `ready()` fails on the first. */
const REFUSED_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_NONAME', 'EHOSTUNREACH', 'ENETUNREACH', 'CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'ERR_TLS_CERT_ALTNAME_INVALID'])
/** Redis's replies to credentials it refuses (AUTH, HELLO ... AUTH). */
const AUTH_REFUSED = /^(WRONGPASS|NOAUTH|NOPERM)\b|invalid (username-)?password/i

/**
 * Why a connection failed, in words, with what to do: from the error ioredis emitted
 * (a Cluster's carries its last node's as `lastNodeError`). `isFinal` when retrying
 * cannot help (refused, unresolvable host, refused credentials, a bad certificate).
 */
export function connectionFailure (address: string, err: unknown): { message: string, isFinal: boolean } {
  const cause = (err as { lastNodeError?: unknown } | undefined)?.lastNodeError ?? err
  const { code, message, hostname } = (cause ?? {}) as { code?: string, message?: string, hostname?: string }
  if (code === 'ECONNREFUSED') return { isFinal: true, message: `Redis at ${address} refused the connection (ECONNREFUSED): is redis-server running there, and are the host and port right?` }
  if (code === 'ENOTFOUND' || code === 'EAI_NONAME' || code === 'EAI_AGAIN') {
    // EAI_AGAIN is a DNS server that did not answer: worth the wait until the deadline.
    return { isFinal: code !== 'EAI_AGAIN', message: `the host name ${hostname ?? ''} of ${address} does not resolve (${code}): check the host in the URL` }
  }
  if (typeof message === 'string' && AUTH_REFUSED.test(message)) {
    return { isFinal: true, message: `Redis at ${address} refused the credentials (${message.split('.')[0]}): check the user and password (redis://user:password@host:port)` }
  }
  const detail = code ?? message ?? String(cause)
  return { isFinal: code !== undefined && REFUSED_CODES.has(code), message: `Redis at ${address} failed: ${detail}` }
}

/**
 * Resolves when `connection` is ready; rejects with TYPED_SSE_ENGINE_UNAVAILABLE naming
 * `address` (never a password) and the cause: at once when the cause is final (a
 * refused connection, a host that does not resolve, refused credentials), else after
 * `timeoutMs` with the last error seen.
 *
 * @example
 * await whenConnected(commands, 5000, 'redis://127.0.0.1:6379')
 */
export async function whenConnected (connection: Connection, timeoutMs: number, address: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  let fail: ((err: Error) => void) | undefined
  const failed = new Promise<never>((_resolve, reject) => { fail = reject })
  failed.catch(() => {})
  const onError = (err: unknown): void => {
    lastError = err
    const failure = connectionFailure(address, err)
    if (failure.isFinal) fail?.(withCause(new EngineError(failure.message), err))
  }
  connection.on('error', onError)
  try {
    const isReady = await Promise.race([whenReady(connection, deadline), failed])
    if (isReady) return
    const waited = `Redis at ${address} did not answer within ${timeoutMs} ms`
    throw lastError === undefined
      ? new EngineError(`${waited}: is the address right, and does a firewall let it through?`)
      : withCause(new EngineError(`${waited}; last error: ${connectionFailure(address, lastError).message}`), lastError)
  } finally {
    connection.off('error', onError)
  }
}

function withCause (err: Error, cause: unknown): Error {
  err.cause = cause
  return err
}

/** True for ioredis's error when a command passed `commandTimeout`. */
export function isTimeout (err: unknown): boolean {
  return err instanceof Error && err.message === 'Command timed out'
}

/**
 * Resolves when `connection` is ready, or when `deadline` (a Date.now() value) passes
 * or the connection ends: true only when it is ready.
 *
 * @example
 * if (!await whenReady(commands, Date.now() + 2000)) throw unavailable('Redis is away')
 */
export async function whenReady (connection: Connection, deadline: number): Promise<boolean> {
  if (connection.status === 'ready') return true
  if (connection.status === 'end' || Date.now() >= deadline) return false
  let timer: NodeJS.Timeout | undefined
  await Promise.race([readyOrEnd(connection), new Promise<void>((resolve) => { timer = setTimeout(resolve, deadline - Date.now()) })])
  clearTimeout(timer)
  // Read again: the status changed while this waited.
  return (connection.status as string) === 'ready'
}

/** Per connection, the one wait for its next 'ready' or 'end' that every caller shares. */
const nextReadyOrEnd = new WeakMap<Connection, Promise<void>>()

/**
 * Resolves at the connection's next 'ready' or 'end'. Shared: after a failover every
 * channel's catch-up waits at once, and a listener pair each would pass Node's
 * listener limit (a leak warning) for what is one event.
 */
async function readyOrEnd (connection: Connection): Promise<void> {
  let waiting = nextReadyOrEnd.get(connection)
  if (waiting === undefined) {
    waiting = new Promise<void>((resolve) => {
      const done = (): void => {
        connection.off('ready', done).off('end', done)
        nextReadyOrEnd.delete(connection)
        resolve()
      }
      connection.on('ready', done).on('end', done)
    })
    nextReadyOrEnd.set(connection, waiting)
  }
  await waiting
}

/**
 * Ends a connection the engine opened: QUIT when it is up (so Redis frees it at
 * once), bounded by a timeout; a connection that is not up stops reconnecting.
 *
 * @example
 * await quit(subscriber)
 */
export async function quit (connection: Connection): Promise<void> {
  if (connection.status === 'end') return
  if (connection.status !== 'ready') {
    // Connecting, or waiting to retry: nothing to say goodbye on; stop retrying.
    connection.disconnect()
    return
  }
  let timer: NodeJS.Timeout | undefined
  const ended = new Promise<void>((resolve) => {
    connection.once('end', resolve)
    timer = setTimeout(() => { connection.disconnect(); resolve() }, QUIT_TIMEOUT_MS)
  })
  connection.quit().catch(() => connection.disconnect())
  await ended
  clearTimeout(timer)
}

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
 * made without: {@link commandConnectionOptions}): a timer armed and cleared per
 * publish cost as much as the rest of the engine's work on it. One connection answers
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
   * publish costs no wrapping promise and no extra microtask (each was a tenth of a
   * microsecond, per message, with one reader per channel).
   *
   * @example
   * await commands.run(async (redis) => await redis.publish(key, text))
   */
  run<T> (command: (connection: Connection) => Promise<T>): Promise<T> {
    if (this.#isClosed) return Promise.reject(new EngineError('the Redis engine is closed'))
    if (this.connection.status !== 'ready') return Promise.reject(unavailable(`the command connection to Redis is ${this.connection.status}`))
    if (this.#deadlineMs !== undefined) {
      let sent: Promise<T>
      try {
        sent = withDeadline(command(this.connection), this.#deadlineMs)
      } catch (err) {
        return Promise.reject(this.#failure(err))
      }
      return sent.then(undefined, this.#onFailure)
    }
    this.#corkForTick(this.connection as Redis)
    this.#made++
    this.#watchdog ??= setTimeout(this.#watch, this.#timeoutMs / WATCH_TICKS).unref()
    let sent: Promise<T>
    try {
      sent = command(this.connection)
    } catch (err) {
      this.#settled++
      return Promise.reject(this.#failure(err))
    }
    return sent.then(this.#onSettled, this.#onSettledFailure)
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

/** Connections reset and not yet closed. */
const resetting = new WeakSet<Connection>()

/**
 * Drops a connection that stopped answering and lets it reconnect: its pending
 * commands fail now (they are not resent), instead of piling up behind a hung server.
 */
export function reset (connection: Connection): void {
  // A cluster has a connection per node, and refreshes its slot map itself. Commands
  // sent together time out together: the first resets; the socket to a hung server
  // stays 'ready' while it closes, and each further disconnect() would add a listener.
  if (connection.status !== 'ready' || connection.isCluster || resetting.has(connection)) return
  resetting.add(connection)
  connection.once('close', () => resetting.delete(connection))
  connection.disconnect(true)
}
