/**
 * Every error this package throws or logs, in one place. Codes are stable: match on
 * `err.code`, never on the message. Messages name the bad value and the fix.
 *
 * @example
 * import { errors } from 'fastify-typed-sse'
 * try { stream.send('tick', bad) } catch (err) {
 *   if (err.code === errors.InvalidPayloadError.code) request.log.warn(err.message)
 * }
 */
import createError from '@fastify/error'

/** A payload does not match its event's schema. Nothing was written. */
export const InvalidPayloadError = createError<'TYPED_SSE_INVALID_PAYLOAD', [string, string, string]>(
  'TYPED_SSE_INVALID_PAYLOAD',
  'Payload of event "%s" is invalid at "%s": %s. Nothing was sent; fix the data or the schema.',
  500
)

/** An event name that the catalog does not declare (only reachable from untyped code). */
export const UnknownEventError = createError<'TYPED_SSE_UNKNOWN_EVENT', [string, string]>(
  'TYPED_SSE_UNKNOWN_EVENT',
  'Event "%s" is not in the catalog (known: %s). Declare it in defineEvents().',
  500
)

/** A catalog key that cannot be an SSE event name: empty, with CR or LF, or reserved. */
export const InvalidEventNameError = createError<'TYPED_SSE_INVALID_EVENT_NAME', [string]>(
  'TYPED_SSE_INVALID_EVENT_NAME',
  'Event name %s is not allowed: it must be non-empty, contain no CR or LF, and not start with "sse:" (reserved).',
  500
)

/** A catalog schema using a string `format` that TypeBox has no checker for: every send would fail. */
export const UnknownFormatError = createError<'TYPED_SSE_UNKNOWN_FORMAT', [string, string, string]>(
  'TYPED_SSE_UNKNOWN_FORMAT',
  'Event "%s" uses format "%s", which TypeBox has no checker for, so every send would fail. Register one before defineEvents(): FormatRegistry.Set(\'%s\', (value) => ...).',
  500
)

/** An event id with CR, LF or NUL, or a number that is not finite. */
export const InvalidIdError = createError<'TYPED_SSE_INVALID_ID', [string]>(
  'TYPED_SSE_INVALID_ID',
  'Event id %s is not allowed: an id is a string without CR, LF or NUL, or a finite number.',
  500
)

/** A reconnection time that is not a non-negative safe integer. */
export const InvalidRetryError = createError<'TYPED_SSE_INVALID_RETRY', [string]>(
  'TYPED_SSE_INVALID_RETRY',
  'Retry %s is not allowed: it must be a non-negative integer number of milliseconds.',
  500
)

/** A plugin, stream or channel option with a wrong type or value, caught when it is given. */
export const InvalidOptionError = createError<'TYPED_SSE_INVALID_OPTION', [string, string]>(
  'TYPED_SSE_INVALID_OPTION',
  'Option "%s" is invalid: %s.',
  500
)

/** `reply.sse()` on a reply that was already sent or already opened as a stream. */
export const AlreadySentError = createError<'TYPED_SSE_ALREADY_SENT', []>(
  'TYPED_SSE_ALREADY_SENT',
  'The reply was already sent or opened as a stream; call reply.sse() once, before any reply.send().',
  500
)

/** Logged when a producer (an iterable given to `from()`, or a route handler) fails after the stream opened. */
export const ProducerError = createError<'TYPED_SSE_PRODUCER_FAILED', [string]>(
  'TYPED_SSE_PRODUCER_FAILED',
  'The event producer failed after the stream opened, so the stream was ended: %s',
  500
)

/** Logged when a stream is closed because its client did not read and its queue passed `maxQueueBytes`. */
export const QueueFullError = createError<'TYPED_SSE_QUEUE_FULL', [number, number]>(
  'TYPED_SSE_QUEUE_FULL',
  'The client is not reading: %s bytes queued would pass maxQueueBytes (%s), so the stream was closed. The client reconnects and replays.',
  500
)

/**
 * Logged when a stream is closed because its client accepted no byte for two heartbeat
 * periods while events were queued: a half-open or frozen connection.
 */
export const ClientStalledError = createError<'TYPED_SSE_CLIENT_STALLED', [number, number]>(
  'TYPED_SSE_CLIENT_STALLED',
  'The client accepted no byte for %s ms with %s bytes queued (half-open or frozen connection), so the stream was closed. The client reconnects and replays.',
  500
)

/** An event whose encoded size passes `maxEventBytes`. Nothing was written. */
export const EventTooLargeError = createError<'TYPED_SSE_EVENT_TOO_LARGE', [string, number, number]>(
  'TYPED_SSE_EVENT_TOO_LARGE',
  'Event "%s" encodes to %s bytes, more than maxEventBytes (%s). Nothing was sent.',
  500
)

/** A request refused because `maxStreams` or `maxStreamsPerKey` is reached. Sent with Retry-After. */
export const TooManyStreamsError = createError<'TYPED_SSE_TOO_MANY_STREAMS', [string]>(
  'TYPED_SSE_TOO_MANY_STREAMS',
  'Too many open event streams (%s). Retry later.',
  503
)

/** A request whose Accept header refuses text/event-stream (when negotiation is on). */
export const NotAcceptableError = createError<'TYPED_SSE_NOT_ACCEPTABLE', [string]>(
  'TYPED_SSE_NOT_ACCEPTABLE',
  'This route answers text/event-stream only, and the request accepts "%s".',
  406
)

/** A second `channel(name)` call whose catalog or options differ from the first. */
export const ChannelConflictError = createError<'TYPED_SSE_CHANNEL_CONFLICT', [string]>(
  'TYPED_SSE_CHANNEL_CONFLICT',
  'Channel "%s" already exists with another catalog or other options; use one definition per name.',
  500
)

/** The fan-out or history engine (Redis) could not carry out an operation. */
export const EngineError = createError<'TYPED_SSE_ENGINE_UNAVAILABLE', [string]>(
  'TYPED_SSE_ENGINE_UNAVAILABLE',
  'The event engine is unavailable: %s',
  503
)
