/**
 * fastify-typed-sse: Server-Sent Events for Fastify with typed, validated events.
 *
 * Layout (one concern per file; each may import only what its line says):
 * - index.ts         public exports only
 * - plugin.ts        registration, decorators, hooks, `app.sse`: every module below
 * - route.ts         the `{ sse }` route option: its types and handler wrapper (stream, symbols)
 * - options.ts       defaults and validation, frozen (errors, frame, timers)
 * - catalog.ts       defineEvents: schemas -> validator and serializer, compiled once (errors, frame)
 * - frame.ts         every frame on the wire (event, id, retry, data, comment, control): pure (errors)
 * - control.ts       the library's control events: names and schemas (typebox only)
 * - stream.ts        one stream's life: open, typed writes, close (catalog, close-listeners, control, errors, frame, hub,
 *                    last-event-id, options types, producer, queue, symbols, timers, transport)
 * - queue.ts         a stream's backlog: frames waiting for drain, the overflow policy, lost-event count (hub, options types)
 * - close-listeners.ts who a stream tells when it closes: none, one or several, functions or handlers (hub types, symbols)
 * - last-event-id.ts the Last-Event-ID header decoded as UTF-8, bounded (nothing of ours)
 * - transport/       per HTTP version: headers, cork, close; the answer without a stream (nothing of ours)
 * - producer.ts      from(iterable): backpressure, return() on disconnect (catalog types)
 * - hub.ts           the shared heartbeat ticker, stalled clients, the counters (symbols)
 * - channel.ts       fan-out, per-subscriber isolation, filters, replay, snapshots (catalog, frame, merge, options, presence,
 *                    replay-reads, state, stream types)
 * - state.ts         keyed state: the option, key checks, the in-memory store (catalog, control, errors, frame, options)
 * - presence.ts      presence: the option, members per stream, join/leave, the in-memory store (catalog, control, errors, frame, options)
 * - replay-reads.ts  replays' history reads: paged, bounded at once, shared (engine types)
 * - channels.ts      the channels of an instance by name (channel, history, options, replay-reads)
 * - merge.ts         replay-then-live by position: pure, property-tested (nothing)
 * - engine.ts        the engine interface: types only (nothing)
 * - memory-engine.ts the in-memory engine (history, state, presence)
 * - history.ts       the in-memory ring history (options)
 * - admission.ts     Accept negotiation and stream limits (errors)
 * - openapi.ts       OpenAPI response schemas from catalogs (catalog)
 * - metrics.ts       Prometheus collectors over the counters, prom-client loaded on demand (errors)
 * - errors.ts        every coded error (@fastify/error)
 * - symbols.ts       internal keys (nothing)
 * - timers.ts        stream deadlines: when a stream closes, and timers however far (nothing)
 * - redis/           the Redis engine, the only place that knows Redis (engine, merge, errors)
 * - client/          the typed browser/Node client: no run-time import of the rest
 *
 * @example
 * import Fastify from 'fastify'
 * import sse, { defineEvents, Type } from 'fastify-typed-sse'
 * const clock = defineEvents({ tick: Type.Object({ now: Type.String() }) })
 * const app = Fastify()
 * await app.register(sse)
 * app.get('/time', { sse: clock }, (request, reply) => { reply.sse().send('tick', { now: new Date().toISOString() }) })
 */
import { fastifyTypedSse } from './plugin.js'

export { Type, type Static, type TSchema } from '@sinclair/typebox'
export {
  defineEvents, eventValidator, Text, TEXT_KEYWORD,
  type EventCatalog, type EventSchemas, type EventName, type EventData, type SseMessage, type SendOptions, type TText
} from './catalog.js'
export {
  END_EVENT, EndSchema, JOIN_EVENT, JoinSchema, LEAVE_EVENT, LeaveSchema, MISSED_EVENT, MissedSchema, REMOVE_EVENT, RemoveSchema,
  RESYNC_EVENT, ResyncSchema, type Join, type Leave, type Missed, type Remove, type Resync
} from './control.js'
export type { EventId } from './frame.js'
export * as errors from './errors.js'
export type { QueuePolicy, SsePluginOptions, StreamOptions } from './options.js'
export { fastifyTypedSse, type SseNamespace, type SseStats } from './plugin.js'
export type { MetricsOptions, MetricsRegistry } from './metrics.js'
export type { OpenOptions, SseReply, SseRouteHandler, SseSource } from './route.js'
export type { CloseReason, RejectReason } from './hub.js'
export type { Events, SseStream } from './stream.js'
export type { Channel, ChannelOptions, ChannelStats, PublishResult, StateEntry, StreamFor, SubscribeOptions } from './channel.js'
export { DEFAULT_MAX_KEYS, type StateKeys } from './state.js'
export type { PresenceJoin, PresenceMember, PresenceOptions } from './presence.js'
export type {
  AdmissionLease, AdmissionStore, ChannelFeatures, ChannelListener, EngineChannel, EngineHealth, EngineMessage, EnginePresence, HistoryOptions, PageLimit,
  PresenceRecord, ReplayPage, SseEngine, StateSnapshot
} from './engine.js'
export { memoryEngine } from './memory-engine.js'
export { EVENT_STREAM_MEDIA_TYPE, sseItemSchemas, sseResponseSchema, type SseResponseOptions } from './openapi.js'
export default fastifyTypedSse
