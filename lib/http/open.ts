/**
 * Opening a stream from a request (`reply.sse()`): its catalog and options checked,
 * Accept negotiated, the stream limits taken (before the handler when they are shared
 * across instances), and the `Last-Event-ID` decoded once, here at the edge, then
 * passed on: it decides HEAD/204/stream and becomes `stream.lastEventId`.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { isCatalog, type EventCatalog } from '../core/catalog.js'
import { END_EVENT } from '../core/control.js'
import { AlreadySentError, CatalogMismatchError, InvalidOptionError } from '../core/errors.js'
import { describe } from '../core/frame.js'
import { decodeLastEventId } from '../core/last-event-id.js'
import { refuseUnknownOptions } from '../core/validate.js'
import { adapterFor, type RawResponse } from '../stream/adapters/index.js'
import type { Disposition } from '../stream/adapters/open.js'
import type { StreamHub } from '../stream/hub.js'
import { resolveStreamOptions } from '../stream/options.js'
import type { StreamContext } from '../stream/options.js'
import { SseStream } from '../stream/stream.js'
import { acceptsEventStream, type Admission, type Release } from './admission.js'
import { OPEN_OPTION_NAMES, type ResolvedPluginOptions } from './options.js'
import type { OpenOptions, RouteStreams } from './route.js'

/** The stream a reply was opened as. */
const kStream = Symbol('fastify-typed-sse.stream')
/** The catalog of the `{ sse }` route a reply belongs to. */
const kRouteCatalog = Symbol('fastify-typed-sse.routeCatalog')
/** Set once an `onSend` hook ran: the reply is being sent (an async hook may still be running). */
const kIsSending = Symbol('fastify-typed-sse.isSending')
/** The slots taken for this request before its handler ran (streams per key counted across instances). */
const kReserved = Symbol('fastify-typed-sse.reserved')
/** The request's Last-Event-ID, decoded (`undefined`: none usable); `null` until decoded. */
const kLastEventId = Symbol('fastify-typed-sse.lastEventId')

interface ReplyState {
  [kStream]: SseStream<any> | null
  [kRouteCatalog]: EventCatalog<any> | null
  [kIsSending]: boolean
  [kReserved]: Release | null
}

interface RequestState {
  [kLastEventId]: string | undefined | null
}

/** What the plugin decorates every reply with, and the starting values (stable shapes). */
export const REPLY_DECORATIONS: ReadonlyArray<readonly [symbol, null | false]> = [[kStream, null], [kRouteCatalog, null], [kIsSending, false], [kReserved, null]]
/** What the plugin decorates every request with, and the starting values. */
export const REQUEST_DECORATIONS: ReadonlyArray<readonly [symbol, null]> = [[kLastEventId, null]]


/** An `onSend` hook ran: `reply.sse()` would now write a second response. */
export function markSending (reply: FastifyReply): void {
  (reply as FastifyReply & ReplyState)[kIsSending] = true
}

function endsAtMs (endsAt: Date | number | undefined): number | undefined {
  if (endsAt === undefined) return undefined
  const ms = endsAt instanceof Date ? endsAt.getTime() : endsAt
  if (typeof ms !== 'number' || !Number.isFinite(ms)) throw new InvalidOptionError('endsAt', `expected a Date or epoch ms, got ${describe(endsAt)}`)
  return ms
}

/**
 * Opens the streams of one plugin instance.
 *
 * @example
 * const opener = new StreamOpener(options, context, admission)
 * fastify.decorateReply('sse', function sse (first, second) { return opener.open(this, first, second) })
 */
export class StreamOpener {
  readonly #options: ResolvedPluginOptions
  readonly #context: StreamContext
  readonly #hub: StreamHub
  readonly #admission: Admission
  /** What a route declared `{ sse }` needs (route.ts). */
  readonly routeStreams: RouteStreams

  constructor (options: ResolvedPluginOptions, context: StreamContext, admission: Admission) {
    this.#options = options
    this.#context = context
    this.#hub = context.hub
    this.#admission = admission
    this.routeStreams = {
      bind: (reply, catalog) => { (reply as FastifyReply & ReplyState)[kRouteCatalog] = catalog },
      streamOf: (reply) => (reply as FastifyReply & ReplyState)[kStream] ?? undefined,
      isAnsweredWithoutHandler: (request) => this.#dispositionOf(request) !== 'stream'
    }
  }

  /**
   * `reply.sse(catalog?, options?)`: the stream of this reply.
   *
   * @throws TYPED_SSE_INVALID_OPTION, TYPED_SSE_CATALOG_MISMATCH, TYPED_SSE_ALREADY_SENT, and the admission's refusals
   */
  open (reply: FastifyReply, first?: EventCatalog<any> | OpenOptions, second?: OpenOptions): SseStream<any> {
    const state = reply as FastifyReply & ReplyState
    const routeCatalog = state[kRouteCatalog]
    const catalog = isCatalog(first) ? first : routeCatalog
    const open = isCatalog(first) ? second : first
    if (catalog === null) throw new InvalidOptionError('catalog', 'reply.sse() needs a catalog outside routes declared { sse: catalog }')
    if (routeCatalog !== null && catalog !== routeCatalog) throw new CatalogMismatchError(reply.request.url, 'the catalog of its { sse } route option (reply.sse() there takes none)')
    if (reply.sent || state[kStream] !== null || state[kIsSending]) throw new AlreadySentError()
    if (open !== null && typeof open === 'object') refuseUnknownOptions('reply.sse()', open, OPEN_OPTION_NAMES)
    const streamOptions = resolveStreamOptions(this.#options.stream, open)
    const endsAt = endsAtMs(open?.endsAt)
    const disposition = this.#dispositionOf(reply.request)
    const admission = this.#admission
    // Last, after everything that can throw, so a refused request is not counted. HEAD
    // and 204 answers hold nothing, so they are not counted at all.
    if (disposition === 'head') admission.negotiate(reply.request)
    const reserved = state[kReserved]
    state[kReserved] = null
    // Reserved before the handler, while other reservations were pending: the total is checked again now.
    if (reserved !== null) admission.checkTotal(reply, this.#hub.size, reserved)
    const release = disposition === 'stream' ? reserved ?? admission.admit(reply.request, reply, this.#hub.size) : undefined
    let stream: SseStream<any>
    try {
      stream = new SseStream(reply, catalog, this.#context, disposition, this.#lastEventIdOf(reply.request), streamOptions, endsAt)
    } catch (err) {
      release?.()
      throw err
    }
    // Called at once when opening failed: the slot is never kept by a stream that is not.
    if (release !== undefined) stream.onClose(release)
    state[kStream] = stream
    return stream
  }

  /**
   * A `preHandler` of `{ sse }` routes when the stream limits are shared across
   * instances: takes the slots of a request that will be a stream, before its handler
   * (the shared count needs a round trip, and a refusal must be an ordinary reply).
   */
  readonly reserve = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const admission = this.#admission
    // Without negotiation, any Accept becomes a stream: counted like one.
    if (this.#dispositionOf(request) !== 'stream' || (this.#options.admission.negotiate && !acceptsEventStream(request.headers.accept))) return
    // A client gone already (during an earlier hook) would never send the close event awaited below.
    const isClientGone = (): boolean => adapterFor(request).isGone(reply.raw as unknown as RawResponse)
    if (isClientGone()) return
    // Listening before the round trip: a client may leave while its slot is counted.
    let release: Release | undefined
    let isGone = false
    const onClose = (): void => { isGone = true; release?.() }
    reply.raw.once('close', onClose)
    try {
      release = await admission.reserve(request, reply, this.#hub.size)
    } catch (err) {
      reply.raw.off('close', onClose)
      throw err
    }
    // A handler that answers without a stream (JSON, an error) gives the slots back with its response.
    if (isGone || isClientGone()) release()
    else (reply as FastifyReply & ReplyState)[kReserved] = release
  }

  /** How this request is answered: a stream, headers only (HEAD), or 204 (a reconnect to an ended stream). */
  #dispositionOf (request: FastifyRequest): Disposition {
    if (request.method === 'HEAD') return 'head'
    return this.#lastEventIdOf(request) === END_EVENT ? 'ended' : 'stream'
  }

  /** The request's Last-Event-ID, decoded the first time it is asked for (at most once per request). */
  #lastEventIdOf (request: FastifyRequest): string | undefined {
    const state = request as FastifyRequest & RequestState
    const known = state[kLastEventId]
    if (known !== null) return known
    const decoded = decodeLastEventId(request.headers['last-event-id'], this.#options.maxLastEventIdBytes)
    state[kLastEventId] = decoded
    return decoded
  }
}
