/**
 * Registration: decorates replies with `reply.sse()` and the instance with `app.sse`,
 * wraps the handlers of routes declared `{ sse: catalog }`, and ends every stream in
 * `preClose` so `fastify.close()` never waits on open connections.
 */
import type { TSchema } from '@sinclair/typebox'
import type { FastifyInstance, FastifyReply } from 'fastify'
import fp from 'fastify-plugin'
import type { Channel } from './channel/channel.js'
import type { ChannelOptions } from './channel/options.js'
import { ChannelRegistry } from './channel/registry.js'
import type { EventCatalog } from './core/catalog.js'
import { AlreadyRegisteredError } from './core/errors.js'
import type { ChannelStats } from './core/stats.js'
import type { EngineHealth, HistoryOptions } from './engine/engine.js'
import { memoryEngine } from './engine/memory.js'
import { Admission } from './http/admission.js'
import { loadMetrics } from './http/metrics.js'
import { markSending, REPLY_DECORATIONS, REQUEST_DECORATIONS, StreamOpener } from './http/open.js'
import { resolvePluginOptions, type SsePluginOptions } from './http/options.js'
import { declareSseRoute, type OpenOptions } from './http/route.js'
import { StreamHub, type StreamCounters } from './stream/hub.js'
import type { StreamContext } from './stream/options.js'
import type { SseStream } from './stream/stream.js'

/** Figures of `app.sse.stats()`: counters, read without touching any stream. */
export interface SseStats extends StreamCounters {
  /** Streams open now. */
  openStreams: number
  /** Events published through channels of this instance. */
  eventsPublished: number
  /** Subscribers whose Last-Event-ID was replayed. */
  replaysServed: number
  /** Subscribers whose Last-Event-ID was unknown or evicted. */
  replayMisses: number
  /** Per channel figures, by name (channels alive now). */
  channels: Record<string, ChannelStats>
  /** Clients counted by `maxStreamsPerKey` now (0 without that limit). */
  streamKeys: number
}

/** What the plugin adds to the Fastify instance as `app.sse`. */
export interface SseNamespace {
  /**
   * Counters of this instance's streams and channels.
   *
   * @example
   * app.get('/stats', async () => app.sse.stats())
   */
  stats (): SseStats
  /**
   * The engine's connection state, for a readiness probe: `'connected'`,
   * `'reconnecting'` or `'down'` (the in-memory engine is always connected).
   *
   * @example
   * app.get('/healthz', async (request, reply) => reply.code(app.sse.health() === 'connected' ? 200 : 503).send())
   */
  health (): EngineHealth
  /**
   * The broadcast channel `name`, typed by `catalog`, created on first use.
   *
   * @throws TYPED_SSE_CHANNEL_CONFLICT when asked again with another catalog or options
   * @example
   * const scores = app.sse.channel('scores', scoreEvents, { history: true })
   */
  channel<C extends EventCatalog<any>, S extends TSchema = TSchema> (name: string, catalog: C, options: ChannelOptions<C, S> & { history: true | HistoryOptions }): Channel<C, true, S>
  channel<C extends EventCatalog<any>, S extends TSchema = TSchema> (name: string, catalog: C, options?: ChannelOptions<C, S> & { history?: false | undefined }): Channel<C, false, S>
  channel<C extends EventCatalog<any>, S extends TSchema = TSchema> (name: string, catalog: C, options?: ChannelOptions<C, S>): Channel<C, boolean, S>
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Stats, health and broadcast channels of the event streams of this instance. */
    sse: SseNamespace
  }
}

async function plugin (fastify: FastifyInstance, given: SsePluginOptions): Promise<void> {
  // Before anything is decorated: a second registration would otherwise fail on a symbol's name.
  if (fastify.hasDecorator('sse') || fastify.hasReplyDecorator('sse')) throw new AlreadyRegisteredError()
  const options = resolvePluginOptions(given)
  const hub = new StreamHub(options.heartbeatMs)
  const admission = new Admission(options.admission, (reason) => hub.rejected(reason), options.engine?.admission)
  // One context for every stream: a stream keeps a pointer, not a copy.
  const context: StreamContext = Object.freeze({
    hub,
    closeGraceMs: options.closeGraceMs,
    options: options.stream,
    maxEventBytes: options.maxEventBytes
  })
  const engine = options.engine ?? memoryEngine()
  const metrics = options.metrics === false ? undefined : await loadMetrics(options.metrics)

  const opener = new StreamOpener(options, context, admission)
  for (const [key, value] of REPLY_DECORATIONS) fastify.decorateReply(key, value)
  for (const [key, value] of REQUEST_DECORATIONS) fastify.decorateRequest(key, value)
  fastify.decorateReply('sse', function sse (this: FastifyReply, first?: EventCatalog<any> | OpenOptions, second?: OpenOptions): SseStream<any> {
    return opener.open(this, first, second)
  } as FastifyReply['sse'])

  // An async onSend hook runs after reply.send() returned and before the reply is sent;
  // reply.sse() meanwhile would write a second response.
  fastify.addHook('onSend', (_request, reply, payload, done) => {
    markSending(reply)
    done(null, payload)
  })

  await engine.ready?.()
  const channels = new ChannelRegistry(engine, {
    log: (err, message) => fastify.log.error({ err }, message),
    maxEventBytes: options.maxEventBytes,
    maxLastEventIdBytes: options.maxLastEventIdBytes,
    delivered: metrics?.delivered,
    forgotten: metrics?.forgotten
  })
  const namespace: SseNamespace = {
    stats: () => ({ openStreams: hub.size, ...hub.counters, ...channels.stats(), streamKeys: admission.size }),
    health: () => engine.health?.() ?? 'connected',
    // One implementation for the overloads: `history` decides what publish() resolves with.
    channel: ((name: string, catalog: EventCatalog<any>, channelOptions?: ChannelOptions<any>) => channels.get(name, catalog, channelOptions)) as SseNamespace['channel']
  }
  fastify.decorate('sse', namespace)
  metrics?.register(fastify, namespace)

  fastify.addHook('onRoute', (route) => declareSseRoute(route, opener.routeStreams, admission.isShared ? opener.reserve : undefined))

  // preClose runs before the server stops accepting: end every stream so the
  // connections let go, instead of server.close() waiting on them forever.
  fastify.addHook('preClose', async () => {
    await hub.close(options.closeGraceMs)
  })
  fastify.addHook('onClose', async () => {
    await channels.close()
  })
}

/**
 * The Fastify plugin. Register it once, at the root (it is not encapsulated).
 *
 * @example
 * import Fastify from 'fastify'
 * import sse from 'fastify-typed-sse'
 * const app = Fastify()
 * await app.register(sse, { heartbeatMs: 15_000 })
 */
export const fastifyTypedSse = fp(plugin, {
  fastify: '5.x',
  name: 'fastify-typed-sse'
})
