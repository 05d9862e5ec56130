/**
 * Option defaults and validation. Options are checked once, when given (at register
 * time for the plugin, at open time for a stream), and frozen: nothing is guessed later.
 */
import type { FastifyRequest } from 'fastify'
import { describe } from './frame.js'
import type { AdmissionRules } from './admission.js'
import type { SseEngine } from './engine.js'
import { InvalidOptionError, OptionRangeError } from './errors.js'
import { resolveMetricsOptions, type MetricsOptions, type ResolvedMetricsOptions } from './metrics.js'
import { MAX_TIMER_MS } from './timers.js'

/** Silence after which a heartbeat comment is sent. */
export const DEFAULT_HEARTBEAT_MS = 15_000
/** Bytes a stream may hold for a client that does not read, before its queue policy applies. */
export const DEFAULT_MAX_QUEUE_BYTES = 1024 * 1024
/** How long closing streams may take to flush before their sockets are destroyed. */
export const DEFAULT_CLOSE_GRACE_MS = 1000
/** A longer Last-Event-ID header is ignored (no replay lookup with it). */
export const DEFAULT_MAX_LAST_EVENT_ID_BYTES = 256
/** The Retry-After sent with 503 when a stream limit is reached. */
export const DEFAULT_RETRY_AFTER_MS = 5000

/**
 * What a stream does when its client does not read and the queue would pass `maxQueueBytes`:
 * `'close'` ends the stream (the client reconnects and replays from its last id);
 * `'drop-oldest'` drops the oldest queued events and, once the client reads again,
 * sends an `sse:missed` control event with the number dropped; `'coalesce'` replaces a
 * queued keyed event (a channel with `state`) by a newer event of the same key, so a
 * client that does not read holds at most one event per key, and closes the stream
 * like `'close'` when unkeyed events pass the limit.
 */
export type QueuePolicy = 'close' | 'drop-oldest' | 'coalesce'

/** Options of one stream; given to the plugin they are the defaults of every stream. */
export interface StreamOptions {
  /**
   * Bytes queued for a client that does not read before `queuePolicy` applies.
   * @default 1048576 (1 MiB)
   */
  maxQueueBytes?: number
  /** @default 'close' */
  queuePolicy?: QueuePolicy
  /**
   * Sent as `retry:` when the stream opens: the client's reconnection delay in ms.
   * @default undefined (not sent; browsers wait about 3 s)
   */
  retryMs?: number
  /**
   * Close the stream after this many ms (the client reconnects, with its last id), so
   * long-lived connections rebalance across instances. `false` keeps it open.
   * @default false
   */
  maxDurationMs?: number | false
}

/** Options of the plugin. */
export interface SsePluginOptions extends StreamOptions {
  /**
   * Silence, in ms, after which a `:` comment is sent so proxies keep the connection.
   * Checked every quarter of this period, so it is sent after 1 to 1.25 times it. `false` disables.
   * @default 15000
   */
  heartbeatMs?: number | false
  /**
   * On `fastify.close()`, how long open streams may take to flush before their
   * sockets are destroyed.
   * @default 1000
   */
  closeGraceMs?: number
  /**
   * What carries channel messages and keeps their history: the in-memory engine
   * (one process) or `redisEngine()` (several instances). Closed on `fastify.close()`.
   * @default memoryEngine()
   */
  engine?: SseEngine
  /**
   * Streams this instance holds open at most; the next request gets 503 with Retry-After.
   * @default false (no limit)
   */
  maxStreams?: number | false
  /**
   * Streams one client (see `streamKey`) may hold open at once; the next gets 503 with Retry-After.
   * @default false (no limit)
   */
  maxStreamsPerKey?: number | false
  /**
   * Who a client is, for `maxStreamsPerKey`: its IP by default; a user id after auth is better.
   * @default (request) => request.ip
   */
  streamKey?: (request: FastifyRequest) => string
  /**
   * Retry-After (rounded up to seconds) sent with the 503 of a refused stream.
   * @default 5000
   */
  retryAfterMs?: number
  /**
   * An event that encodes to more bytes is refused with TYPED_SSE_EVENT_TOO_LARGE, nothing sent.
   * @default false (no limit)
   */
  maxEventBytes?: number | false
  /**
   * A longer Last-Event-ID header is ignored (`stream.lastEventId` is undefined), so no
   * replay lookup runs on hostile input.
   * @default 256
   */
  maxLastEventIdBytes?: number
  /**
   * Answer 406 to a request whose Accept header refuses text/event-stream. EventSource
   * always accepts it; a missing header accepts anything.
   * @default true
   */
  negotiate?: boolean
  /**
   * Prometheus metrics through prom-client (an optional peer dependency, imported only
   * then): `true` registers them in prom-client's default registry.
   * @default false
   */
  metrics?: boolean | MetricsOptions
}

/** Stream options with every default applied. */
export interface ResolvedStreamOptions {
  readonly maxQueueBytes: number
  readonly queuePolicy: QueuePolicy
  readonly retryMs: number | undefined
  readonly maxDurationMs: number | false
}

/** Plugin options with every default applied. */
export interface ResolvedPluginOptions {
  readonly heartbeatMs: number | false
  readonly closeGraceMs: number
  readonly stream: ResolvedStreamOptions
  /** `undefined`: the plugin makes an in-memory engine. */
  readonly engine: SseEngine | undefined
  readonly admission: AdmissionRules
  readonly maxEventBytes: number | false
  readonly maxLastEventIdBytes: number
  readonly metrics: ResolvedMetricsOptions | false
}

/**
 * The one check of every count, size and duration option: a safe integer from `min`
 * (1 unless said) to `max` (a TypeError for another type, a RangeError out of range).
 *
 * @throws TYPED_SSE_INVALID_OPTION
 * @example
 * positiveInteger('heartbeatMs', given.heartbeatMs, 15_000, MAX_TIMER_MS)
 */
export function positiveInteger (name: string, value: unknown, fallback: number, max = Number.MAX_SAFE_INTEGER, min = 1): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number') throw new InvalidOptionError(name, `expected an integer, got ${describe(value)}`)
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new OptionRangeError(name, `expected an integer from ${min} to ${max}, got ${value}`)
  }
  return value
}

/** {@link positiveInteger}, or `false` for "no limit". */
export function positiveIntegerOrFalse (name: string, value: unknown, fallback: number | false, max?: number): number | false {
  return value === false ? false : positiveInteger(name, value, fallback as number, max)
}

function ipKey (request: FastifyRequest): string {
  return request.ip
}

function functionOption<T> (name: string, value: T | undefined, fallback: T): T {
  if (value === undefined) return fallback
  if (typeof value !== 'function') throw new InvalidOptionError(name, `expected a function, got ${describe(value)}`)
  return value
}

function booleanOption (name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw new InvalidOptionError(name, `expected a boolean, got ${describe(value)}`)
  return value
}

function engineOption (engine: unknown): SseEngine | undefined {
  if (engine === undefined) return undefined
  const candidate = engine as Partial<SseEngine> | null
  if (typeof candidate?.channel !== 'function' || typeof candidate.close !== 'function' || typeof candidate.compareIds !== 'function') {
    throw new InvalidOptionError('engine', 'expected an engine such as memoryEngine() or redisEngine({ url })')
  }
  return engine as SseEngine
}

function streamOptions (given: StreamOptions, base?: ResolvedStreamOptions): ResolvedStreamOptions {
  if (given === null || typeof given !== 'object') throw new InvalidOptionError('options', `expected an object, got ${describe(given)}`)
  const policy = given.queuePolicy ?? base?.queuePolicy ?? 'close'
  if (policy !== 'close' && policy !== 'drop-oldest' && policy !== 'coalesce') {
    throw new InvalidOptionError('queuePolicy', `expected 'close', 'drop-oldest' or 'coalesce', got ${describe(policy)}`)
  }
  const retryMs = given.retryMs ?? base?.retryMs
  if (retryMs !== undefined) positiveInteger('retryMs', retryMs, 0, Number.MAX_SAFE_INTEGER, 0)
  return Object.freeze({
    maxQueueBytes: positiveInteger('maxQueueBytes', given.maxQueueBytes, base?.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES),
    queuePolicy: policy,
    retryMs,
    maxDurationMs: given.maxDurationMs === undefined
      ? base?.maxDurationMs ?? false
      : positiveIntegerOrFalse('maxDurationMs', given.maxDurationMs, false)
  })
}

/**
 * Refuses a key that is not in `known`: a misspelt option (`{ histroy: true }`) would
 * otherwise be ignored without a word, from untyped code or through a cast. Each options
 * object keeps its list of keys in one place, next to its checks.
 *
 * @throws TYPED_SSE_INVALID_OPTION naming the key, where it was given and the known ones
 * @example
 * refuseUnknownOptions('channel()', { histroy: true }, ['history', 'onResync', 'idleMs'])
 */
export function refuseUnknownOptions (where: string, given: object, known: readonly string[], keyPrefix = ''): void {
  for (const name of Object.keys(given)) {
    if (!known.includes(name)) throw new InvalidOptionError(`${keyPrefix}${name}`, `not an option of ${where} (known: ${known.join(', ')})`)
  }
}

/**
 * The keys of an options type, listed once: the compiler checks that the list names every
 * key and nothing else, so an option added to the type cannot be refused as unknown.
 *
 * @example
 * const HISTORY_OPTION_NAMES = optionNames<HistoryOptions>({ maxEvents: true, maxAgeMs: true })
 */
export function optionNames<T> (names: { readonly [K in keyof Required<T>]: true }): readonly string[] {
  return Object.keys(names)
}

/** The keys of {@link StreamOptions}. */
const STREAM_OPTION_NAMES = optionNames<StreamOptions>({ maxQueueBytes: true, queuePolicy: true, retryMs: true, maxDurationMs: true })
/** The keys of `reply.sse()`'s options: a stream's, and its own deadline. */
export const OPEN_OPTION_NAMES = [...STREAM_OPTION_NAMES, 'endsAt']
/** What `app.register(plugin, options)` passes through to every plugin. */
const FASTIFY_REGISTER_OPTIONS = ['prefix', 'logLevel', 'logSerializers']
const PLUGIN_OPTION_NAMES = new Set([
  ...STREAM_OPTION_NAMES, 'heartbeatMs', 'closeGraceMs', 'engine', 'maxStreams',
  'maxStreamsPerKey', 'streamKey', 'retryAfterMs', 'maxEventBytes', 'maxLastEventIdBytes', 'negotiate', 'metrics',
  ...FASTIFY_REGISTER_OPTIONS
])

/**
 * Applies defaults to the plugin's options and checks them.
 *
 * @throws TYPED_SSE_INVALID_OPTION
 * @example
 * resolvePluginOptions({ heartbeatMs: 5000 }).stream.maxQueueBytes // 1048576
 */
export function resolvePluginOptions (given: SsePluginOptions = {}): ResolvedPluginOptions {
  if (given === null || typeof given !== 'object') {
    throw new InvalidOptionError('options', `expected an object, got ${describe(given)}`)
  }
  // A misspelt or misplaced option (`{ stream: { maxQueueBytes } }`) would be ignored
  // without a word: refuse it. Fastify's own register options come along too.
  for (const name of Object.keys(given)) {
    if (!PLUGIN_OPTION_NAMES.has(name)) throw new InvalidOptionError(name, `not an option of this plugin (known: ${[...PLUGIN_OPTION_NAMES].filter((known) => !FASTIFY_REGISTER_OPTIONS.includes(known)).join(', ')})`)
  }
  return Object.freeze({
    // The ticker runs every quarter period and the grace is one timer: both must fit Node's timers.
    heartbeatMs: positiveIntegerOrFalse('heartbeatMs', given.heartbeatMs, DEFAULT_HEARTBEAT_MS, MAX_TIMER_MS),
    closeGraceMs: positiveInteger('closeGraceMs', given.closeGraceMs, DEFAULT_CLOSE_GRACE_MS, MAX_TIMER_MS),
    stream: streamOptions(given),
    engine: engineOption(given.engine),
    admission: Object.freeze({
      maxStreams: positiveIntegerOrFalse('maxStreams', given.maxStreams, false),
      maxStreamsPerKey: positiveIntegerOrFalse('maxStreamsPerKey', given.maxStreamsPerKey, false),
      streamKey: functionOption('streamKey', given.streamKey, ipKey),
      retryAfterMs: positiveInteger('retryAfterMs', given.retryAfterMs, DEFAULT_RETRY_AFTER_MS),
      negotiate: booleanOption('negotiate', given.negotiate, true)
    }),
    maxEventBytes: positiveIntegerOrFalse('maxEventBytes', given.maxEventBytes, false),
    maxLastEventIdBytes: positiveInteger('maxLastEventIdBytes', given.maxLastEventIdBytes, DEFAULT_MAX_LAST_EVENT_ID_BYTES),
    metrics: resolveMetricsOptions(given.metrics)
  })
}

/**
 * Applies a stream's own options over the plugin's. Without own options the
 * plugin's frozen object is returned as is (no allocation per stream).
 *
 * @throws TYPED_SSE_INVALID_OPTION
 * @example
 * resolveStreamOptions(plugin.stream, { maxDurationMs: 60_000 })
 */
export function resolveStreamOptions (base: ResolvedStreamOptions, given?: StreamOptions): ResolvedStreamOptions {
  return given === undefined ? base : streamOptions(given, base)
}
