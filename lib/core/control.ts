/**
 * Control events: events the library itself sends, under names no catalog may use
 * (the `sse:` prefix is reserved). Their schemas are exported so clients can type them.
 */
import { Type, type Static } from '@sinclair/typebox'

/**
 * Sent by a stream with the `'drop-oldest'` queue policy once its client reads again:
 * `dropped` events were skipped while it did not.
 */
export const MISSED_EVENT = 'sse:missed'
/** Payload schema of {@link MISSED_EVENT}. */
export const MissedSchema = Type.Object({ dropped: Type.Integer({ minimum: 1 }) })
/** Payload of {@link MISSED_EVENT}. */
export type Missed = Static<typeof MissedSchema>

/**
 * Sent to a client whose `Last-Event-ID` a channel's history cannot replay from
 * (`unknown`, or already `evicted`), or whose live delivery lost messages that could
 * not be read back (`gap`: an engine outage longer than its history): the
 * application should resend a full snapshot.
 */
export const RESYNC_EVENT = 'sse:resync'
/** Payload schema of {@link RESYNC_EVENT}. */
export const ResyncSchema = Type.Object({
  channel: Type.String(),
  lastEventId: Type.String(),
  reason: Type.Union([Type.Literal('unknown'), Type.Literal('evicted'), Type.Literal('gap')])
})
/** Payload of {@link RESYNC_EVENT}. */
export type Resync = Static<typeof ResyncSchema>

/**
 * Sent when the server finishes a stream for good (`stream.end()`, a `from()` or a
 * route generator that completes, an ended channel). Its id is {@link END_EVENT} too,
 * so a client that reconnects anyway sends it as `Last-Event-ID` and gets 204, which
 * stops a plain EventSource (WHATWG HTML §9.2.3); the typed client stops on the event.
 */
export const END_EVENT = 'sse:end'
/** Payload schema of {@link END_EVENT}: empty. */
export const EndSchema = Type.Object({})
