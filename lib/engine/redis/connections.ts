/**
 * The engine's own connections to Redis: the settings they are made with, waiting
 * until one is ready, the engine's coded errors, resetting and quitting (commands run
 * through commands.ts). A connection is an ioredis `Redis` or `Cluster`; nothing here knows channels.
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
 * without ioredis's timer per command; `Commands` (commands.ts) keeps the deadline of every
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
