/**
 * fastify-typed-sse: Server-Sent Events for Fastify with typed, validated events.
 *
 * Layout: folders as layers, each importing only the folders its line names (and
 * itself); test/unit/architecture.test.ts holds every import of lib/ to it, and finds
 * no circle between folders or files. docs/architecture.md draws the house.
 * - core/     frames, control events, catalogs, the merge, timers, symbols, errors, validation, stats types (nothing of ours)
 * - engine/   the engine interface, the in-memory engine and history, replay reads; redis/ the only code that knows Redis (core)
 * - stream/   a stream on an opened response: queue, close listeners, producer, hub; adapters/ per HTTP version (core)
 * - channel/  the channel API and lifetime, fan-out, replay per subscriber, the registry (core, engine, stream)
 * - http/     opening a stream from a request, admission, options, the route option, OpenAPI, metrics (core, engine, stream, channel)
 * - client/   the typed browser/Node client: imports nothing outside client/ at run time (types of core)
 * - plugin.ts wiring: decorators and hooks (any of the above); index.ts, redis.ts, client.ts the public entry points
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
  type EventCatalog, type EventSchemas, type EventName, type EventData, type Events, type SseMessage, type SendOptions, type TText
} from './core/catalog.js'
export {
  END_EVENT, EndSchema, JOIN_EVENT, JoinSchema, LEAVE_EVENT, LeaveSchema, MISSED_EVENT, MissedSchema, REMOVE_EVENT, RemoveSchema,
  RESYNC_EVENT, ResyncSchema, type Join, type Leave, type Missed, type Remove, type Resync
} from './core/control.js'
export type { EventId } from './core/frame.js'
export * as errors from './core/errors.js'
export type { SsePluginOptions } from './http/options.js'
export type { QueuePolicy, StreamOptions } from './stream/options.js'
export { fastifyTypedSse, type SseNamespace, type SseStats } from './plugin.js'
export type { MetricsOptions, MetricsRegistry } from './http/metrics.js'
export type { OpenOptions, SseReply, SseRouteHandler, SseSource } from './http/route.js'
export type { CloseReason, RejectReason } from './stream/hub.js'
export type { SseStream } from './stream/stream.js'
export type { Channel, PublishResult, StreamFor } from './channel/channel.js'
export type { ChannelOptions, SubscribeOptions } from './channel/options.js'
export { DEFAULT_MAX_KEYS, type StateEntry, type StateKeys } from './channel/state.js'
export type { PresenceJoin, PresenceMember, PresenceOptions } from './channel/presence.js'
export type { ChannelStats } from './core/stats.js'
export type {
  AdmissionLease, AdmissionStore, ChannelFeatures, ChannelListener, EngineChannel, EngineHealth, EngineMessage, EnginePresence, HistoryOptions, PageLimit,
  PresenceRecord, ReplayPage, SseEngine, StateSnapshot
} from './engine/engine.js'
export { memoryEngine } from './engine/memory.js'
export { EVENT_STREAM_MEDIA_TYPE, sseItemSchemas, sseResponseSchema, type SseResponseOptions } from './http/openapi.js'
export default fastifyTypedSse
