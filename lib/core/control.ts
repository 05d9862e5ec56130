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

/**
 * Sent to the subscribers of a channel with keyed state when a key is deleted
 * (`channel.remove(key)`): the client drops the key from its state. It carries an id
 * like the events it follows, so a replay delivers it too.
 */
export const REMOVE_EVENT = 'sse:remove'
/** Payload schema of {@link REMOVE_EVENT}. */
export const RemoveSchema = Type.Object({ key: Type.String() })
/** Payload of {@link REMOVE_EVENT}. */
export type Remove = Static<typeof RemoveSchema>

/**
 * Sent to the subscribers of a channel with `presence: { events: true }` when a member
 * opens its first connection anywhere (on any instance); once per member, not per connection.
 */
export const JOIN_EVENT = 'sse:join'
/** Payload schema of {@link JOIN_EVENT}: the member's id and info (as the channel's `presence.info` schema says). */
export const JoinSchema = Type.Object({ id: Type.String(), info: Type.Unknown() })
/** Payload of {@link JOIN_EVENT}. */
export type Join<Info = unknown> = { id: string, info: Info }

/**
 * Sent to the subscribers of a channel with `presence: { events: true }` when a member's
 * last connection closes (or, on Redis, when the instance that held it stopped renewing its lease).
 */
export const LEAVE_EVENT = 'sse:leave'
/** Payload schema of {@link LEAVE_EVENT}. */
export const LeaveSchema = Type.Object({ id: Type.String() })
/** Payload of {@link LEAVE_EVENT}. */
export type Leave = Static<typeof LeaveSchema>
