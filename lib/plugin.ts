/**
 * Registration: decorates replies with `reply.sse(catalog)` and the instance with
 * `app.sse`, wraps the handlers of routes declared with `{ sse: catalog }`, and ends
 * every stream in `preClose` so `fastify.close()` never waits on open connections.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteHandlerMethod } from 'fastify'
import fp from 'fastify-plugin'
import { Admission } from './admission.js'
import type { EventCatalog, EventSchemas } from './catalog.js'
import { ChannelRegistry, type Channel, type ChannelOptions, type ChannelStats } from './channel.js'
import { AlreadySentError, InvalidOptionError } from './errors.js'
import { StreamHub, type StreamCounters } from './hub.js'
import { memoryEngine } from './memory-engine.js'
import { withSseResponse } from './openapi.js'
import { resolvePluginOptions, resolveStreamOptions, type SsePluginOptions, type StreamOptions } from './options.js'
import { SseStream } from './stream.js'

/** Options of one `reply.sse()` call, over the plugin's defaults. */
export interface OpenOptions extends StreamOptions {
  /** Close the stream at this time (a `Date` or epoch ms), e.g. when the caller's token expires. */
  endsAt?: Date | number
}

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
  /** Per channel figures, by name. */
  channels: Record<string, ChannelStats>
}

/** What the plugin adds to the Fastify instance as `app.sse`. */
export interface SseNamespace {
  /**
   * Counters of this instance's streams.
   *
   * @example
   * app.get('/metrics', async () => app.sse.stats())
   */
  stats (): SseStats
  /**
   * The broadcast channel `name`, typed by `catalog`, created on first use.
   *
   * @throws TYPED_SSE_CHANNEL_CONFLICT when asked again with another catalog or history
   * @example
   * const scores = app.sse.channel('scores', scoreEvents, { history: true })
   */
  channel<E extends EventSchemas> (name: string, catalog: EventCatalog<E>, options?: ChannelOptions): Channel<E>
}

declare module 'fastify' {
  interface FastifyReply {
    /**
     * Opens this reply as an event stream typed by `catalog`: sends the headers at
     * once and returns the stream. Call it once, before anything else is sent.
     *
     * @throws TYPED_SSE_ALREADY_SENT, TYPED_SSE_INVALID_OPTION; TYPED_SSE_NOT_ACCEPTABLE (406) and
     *   TYPED_SSE_TOO_MANY_STREAMS (503), which Fastify turns into the error reply
     * @example
     * app.get('/time', (request, reply) => { reply.sse(clock).send('tick', { now: 'x', epochMs: 0 }) })
     */
    sse<E extends EventSchemas>(catalog: EventCatalog<E>, options?: OpenOptions): SseStream<E>
  }
  interface FastifyInstance {
    /** Stats (and, with channels, broadcast) of the event streams of this instance. */
    sse: SseNamespace
  }
  interface RouteShorthandOptions {
    /**
     * Declares the route an event stream of this catalog: its handler may return an
     * (async) iterable of messages, errors after the stream opened end it with a
     * log line, and documentation generators see the events.
     */
    sse?: EventCatalog
  }
}

const kStream = Symbol('fastify-typed-sse.stream')
type ReplyWithStream = FastifyReply & { [kStream]?: SseStream<EventSchemas> }

function isIterable (value: unknown): value is AsyncIterable<never> | Iterable<never> {
  return value !== null && typeof value === 'object' &&
    (Symbol.asyncIterator in value || Symbol.iterator in value)
}

function endsAtMs (endsAt: Date | number | undefined): number | undefined {
  if (endsAt === undefined) return undefined
  const ms = endsAt instanceof Date ? endsAt.getTime() : endsAt
  if (!Number.isFinite(ms)) throw new InvalidOptionError('endsAt', `expected a Date or epoch ms, got ${String(endsAt)}`)
  return ms
}

async function plugin (fastify: FastifyInstance, given: SsePluginOptions): Promise<void> {
  const options = resolvePluginOptions(given)
  const hub = new StreamHub(options.heartbeatMs)
  const admission = new Admission(options.admission)

  fastify.decorateReply('sse', function sse<E extends EventSchemas> (this: ReplyWithStream, catalog: EventCatalog<E>, open?: OpenOptions): SseStream<E> {
    if (this.sent || this[kStream] !== undefined) throw new AlreadySentError()
    const context = {
      hub,
      heartbeatMs: options.heartbeatMs,
      closeGraceMs: options.closeGraceMs,
      options: resolveStreamOptions(options.stream, open),
      endsAt: endsAtMs(open?.endsAt),
      maxEventBytes: options.maxEventBytes,
      maxLastEventIdBytes: options.maxLastEventIdBytes
    }
    // Last, after everything that can throw, so a refused request is not counted.
    const release = admission.admit(this.request, this, hub.size)
    const stream = new SseStream(this, catalog, context)
    if (release !== undefined) stream.onClose(release)
    this[kStream] = stream as unknown as SseStream<EventSchemas>
    return stream
  })

  await options.engine?.ready?.()
  const channels = new ChannelRegistry(options.engine ?? memoryEngine(), (err, message) => fastify.log.error({ err }, message), options.maxEventBytes)
  const namespace: SseNamespace = {
    stats: () => ({ openStreams: hub.size, ...hub.counters, ...channels.stats() }),
    channel: (name, catalog, channelOptions) => channels.get(name, catalog, channelOptions)
  }
  fastify.decorate('sse', namespace)

  fastify.addHook('onRoute', (route) => {
    const catalog = route.sse
    if (catalog === undefined) return
    route.handler = wrapHandler(route.handler, catalog)
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
 * Wraps the handler of a route declared with `{ sse: catalog }`: a returned iterable
 * is streamed, and an error after the stream opened is logged and ends the stream
 * (Fastify cannot send an error reply on a stream that already began).
 */
function wrapHandler (handler: RouteHandlerMethod, catalog: EventCatalog): RouteHandlerMethod {
  return async function sseRouteHandler (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) {
    let result: unknown
    try {
      result = await handler.call(this, request, reply)
    } catch (err) {
      const stream = (reply as ReplyWithStream)[kStream]
      if (stream === undefined) throw err
      stream.fail(err)
      return
    }
    if (!isIterable(result) || typeof result === 'string') return result
    const stream = (reply as ReplyWithStream)[kStream] ?? reply.sse(catalog)
    await stream.from(result)
  }
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
