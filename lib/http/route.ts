/**
 * The `{ sse: catalog }` route option: its types (the catalog flows from the option
 * to `reply.sse()`, to the stream, and to what an iterable handler yields) and the
 * handler wrapper that streams what such a handler returns.
 */
import type {
  ContextConfigDefault, FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest, FastifySchema,
  FastifyTypeProvider, FastifyTypeProviderDefault, RawReplyDefaultExpression, RawRequestDefaultExpression,
  RawServerBase, RawServerDefault, RouteGenericInterface, RouteHandlerMethod, RouteOptions, preHandlerAsyncHookHandler
} from 'fastify'
import { isCatalog, type EventCatalog, type Events, type SseMessage } from '../core/catalog.js'
import { InvalidOptionError } from '../core/errors.js'
import { describe } from '../core/frame.js'
import { withSseResponse } from './openapi.js'
import type { SseStream } from '../stream/stream.js'
import type { StreamOptions } from '../stream/options.js'
import { kFail } from '../core/symbols.js'

/** Options of one `reply.sse()` call, over the plugin's defaults. */
export interface OpenOptions extends StreamOptions {
  /** Close the stream at this time (a `Date` or epoch ms), e.g. when the caller's token expires. */
  endsAt?: Date | number
}

/** What an iterable handler of a `{ sse: catalog }` route may return: messages of that catalog. */
export type SseSource<C extends EventCatalog<any>> = AsyncIterable<SseMessage<Events<C>>> | Iterable<SseMessage<Events<C>>>

/**
 * The reply of a route declared `{ sse: catalog }`: `reply.sse()` takes no catalog
 * (the route's is used) and returns a stream typed by it.
 *
 * @example
 * app.get('/time', { sse: clock }, (request, reply: SseReply<typeof clock>) => { reply.sse().send('tick', now()) })
 */
export type SseReply<C extends EventCatalog<any>, R = FastifyReply> = Omit<R, 'sse'> & {
  /**
   * Opens this reply as an event stream typed by the route's catalog.
   *
   * @example
   * const stream = reply.sse({ maxDurationMs: 60_000 })
   */
  sse (options?: OpenOptions): SseStream<C>
}

/**
 * What else a `{ sse }` route may return: a JSON reply, when the route declares its
 * `Reply` type (e.g. a snapshot for non-stream requests). Left undeclared, nothing
 * else is allowed, so what an iterable handler yields stays checked.
 */
type DeclaredReply<RouteGeneric extends RouteGenericInterface> =
  unknown extends RouteGeneric['Reply'] ? never : RouteGeneric['Reply'] | Promise<RouteGeneric['Reply']>

/**
 * The handler of a route declared `{ sse: catalog }`: it may return (or be a
 * generator of) the catalog's messages, or the route's declared `Reply`.
 */
export type SseRouteHandler<
  C extends EventCatalog<any>,
  RawServer extends RawServerBase = RawServerDefault,
  RawRequest extends RawRequestDefaultExpression<RawServer> = RawRequestDefaultExpression<RawServer>,
  RawReply extends RawReplyDefaultExpression<RawServer> = RawReplyDefaultExpression<RawServer>,
  RouteGeneric extends RouteGenericInterface = RouteGenericInterface,
  ContextConfig = ContextConfigDefault,
  SchemaCompiler extends FastifySchema = FastifySchema,
  TypeProvider extends FastifyTypeProvider = FastifyTypeProviderDefault,
  Logger extends FastifyBaseLogger = FastifyBaseLogger
> = (
  this: FastifyInstance<RawServer, RawRequest, RawReply, Logger, TypeProvider>,
  request: FastifyRequest<RouteGeneric, RawServer, RawRequest, SchemaCompiler, TypeProvider, ContextConfig, Logger>,
  reply: SseReply<C, FastifyReply<RouteGeneric, RawServer, RawRequest, RawReply, ContextConfig, SchemaCompiler, TypeProvider>>
) => void | Promise<void> | SseSource<C> | Promise<SseSource<C>> | DeclaredReply<RouteGeneric>

declare module 'fastify' {
  interface FastifyReply {
    /**
     * Opens this reply as an event stream typed by `catalog`: sends the headers at
     * once and returns the stream. Call it once, before anything else is sent. In a
     * route declared `{ sse: catalog }`, call it without the catalog.
     *
     * @throws TYPED_SSE_ALREADY_SENT, TYPED_SSE_INVALID_OPTION; TYPED_SSE_NOT_ACCEPTABLE (406) and
     *   TYPED_SSE_TOO_MANY_STREAMS (503), which Fastify turns into the error reply
     * @example
     * app.get('/time', (request, reply) => { reply.sse(clock).send('tick', { now: 'x', epochMs: 0 }) })
     */
    sse<C extends EventCatalog<any>>(catalog: C, options?: OpenOptions): SseStream<C>
  }
  interface RouteShorthandMethod<RawServer, RawRequest, RawReply, TypeProvider, Logger> {
    /**
     * A route declared an event stream of `catalog`: `reply.sse()` is typed by it, the
     * handler may return (or be a generator of) its messages, errors after the stream
     * opened end it with a log line, `HEAD` gets the headers only, and documentation
     * generators see the events.
     */
    // The catalog comes last: `app.get<{ Querystring: Q }>(...)` names the route's generic first.
    <RouteGeneric extends RouteGenericInterface = RouteGenericInterface, ContextConfig = ContextConfigDefault,
      const SchemaCompiler extends FastifySchema = FastifySchema, C extends EventCatalog<any> = EventCatalog<any>>(
      path: string,
      opts: import('fastify').RouteShorthandOptions<RawServer, RawRequest, RawReply, RouteGeneric, ContextConfig, SchemaCompiler, TypeProvider, Logger> & { sse: C },
      handler: SseRouteHandler<C, RawServer, RawRequest, RawReply, RouteGeneric, ContextConfig, SchemaCompiler, TypeProvider, Logger>
    ): FastifyInstance<RawServer, RawRequest, RawReply, Logger, TypeProvider>
  }
  interface RouteOptions {
    /** An event stream of this catalog (see the shorthand methods; here `reply.sse()` takes the catalog). */
    sse?: EventCatalog<any>
  }
}

/** Marks handlers already wrapped (Fastify routes HEAD with the GET route's options). */
const kWrapped = Symbol('fastify-typed-sse.wrapped')

function isIterable (value: unknown): value is SseSource<any> {
  return value !== null && typeof value === 'object' &&
    (Symbol.asyncIterator in value || Symbol.iterator in value)
}

/** What the wrapper needs of the plugin. */
export interface RouteStreams {
  /** Makes `reply.sse()` (without a catalog) open a stream of the route's catalog. */
  bind (reply: FastifyReply, catalog: EventCatalog<any>): void
  /** The stream the reply was opened as, if any. */
  streamOf (reply: FastifyReply): SseStream<any> | undefined
  /** True when the request needs no handler: HEAD, or a reconnect to a stream that ended. */
  isAnsweredWithoutHandler (request: FastifyRequest): boolean
}

/**
 * Wraps the handler of a route declared with `{ sse: catalog }`: HEAD and reconnects
 * to an ended stream are answered without running it; a returned iterable is
 * streamed; an error after the stream opened is logged and ends the stream (Fastify
 * cannot send an error reply on a stream that already began).
 *
 * @example
 * route.handler = wrapHandler(route.handler, catalog, streams)
 */
export function wrapHandler (handler: RouteHandlerMethod, catalog: EventCatalog<any>, streams: RouteStreams): RouteHandlerMethod {
  if ((handler as { [kWrapped]?: true })[kWrapped] === true) return handler
  const wrapped = async function sseRouteHandler (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) {
    streams.bind(reply, catalog)
    if (streams.isAnsweredWithoutHandler(request)) {
      reply.sse(catalog)
      return
    }
    let result: unknown
    try {
      result = await handler.call(this, request, reply)
    } catch (err) {
      const stream = streams.streamOf(reply)
      if (stream === undefined) throw err
      stream[kFail](err)
      return
    }
    if (!isIterable(result)) return result
    const stream = streams.streamOf(reply) ?? reply.sse(catalog)
    await stream.from(result)
  } as RouteHandlerMethod & { [kWrapped]?: true }
  wrapped[kWrapped] = true
  return wrapped
}

/**
 * Applies the `{ sse: catalog }` option of a route being added (an `onRoute` hook): its
 * handler wrapped, the stream limits reserved before it when they are shared, and its
 * events documented as the 200 `text/event-stream` response.
 *
 * @throws TYPED_SSE_INVALID_OPTION when `sse` is not a catalog
 * @example
 * fastify.addHook('onRoute', (route) => declareSseRoute(route, streams, reserve))
 */
export function declareSseRoute (route: RouteOptions, streams: RouteStreams, reserve: preHandlerAsyncHookHandler | undefined): void {
  const catalog = route.sse
  if (catalog === undefined) return
  if (!isCatalog(catalog)) throw new InvalidOptionError('sse', `expected a catalog from defineEvents(), got ${describe(catalog)}`)
  route.handler = wrapHandler(route.handler, catalog, streams)
  if (reserve !== undefined) route.preHandler = [route.preHandler ?? []].flat().concat(reserve)
  // Documentation generators (@fastify/swagger) read the schema when asked, from this
  // same route object: the events become its 200 text/event-stream response.
  route.schema = withSseResponse(route.schema, catalog)
}
