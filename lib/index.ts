/**
 * fastify-typed-sse: Server-Sent Events for Fastify with typed, validated events.
 *
 * @example
 * import Fastify from 'fastify'
 * import sse, { defineEvents, Type } from 'fastify-typed-sse'
 * const clock = defineEvents({ tick: Type.Object({ now: Type.String() }) })
 * const app = Fastify()
 * await app.register(sse)
 * app.get('/time', (request, reply) => { reply.sse(clock).send('tick', { now: new Date().toISOString() }) })
 */
import { fastifyTypedSse } from './plugin.js'

export { Type, type Static, type TSchema } from '@sinclair/typebox'
export {
  defineEvents, eventValidator, Text, TEXT_KEYWORD,
  type EventCatalog, type EventSchemas, type EventName, type EventData, type SseMessage, type SendOptions, type TText
} from './catalog.js'
export { MISSED_EVENT, MissedSchema, RESYNC_EVENT, ResyncSchema, type Missed, type Resync } from './control.js'
export type { EventId } from './frame.js'
export * as errors from './errors.js'
export {
  DEFAULT_CLOSE_GRACE_MS, DEFAULT_HEARTBEAT_MS, DEFAULT_MAX_QUEUE_BYTES,
  type QueuePolicy, type SsePluginOptions, type StreamOptions
} from './options.js'
export { fastifyTypedSse, type OpenOptions, type SseNamespace, type SseStats } from './plugin.js'
export { SseStream, type CloseReason } from './stream.js'
export { Channel, type ChannelOptions, type ChannelStats, type SubscribeOptions } from './channel.js'
export type { EngineChannel, EngineMessage, HistoryOptions, ReplayResult, ResolvedHistory, SseEngine } from './engine.js'
export { DEFAULT_HISTORY_MAX_EVENTS, type HistoryStore } from './history.js'
export { memoryEngine } from './memory-engine.js'
export { EVENT_STREAM_MEDIA_TYPE, sseResponseSchema, type SseResponseOptions } from './openapi.js'
export default fastifyTypedSse
