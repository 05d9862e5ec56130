/**
 * The plugin's options: defaults and validation, checked once at register time and
 * frozen, so nothing is guessed later. A stream's own options live in stream/options.ts.
 */
import type { FastifyRequest } from 'fastify'
import { InvalidOptionError } from '../core/errors.js'
import { describe } from '../core/frame.js'
import { MAX_TIMER_MS } from '../core/timers.js'
import { positiveInteger, positiveIntegerOrFalse } from '../core/validate.js'
import type { SseEngine } from '../engine/engine.js'
import { STREAM_OPTION_NAMES, streamOptions, type ResolvedStreamOptions, type StreamOptions } from '../stream/options.js'
import type { AdmissionRules } from './admission.js'
import { resolveMetricsOptions, type MetricsOptions, type ResolvedMetricsOptions } from './metrics.js'

/** Silence after which a heartbeat comment is sent. */
export const DEFAULT_HEARTBEAT_MS = 15_000
/** How long closing streams may take to flush before their sockets are destroyed. */
export const DEFAULT_CLOSE_GRACE_MS = 1000
/** A longer Last-Event-ID header is ignored (no replay lookup with it). */
export const DEFAULT_MAX_LAST_EVENT_ID_BYTES = 256
/** The Retry-After sent with 503 when a stream limit is reached. */
export const DEFAULT_RETRY_AFTER_MS = 5000



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


