/**
 * A stream's options: defaults and validation, checked once when given (at register
 * time as the plugin's defaults, at open time for one stream), and frozen.
 */
import { InvalidOptionError } from '../core/errors.js'
import { describe } from '../core/frame.js'
import { optionNames, positiveInteger, positiveIntegerOrFalse } from '../core/validate.js'
import type { StreamHub } from './hub.js'

/** Bytes a stream may hold for a client that does not read, before its queue policy applies. */
export const DEFAULT_MAX_QUEUE_BYTES = 1024 * 1024

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

/** Stream options with every default applied. */
export interface ResolvedStreamOptions {
  readonly maxQueueBytes: number
  readonly queuePolicy: QueuePolicy
  readonly retryMs: number | undefined
  readonly maxDurationMs: number | false
}

/** The keys of {@link StreamOptions}. */
export const STREAM_OPTION_NAMES = optionNames<StreamOptions>({ maxQueueBytes: true, queuePolicy: true, retryMs: true, maxDurationMs: true })

/** Checks a stream's own options and applies them over `base` (or the defaults). */
export function streamOptions (given: StreamOptions, base?: ResolvedStreamOptions): ResolvedStreamOptions {
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

/** What every stream of a plugin instance shares (one object for all: nothing per stream). */
export interface StreamContext {
  readonly hub: StreamHub
  readonly closeGraceMs: number
  /** The plugin's stream options, for streams opened without their own. */
  readonly options: ResolvedStreamOptions
  readonly maxEventBytes: number | false
}
