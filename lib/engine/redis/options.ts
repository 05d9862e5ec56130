/**
 * The Redis engine's options: defaults, and the checks made when the engine is
 * created (a wrong option throws there, never later).
 */
import type { Cluster, ClusterNode, ClusterOptions, Redis } from 'ioredis'
import { InvalidOptionError } from '../../core/errors.js'
import { describe } from '../../core/frame.js'
import { optionNames, positiveInteger, refuseUnknownOptions } from '../../core/validate.js'
import { MAX_TIMER_MS } from '../../core/timers.js'

/** Where the engine connects when given neither `url`, `client` nor `cluster`. */
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379'
/** Prepended to channel names to make stream keys and pub/sub channel names. */
export const DEFAULT_REDIS_PREFIX = 'sse:'
/** Time `ready()` waits for Redis to answer before it rejects. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5000
/** Time a Redis command may take before it fails with TYPED_SSE_ENGINE_UNAVAILABLE. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 2000
/** Live messages one channel holds while its catch-up read runs, before it gives up with a gap. */
export const DEFAULT_MAX_CATCH_UP_MESSAGES = 10_000

/** Time to live of a channel's history, refreshed by every publish: a day (or its `maxAgeMs` when longer). */
export const DEFAULT_HISTORY_TTL_MS = 86_400_000

/** Time to live of a stream's lease in the cluster-wide count of streams per key (renewed every third of it). */
export const DEFAULT_LEASE_TTL_MS = 15_000
/** A shorter lease time to live would have instances renewing in a tight loop. */
const MIN_LEASE_TTL_MS = 100
/** Time to live of an instance's presence lease per channel (renewed every third of it): a crashed instance's members leave within it. */
export const DEFAULT_PRESENCE_LEASE_MS = 15_000

/**
 * The cluster-wide count of streams per key (the plugin's `maxStreamsPerKey`, for
 * every instance on this Redis together).
 */
export interface RedisAdmissionOptions {
  /**
   * A lease not renewed for this long expires: the slots of an instance that died are
   * free again after at most this time. Each instance renews its leases every third of it.
   * @default 15000
   */
  leaseTtlMs?: number
  /**
   * What a new stream gets when Redis cannot count: `'refuse'` answers 503 with
   * Retry-After (TYPED_SSE_ENGINE_UNAVAILABLE), `'admit'` lets this instance's own
   * count decide (the stream is counted in Redis once it is back).
   * @default 'refuse'
   */
  whenUnavailable?: 'refuse' | 'admit'
}

/** Options of `redisEngine()`. Give at most one of `url`, `client` and `cluster`. */
export interface RedisEngineOptions {
  /**
   * Redis URL (`redis://`, `rediss://` for TLS, with user, password and db as usual).
   * The engine opens two connections to it (commands, subscriptions) and closes them.
   * @default 'redis://127.0.0.1:6379'
   */
  url?: string
  /**
   * An ioredis client you own, instead of `url`: a `Redis`, or a `Cluster` for Redis
   * Cluster (sharded pub/sub). The engine opens its own connections with its settings
   * (`duplicate()`: same hosts, auth, TLS), so they carry your settings but not your
   * offline queue. `close()` quits those, never your client.
   */
  client?: Redis | Cluster
  /**
   * Redis Cluster by its startup nodes (`[{ host, port }]`), and ioredis `Cluster`
   * options (auth, TLS, `natMap`) if needed: channels use sharded pub/sub (Redis 7).
   */
  cluster?: { nodes: ClusterNode[], options?: ClusterOptions }
  /**
   * Prefix of every key and pub/sub channel the engine uses: a channel's is
   * `<prefix>ch:{<name>}` (`sse:ch:{scores}`), the admission leases'
   * `<prefix>admission:{<stream key>}` (see "Redis keys" in the README).
   * @default 'sse:'
   */
  prefix?: string
  /**
   * Time to live of a channel's history (its Redis Stream), refreshed by every publish:
   * a history nobody published to for this long is deleted, and a client that comes
   * back with one of its ids gets `sse:resync` (also one that was up to date: an
   * expired history no longer knows its last id). Default: one day, or the channel's
   * history `maxAgeMs` when longer.
   * @default 86400000
   */
  historyTtlMs?: number
  /**
   * Time `ready()` (awaited when the plugin registers) waits for Redis, and the
   * connect timeout of the connections the engine opens.
   * @default 5000
   */
  connectTimeoutMs?: number
  /**
   * Time one Redis command (a publish, a replay read) may take. Past it, the call
   * rejects with TYPED_SSE_ENGINE_UNAVAILABLE and the connection is reset, so a hung
   * Redis (stopped, no reset) cannot hold pending publishes or memory. A publish that
   * timed out may still have been carried out (its outcome is unknown). On one Redis the
   * commands in flight are checked every quarter of it: a command fails 1 to 1.25 times
   * this after it was sent.
   * @default 2000
   */
  commandTimeoutMs?: number
  /**
   * Live messages one channel holds while, after a reconnect, it reads back what it
   * missed. Past it the channel stops holding and reports a gap (its streams resync).
   * @default 10000
   */
  maxCatchUpMessages?: number
  /**
   * The plugin's `maxStreamsPerKey` counted across every instance on this Redis (leases
   * with a time to live, so a crashed instance's slots are freed). `false` counts per
   * instance, as the in-memory engine does.
   * @default { leaseTtlMs: 15000, whenUnavailable: 'refuse' }
   */
  admission?: RedisAdmissionOptions | false
  /**
   * Presence (channels with `presence`): each instance renews a lease on the members it
   * holds every third of this; the members of an instance that stops (crash, kill -9)
   * leave (with `sse:leave`) within it, plus one renewal period of a live instance.
   * @default 15000
   */
  presenceLeaseMs?: number
}

/** The keys of {@link RedisEngineOptions}: any other is refused (a misspelt option is never ignored). */
const REDIS_OPTION_NAMES = optionNames<RedisEngineOptions>({
  url: true, client: true, cluster: true, prefix: true, connectTimeoutMs: true, commandTimeoutMs: true,
  maxCatchUpMessages: true, historyTtlMs: true, admission: true, presenceLeaseMs: true
})
/** The keys of {@link RedisAdmissionOptions}. */
const ADMISSION_OPTION_NAMES = optionNames<RedisAdmissionOptions>({ leaseTtlMs: true, whenUnavailable: true })
/** URL schemes ioredis speaks: plain and TLS. */
const REDIS_SCHEMES = new Set(['redis:', 'rediss:'])

/** The options with defaults applied. */
export interface ResolvedRedisOptions {
  /** Where the engine connects, for messages: a URL without its password, or a cluster's nodes. */
  readonly address: string
  readonly url: string | undefined
  readonly client: Redis | Cluster | undefined
  readonly cluster: { readonly nodes: ClusterNode[], readonly options: ClusterOptions | undefined } | undefined
  readonly prefix: string
  readonly connectTimeoutMs: number
  readonly commandTimeoutMs: number
  readonly maxCatchUpMessages: number
  /** `undefined`: {@link DEFAULT_HISTORY_TTL_MS}, or the channel's `maxAgeMs` when longer. */
  readonly historyTtlMs: number | undefined
  readonly admission: Required<RedisAdmissionOptions> | false
  readonly presenceLeaseMs: number
}

/**
 * Checks the options and applies defaults.
 *
 * @throws TYPED_SSE_INVALID_OPTION
 * @example
 * resolveRedisOptions({ url: 'redis://127.0.0.1:6379' }).prefix // 'sse:'
 */
export function resolveRedisOptions (options: RedisEngineOptions): ResolvedRedisOptions {
  if (options === null || typeof options !== 'object') throw new InvalidOptionError('redisEngine', `expected an options object, got ${describe(options)}`)
  refuseUnknownOptions('redisEngine()', options, REDIS_OPTION_NAMES)
  const sources = [options.url, options.client, options.cluster].filter((source) => source !== undefined)
  if (sources.length > 1) throw new InvalidOptionError('url', 'give one of url, client and cluster, not several')
  if ('url' in options && options.url === undefined) {
    // `url: process.env.REDIS_URL` with the variable unset: not a silent 127.0.0.1:6379.
    throw new InvalidOptionError('url', 'it is undefined (an unset environment variable?); give a redis:// or rediss:// URL, or leave url out to connect to redis://127.0.0.1:6379')
  }
  if (options.url !== undefined) checkUrl(options.url)
  if (options.client !== undefined && typeof options.client?.duplicate !== 'function') {
    throw new InvalidOptionError('client', 'expected an ioredis Redis or Cluster instance')
  }
  if (options.cluster !== undefined && (!Array.isArray(options.cluster?.nodes) || options.cluster.nodes.length === 0)) {
    throw new InvalidOptionError('cluster', 'expected { nodes: [{ host, port }, ...] } with at least one startup node')
  }
  if (options.prefix !== undefined && typeof options.prefix !== 'string') {
    throw new InvalidOptionError('prefix', `expected a string, got ${describe(options.prefix)}`)
  }
  return {
    address: addressOf(options),
    admission: admissionOptions(options.admission),
    url: options.url,
    client: options.client,
    cluster: options.cluster === undefined ? undefined : { nodes: options.cluster.nodes, options: options.cluster.options },
    prefix: options.prefix ?? DEFAULT_REDIS_PREFIX,
    connectTimeoutMs: positiveInteger('connectTimeoutMs', options.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS, MAX_TIMER_MS),
    commandTimeoutMs: positiveInteger('commandTimeoutMs', options.commandTimeoutMs, DEFAULT_COMMAND_TIMEOUT_MS, MAX_TIMER_MS),
    maxCatchUpMessages: positiveInteger('maxCatchUpMessages', options.maxCatchUpMessages, DEFAULT_MAX_CATCH_UP_MESSAGES),
    historyTtlMs: options.historyTtlMs === undefined ? undefined : positiveInteger('historyTtlMs', options.historyTtlMs, DEFAULT_HISTORY_TTL_MS),
    presenceLeaseMs: positiveInteger('presenceLeaseMs', options.presenceLeaseMs, DEFAULT_PRESENCE_LEASE_MS, MAX_TIMER_MS, MIN_LEASE_TTL_MS)
  }
}

function admissionOptions (given: RedisAdmissionOptions | false | undefined): Required<RedisAdmissionOptions> | false {
  if (given === false) return false
  if (given !== undefined && (given === null || typeof given !== 'object')) {
    throw new InvalidOptionError('admission', `expected false or { leaseTtlMs, whenUnavailable }, got ${describe(given)}`)
  }
  refuseUnknownOptions('admission', given ?? {}, ADMISSION_OPTION_NAMES, 'admission.')
  const whenUnavailable = given?.whenUnavailable ?? 'refuse'
  if (whenUnavailable !== 'refuse' && whenUnavailable !== 'admit') {
    throw new InvalidOptionError('admission.whenUnavailable', `expected 'refuse' or 'admit', got ${describe(whenUnavailable)}`)
  }
  return Object.freeze({
    leaseTtlMs: positiveInteger('admission.leaseTtlMs', given?.leaseTtlMs, DEFAULT_LEASE_TTL_MS, MAX_TIMER_MS, MIN_LEASE_TTL_MS),
    whenUnavailable
  })
}

/** A URL ioredis can use: redis:// or rediss://, or a Unix socket's path (an http:// URL would be sent Redis commands). */
function checkUrl (url: unknown): void {
  if (typeof url !== 'string') throw new InvalidOptionError('url', `expected a redis:// or rediss:// URL, got ${describe(url)}`)
  // A Unix socket's path, which ioredis takes as is.
  if (url.startsWith('/')) return
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new InvalidOptionError('url', `${JSON.stringify(redact(url))} is not a URL; expected redis://host:port or rediss://host:port`)
  }
  if (!REDIS_SCHEMES.has(parsed.protocol)) {
    throw new InvalidOptionError('url', `${redact(url)} has the scheme "${parsed.protocol}//"; expected redis:// (or rediss:// for TLS)`)
  }
}

/**
 * A URL without its password, for messages and logs (`redis://user@host:6379/0`);
 * text that is no URL loses everything between `//` and `@`.
 *
 * @example
 * redact('redis://app:secret@cache:6379') // 'redis://app@cache:6379'
 */
export function redact (url: string): string {
  try {
    const parsed = new URL(url)
    parsed.password = ''
    return parsed.href.replace(/\/$/, '')
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//')
  }
}

/** Where the engine connects, in words for messages (never a password). */
function addressOf (options: RedisEngineOptions): string {
  if (options.cluster !== undefined) return `cluster ${options.cluster.nodes.map(nodeAddress).join(', ')}`
  const client = options.client
  if (client !== undefined) {
    if (client.isCluster) return 'the cluster of the ioredis Cluster given as client'
    const { host, port, path } = (client as Redis).options
    return path ?? `redis://${host ?? '127.0.0.1'}:${port ?? 6379}`
  }
  return redact(options.url ?? DEFAULT_REDIS_URL)
}

function nodeAddress (node: ClusterNode): string {
  if (typeof node === 'number') return `127.0.0.1:${node}`
  if (typeof node === 'string') return redact(node)
  return `${node.host ?? '127.0.0.1'}:${node.port ?? 6379}`
}
