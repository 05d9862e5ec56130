/**
 * Every error this package throws or logs, in one place. Codes are stable: match on
 * `err.code` or with `instanceof`, never on the message. Messages name the bad value
 * and the fix. Errors that wrap another pass it as `cause` (`new EngineError(text, { cause })`).
 *
 * @example
 * import { errors } from 'fastify-typed-sse'
 * try { stream.send('tick', bad) } catch (err) {
 *   if (err instanceof errors.InvalidPayloadError) request.log.warn(err.message)
 * }
 */
import createError from '@fastify/error'

/** The last argument of an error that wraps another: `{ cause }`, as `new Error(message, { cause })` takes it. */
type Cause = { cause: unknown }

// Events: catalogs, payloads and frames

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

/** A catalog schema no JSON text could carry (`Type.Date()`, `Type.Uint8Array()`, `Type.BigInt()`...). */
export const UnserializableSchemaError = createError<'TYPED_SSE_UNSERIALIZABLE_SCHEMA', [string, string]>(
  'TYPED_SSE_UNSERIALIZABLE_SCHEMA',
  'Event "%s" has a schema that cannot be written as JSON (%s). Use JSON types only: for a date, Type.String() and date.toISOString().',
  500
)

/** A catalog schema using a string `format` that TypeBox has no checker for: every send would fail. */
export const UnknownFormatError = createError<'TYPED_SSE_UNKNOWN_FORMAT', [string, string, string]>(
  'TYPED_SSE_UNKNOWN_FORMAT',
  'Event "%s" uses format "%s", which TypeBox has no checker for, so every send would fail. Register one before defineEvents(): FormatRegistry.Set(\'%s\', (value) => ...).',
  500
)

/**
 * A catalog key that cannot be an SSE event name: empty, with CR or LF, a lone
 * surrogate, reserved (`sse:`), or a name EventSource dispatches itself (`error`, `open`).
 */
export const InvalidEventNameError = createError<'TYPED_SSE_INVALID_EVENT_NAME', [string]>(
  'TYPED_SSE_INVALID_EVENT_NAME',
  'Event name %s is not allowed: it must be non-empty, well-formed, contain no CR or LF, not start with "sse:" (reserved), and not be "error" or "open" (EventSource\'s own events). Rename the event in defineEvents().',
  500
)

/** A comment that is neither a string nor a number. */
export const InvalidCommentError = createError<'TYPED_SSE_INVALID_COMMENT', [string]>(
  'TYPED_SSE_INVALID_COMMENT',
  'Comment %s is not allowed: a comment is a string (or a number).',
  500
)

/** An event id with CR, LF, NUL or a lone surrogate, a number that is not finite, or another type. */
export const InvalidIdError = createError<'TYPED_SSE_INVALID_ID', [string]>(
  'TYPED_SSE_INVALID_ID',
  'Event id %s is not allowed: an id is a well-formed string without CR, LF or NUL, or a finite number; it is never altered.',
  500
)

/** A reconnection time that is not a non-negative safe integer. */
export const InvalidRetryError = createError<'TYPED_SSE_INVALID_RETRY', [string]>(
  'TYPED_SSE_INVALID_RETRY',
  'Retry %s is not allowed: it must be a non-negative integer number of milliseconds.',
  500
)

/** An event whose encoded size passes `maxEventBytes`. Nothing was written. */
export const EventTooLargeError = createError<'TYPED_SSE_EVENT_TOO_LARGE', [string, number, number]>(
  'TYPED_SSE_EVENT_TOO_LARGE',
  'Event "%s" encodes to %s bytes, more than maxEventBytes (%s). Nothing was sent.',
  500
)

// Options and registration

/** A plugin, stream or channel option of a wrong type, caught when it is given (a `TypeError`). */
export const InvalidOptionError = createError<'TYPED_SSE_INVALID_OPTION', [string, string]>(
  'TYPED_SSE_INVALID_OPTION',
  'Option "%s" is invalid: %s.',
  500,
  TypeError
)

/**
 * A numeric option out of its range (a `RangeError`; same code as {@link InvalidOptionError}),
 * e.g. a duration that Node's timers cannot hold.
 */
export const OptionRangeError = createError<'TYPED_SSE_INVALID_OPTION', [string, string]>(
  'TYPED_SSE_INVALID_OPTION',
  'Option "%s" is out of range: %s.',
  500,
  RangeError
)

/** The plugin registered a second time where a first registration is visible (fastify-plugin shares its decorators). */
export const AlreadyRegisteredError = createError<'TYPED_SSE_ALREADY_REGISTERED', []>(
  'TYPED_SSE_ALREADY_REGISTERED',
  'fastify-typed-sse is already registered on this Fastify instance (or on the parent it shares decorators with). Register it once, at the root: its reply.sse(), { sse } routes and app.sse work in every plugin below it.',
  500
)

// Streams: opening, writing, closing

/** `reply.sse()` on a reply that was already sent or already opened as a stream. */
export const AlreadySentError = createError<'TYPED_SSE_ALREADY_SENT', []>(
  'TYPED_SSE_ALREADY_SENT',
  'The reply was already sent or opened as a stream; call reply.sse() once, before any reply.send().',
  500
)

/** Opening a stream failed after it was admitted (e.g. an invalid header value set by the application). */
export const OpenFailedError = createError<'TYPED_SSE_OPEN_FAILED', [string, Cause?]>(
  'TYPED_SSE_OPEN_FAILED',
  'The event stream could not be opened (check the headers set before reply.sse()): %s',
  500
)

/** Logged when a producer (an iterable given to `from()`, or a route handler) fails after the stream opened. */
export const ProducerError = createError<'TYPED_SSE_PRODUCER_FAILED', [string, Cause?]>(
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

// Admission: negotiation and stream limits

/** A request whose Accept header refuses text/event-stream (when negotiation is on). */
export const NotAcceptableError = createError<'TYPED_SSE_NOT_ACCEPTABLE', [string]>(
  'TYPED_SSE_NOT_ACCEPTABLE',
  'This route answers text/event-stream only, and the request accepts "%s". Send Accept: text/event-stream (EventSource does).',
  406
)

/** A request refused because `maxStreams` or `maxStreamsPerKey` is reached. Sent with Retry-After. */
export const TooManyStreamsError = createError<'TYPED_SSE_TOO_MANY_STREAMS', [string]>(
  'TYPED_SSE_TOO_MANY_STREAMS',
  'Too many open event streams (%s). Retry after the Retry-After delay.',
  503
)

// Channels

/** A second `channel(name)` call whose catalog or options differ from the first. */
export const ChannelConflictError = createError<'TYPED_SSE_CHANNEL_CONFLICT', [string]>(
  'TYPED_SSE_CHANNEL_CONFLICT',
  'Channel "%s" already exists with another catalog or other options; use one definition per name.',
  500
)

/** `channel.subscribe(stream)` with a stream whose catalog lacks events of the channel's. */
export const CatalogMismatchError = createError<'TYPED_SSE_CATALOG_MISMATCH', [string, string]>(
  'TYPED_SSE_CATALOG_MISMATCH',
  'The stream cannot subscribe to channel "%s": its catalog does not declare %s. Open the stream with a catalog that has every event of the channel.',
  500
)

/** `publish()` or `subscribe()` on a channel that was dropped (`channel.drop()`, or idle). */
export const ChannelDroppedError = createError<'TYPED_SSE_CHANNEL_DROPPED', [string]>(
  'TYPED_SSE_CHANNEL_DROPPED',
  'Channel "%s" was dropped; get it again with app.sse.channel().',
  500
)

/**
 * Logged when one subscriber of a channel failed (its filter threw, or its stream could
 * not take the write): that stream alone was closed with reason `'error'`.
 */
export const SubscriberError = createError<'TYPED_SSE_SUBSCRIBER_FAILED', [string, string, Cause?]>(
  'TYPED_SSE_SUBSCRIBER_FAILED',
  'A subscriber of channel "%s" failed (%s), so its stream was closed; the other subscribers were served.',
  500
)

/**
 * Logged (once per channel and event) when a channel receives an event its catalog does
 * not declare, or whose payload fails its schema: another version of the application
 * published it (a rolling deploy), or the history holds foreign entries. It is skipped.
 */
export const ForeignEventError = createError<'TYPED_SSE_FOREIGN_EVENT', [string, string]>(
  'TYPED_SSE_FOREIGN_EVENT',
  'Channel "%s" skipped event "%s": its catalog does not declare it or the payload fails its schema (published by another version?).',
  500
)

// Engines

/** The fan-out or history engine (Redis) could not carry out an operation. */
export const EngineError = createError<'TYPED_SSE_ENGINE_UNAVAILABLE', [string, Cause?]>(
  'TYPED_SSE_ENGINE_UNAVAILABLE',
  'The event engine is unavailable: %s',
  503
)

// Metrics

/** `metrics` was given but prom-client cannot be imported. */
export const MetricsUnavailableError = createError<'TYPED_SSE_METRICS_UNAVAILABLE', [string, Cause?]>(
  'TYPED_SSE_METRICS_UNAVAILABLE',
  'Option "metrics" needs prom-client, which could not be loaded (%s). Install it: npm install prom-client',
  500
)

/** A metric of this plugin is already in the registry: another instance registered there with the same prefix. */
export const MetricsConflictError = createError<'TYPED_SSE_METRICS_CONFLICT', [string]>(
  'TYPED_SSE_METRICS_CONFLICT',
  'Metric "%s" is already registered in this registry (another Fastify instance with this plugin?). Give each instance its own registry or its own prefix.',
  500
)

/** A keyed event for a new key on a channel whose state holds `maxKeys` keys already. Nothing was published. */
export const TooManyKeysError = createError<'TYPED_SSE_TOO_MANY_KEYS', [string, number, string]>(
  'TYPED_SSE_TOO_MANY_KEYS',
  'Channel "%s" holds %s keys already (maxKeys), so the event for the new key %s was not published. Remove keys with channel.remove(key), or raise maxKeys.',
  500
)

/** A channel's `state` key function returned something that cannot be a key (not a non-empty string or a finite number, or too long). Nothing was published. */
export const InvalidStateKeyError = createError<'TYPED_SSE_INVALID_STATE_KEY', [string, string]>(
  'TYPED_SSE_INVALID_STATE_KEY',
  'The state key of event "%s" is invalid: %s. A key is a non-empty string of at most 512 characters, or a finite number. Nothing was published.',
  500
)
