/**
 * Registration: decorates replies with `reply.sse()` and the instance with `app.sse`,
 * wraps the handlers of routes declared `{ sse: catalog }`, and ends every stream in
 * `preClose` so `fastify.close()` never waits on open connections.
 */
import type { TSchema } from '@sinclair/typebox'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { acceptsEventStream, Admission, type Release } from './admission.js'
import type { EventCatalog } from './catalog.js'
import type { Channel, ChannelOptions, ChannelStats } from './channel.js'
import { ChannelRegistry } from './channels.js'
import { END_EVENT } from './control.js'
import type { EngineHealth, HistoryOptions } from './engine.js'
import { AlreadyRegisteredError, AlreadySentError, CatalogMismatchError, InvalidOptionError } from './errors.js'
import { describe } from './frame.js'
import { StreamHub, type StreamCounters } from './hub.js'
import { memoryEngine } from './memory-engine.js'
import { loadMetrics } from './metrics.js'
import { withSseResponse } from './openapi.js'
import { OPEN_OPTION_NAMES, refuseUnknownOptions, resolvePluginOptions, resolveStreamOptions, type SsePluginOptions } from './options.js'
import { wrapHandler, type OpenOptions, type RouteStreams } from './route.js'
import { decodeLastEventId } from './last-event-id.js'
import { SseStream, type Disposition, type StreamContext } from './stream.js'
import { transportFor, type RawResponse } from './transport/index.js'

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

/** The stream a reply was opened as. */
const kStream = Symbol('fastify-typed-sse.stream')
/** The catalog of the `{ sse }` route a reply belongs to. */
const kRouteCatalog = Symbol('fastify-typed-sse.routeCatalog')
/** Set once an `onSend` hook ran: the reply is being sent (an async hook may still be running). */
const kIsSending = Symbol('fastify-typed-sse.isSending')
/** The slots taken for this request before its handler ran (streams per key counted across instances). */
const kReserved = Symbol('fastify-typed-sse.reserved')

interface ReplyState {
  [kStream]: SseStream<any> | null
  [kRouteCatalog]: EventCatalog<any> | null
  [kIsSending]: boolean
  [kReserved]: Release | null
}

function isCatalog (value: unknown): value is EventCatalog<any> {
  return value !== null && typeof value === 'object' && 'schemas' in value && Array.isArray((value as { names?: unknown }).names)
}

function endsAtMs (endsAt: Date | number | undefined): number | undefined {
  if (endsAt === undefined) return undefined
  const ms = endsAt instanceof Date ? endsAt.getTime() : endsAt
  if (typeof ms !== 'number' || !Number.isFinite(ms)) throw new InvalidOptionError('endsAt', `expected a Date or epoch ms, got ${describe(endsAt)}`)
  return ms
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
    maxEventBytes: options.maxEventBytes,
    maxLastEventIdBytes: options.maxLastEventIdBytes
  })
  const engine = options.engine ?? memoryEngine()
  const metrics = options.metrics === false ? undefined : await loadMetrics(options.metrics)

  /** How this request is answered: a stream, headers only (HEAD), or 204 (a reconnect to an ended stream). */
  function dispositionOf (request: FastifyRequest): Disposition {
    if (request.method === 'HEAD') return 'head'
    return decodeLastEventId(request.headers['last-event-id'], options.maxLastEventIdBytes) === END_EVENT ? 'ended' : 'stream'
  }

  fastify.decorateReply(kStream, null)
  fastify.decorateReply(kRouteCatalog, null)
  fastify.decorateReply(kIsSending, false)
  fastify.decorateReply(kReserved, null)
  fastify.decorateReply('sse', function sse (this: FastifyReply & ReplyState, first?: EventCatalog<any> | OpenOptions, second?: OpenOptions): SseStream<any> {
    const routeCatalog = this[kRouteCatalog]
    const catalog = isCatalog(first) ? first : routeCatalog
    const open = isCatalog(first) ? second : first
    if (catalog === null) throw new InvalidOptionError('catalog', 'reply.sse() needs a catalog outside routes declared { sse: catalog }')
    if (routeCatalog !== null && catalog !== routeCatalog) throw new CatalogMismatchError(this.request.url, 'the catalog of its { sse } route option (reply.sse() there takes none)')
    if (this.sent || this[kStream] !== null || this[kIsSending]) throw new AlreadySentError()
    if (open !== null && typeof open === 'object') refuseUnknownOptions('reply.sse()', open, OPEN_OPTION_NAMES)
    const streamOptions = resolveStreamOptions(options.stream, open)
    const endsAt = endsAtMs(open?.endsAt)
    const disposition = dispositionOf(this.request)
    // Last, after everything that can throw, so a refused request is not counted. HEAD
    // and 204 answers hold nothing, so they are not counted at all.
    if (disposition === 'head') admission.negotiate(this.request)
    const reserved = this[kReserved]
    this[kReserved] = null
    // Reserved before the handler, while other reservations were pending: the total is checked again now.
    if (reserved !== null) admission.checkTotal(this, hub.size, reserved)
    const release = disposition === 'stream' ? reserved ?? admission.admit(this.request, this, hub.size) : undefined
    let stream: SseStream<any>
    try {
      stream = new SseStream(this, catalog, context, disposition, streamOptions, endsAt)
    } catch (err) {
      release?.()
      throw err
    }
    // Called at once when opening failed: the slot is never kept by a stream that is not.
    if (release !== undefined) stream.onClose(release)
    this[kStream] = stream
    return stream
  } as FastifyReply['sse'])

  // An async onSend hook runs after reply.send() returned and before the reply is sent;
  // reply.sse() meanwhile would write a second response.
  fastify.addHook('onSend', (_request, reply, payload, done) => {
    (reply as FastifyReply & ReplyState)[kIsSending] = true
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

  const streams: RouteStreams = {
    bind: (reply, catalog) => { (reply as FastifyReply & ReplyState)[kRouteCatalog] = catalog },
    streamOf: (reply) => (reply as FastifyReply & ReplyState)[kStream] ?? undefined,
    isAnsweredWithoutHandler: (request) => dispositionOf(request) !== 'stream'
  }
  /**
   * Takes the slots of a request that will be a stream, before its handler: the count
   * shared across instances needs a round trip, and a refusal must be an ordinary reply.
   */
  async function reserve (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    // Without negotiation, any Accept becomes a stream: counted like one.
    if (dispositionOf(request) !== 'stream' || (options.admission.negotiate && !acceptsEventStream(request.headers.accept))) return
    // A client gone already (during an earlier hook) would never send the close event awaited below.
    const isClientGone = (): boolean => transportFor(request).isGone(reply.raw as unknown as RawResponse)
    if (isClientGone()) return
    // Listening before the round trip: a client may leave while its slot is counted.
    let release: Release | undefined
    let isGone = false
    const onClose = (): void => { isGone = true; release?.() }
    reply.raw.once('close', onClose)
    try {
      release = await admission.reserve(request, reply, hub.size)
    } catch (err) {
      reply.raw.off('close', onClose)
      throw err
    }
    // A handler that answers without a stream (JSON, an error) gives the slots back with its response.
    if (isGone || isClientGone()) release()
    else (reply as FastifyReply & ReplyState)[kReserved] = release
  }
  fastify.addHook('onRoute', (route) => {
    const catalog = route.sse
    if (catalog === undefined) return
    if (!isCatalog(catalog)) throw new InvalidOptionError('sse', `expected a catalog from defineEvents(), got ${describe(catalog)}`)
    route.handler = wrapHandler(route.handler, catalog, streams)
    if (admission.isShared) route.preHandler = [route.preHandler ?? []].flat().concat(reserve)
    // Documentation generators (@fastify/swagger) read the schema when asked, from this
    // same route object: the events become its 200 text/event-stream response.
    route.schema = withSseResponse(route.schema, catalog)
  })

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
