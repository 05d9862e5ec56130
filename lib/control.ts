/**
 * Control events: events the library itself sends, under names no catalog may use
 * (the `sse:` prefix is reserved). Their schemas are exported so clients can type them.
 */
import { Type, type Static } from '@sinclair/typebox'
import { dataField, eventField } from './encoder.js'

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
 * (unknown, or already evicted): the application should resend a full snapshot.
 */
export const RESYNC_EVENT = 'sse:resync'
/** Payload schema of {@link RESYNC_EVENT}. */
export const ResyncSchema = Type.Object({
  channel: Type.String(),
  lastEventId: Type.String(),
  reason: Type.Union([Type.Literal('unknown'), Type.Literal('evicted')])
})
/** Payload of {@link RESYNC_EVENT}. */
export type Resync = Static<typeof ResyncSchema>

/**
 * Encodes a control event. The payloads are built by this library from numbers and
 * strings, so JSON.stringify cannot fail or produce a line break.
 *
 * @example
 * controlFrame(MISSED_EVENT, { dropped: 3 }) // 'event: sse:missed\ndata: {"dropped":3}\n\n'
 */
export function controlFrame (name: typeof MISSED_EVENT | typeof RESYNC_EVENT, payload: Missed | Resync): string {
  return eventField(name, true) + dataField(JSON.stringify(payload)) + '\n'
}
