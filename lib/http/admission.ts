/**
 * Admission: what is checked before a stream opens, so a refused request still gets
 * an ordinary HTTP error reply (406, 503) instead of a stream.
 *
 * Streams per key are counted by this instance, and, when the engine offers an
 * {@link AdmissionStore} (Redis), across instances too. That count needs a round trip,
 * so it is taken before the handler runs ({@link Admission.reserve}, a preHandler of
 * `{ sse }` routes); this instance's count is checked first, as it is free.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { AdmissionLease, AdmissionStore } from '../engine/engine.js'
import { EngineError, NotAcceptableError, TooManyStreamsError } from '../core/errors.js'
import type { RejectReason } from '../stream/hub.js'

/** The admission rules, from the plugin's options. */
export interface AdmissionRules {
  readonly maxStreams: number | false
  readonly maxStreamsPerKey: number | false
  readonly streamKey: (request: FastifyRequest) => string
  readonly retryAfterMs: number
  readonly negotiate: boolean
}

/** The media ranges that match text/event-stream, most specific first (RFC 9110 §12.5.1). */
const EVENT_STREAM_RANGES = ['text/event-stream', 'text/*', '*/*']

/**
 * True when an `Accept` header admits `text/event-stream` with a non-zero quality.
 * The most specific range that matches decides (RFC 9110 §12.5.1), so
 * `text/event-stream;q=0, *` + `/*` refuses it. A missing header accepts anything.
 *
 * @example
 * acceptsEventStream('application/json') // false
 * acceptsEventStream('text/html, *' + '/*;q=0.8') // true
 */
export function acceptsEventStream (accept: string | undefined): boolean {
  if (accept === undefined || accept.trim() === '') return true
  let best = EVENT_STREAM_RANGES.length
  let quality = 0
  for (const range of accept.split(',')) {
    const [type, ...params] = range.split(';')
    const rank = EVENT_STREAM_RANGES.indexOf(type.trim().toLowerCase())
    if (rank === -1 || rank > best) continue
    const q = params.map((param) => param.trim().toLowerCase()).find((param) => param.startsWith('q='))
    const value = q === undefined ? 1 : Number(q.slice(2))
    // The same range twice: the most permissive reading.
    quality = rank === best ? Math.max(quality, value) : value
    best = rank
  }
  return quality > 0
}

/** Gives an admitted stream's slots back; safe to call more than once. */
export type Release = () => void

/**
 * Counts open streams (in total and per key) and refuses those over a limit.
 *
 * @example
 * const admission = new Admission(rules, (reason) => hub.rejected(reason), engine.admission)
 * const release = admission.admit(request, reply, hub.size) // throws 406/503 errors
 * stream.onClose(release)
 */
export class Admission {
  readonly #rules: AdmissionRules
  readonly #perKey = new Map<string, number>()
  readonly #onReject: (reason: RejectReason) => void
  /** The count shared by every instance, when streams per key are limited and the engine has one. */
  readonly #store: AdmissionStore | undefined

  constructor (rules: AdmissionRules, onReject: (reason: RejectReason) => void = () => {}, store?: AdmissionStore) {
    this.#rules = rules
    this.#onReject = onReject
    this.#store = rules.maxStreamsPerKey === false ? undefined : store
  }

  /** True when streams per key are counted across instances: {@link reserve} should run before the handler. */
  get isShared (): boolean {
    return this.#store !== undefined
  }

  /**
   * Refuses a request whose `Accept` refuses text/event-stream (when `negotiate` is on):
   * also for HEAD, which must get the headers GET would.
   *
   * @throws TYPED_SSE_NOT_ACCEPTABLE (406)
   */
  negotiate (request: FastifyRequest): void {
    if (this.#rules.negotiate && !acceptsEventStream(request.headers.accept)) {
      this.#onReject('not_acceptable')
      throw new NotAcceptableError(String(request.headers.accept))
    }
  }

  /** Keys holding at least one stream now. */
  get size (): number {
    return this.#perKey.size
  }

  /**
   * Admits a request by this instance's counts, or throws a coded error whose status
   * Fastify replies with. With a shared count, a stream admitted here (not reserved
   * before its handler) is counted across instances too, but only this instance's
   * count can refuse it: a synchronous call cannot wait for the shared one.
   *
   * @returns a function to call when the admitted stream closes, or `undefined` when nothing is counted per key
   * @throws TYPED_SSE_NOT_ACCEPTABLE (406), TYPED_SSE_TOO_MANY_STREAMS (503, with Retry-After)
   */
  admit (request: FastifyRequest, reply: FastifyReply, openStreams: number): Release | undefined {
    const local = this.#admitLocally(request, reply, openStreams)
    if (local === undefined) return undefined
    if (this.#store === undefined) return local.release
    const shared = this.#track(local.key)
    return () => { local.release(); shared() }
  }

  /**
   * Admits a request by this instance's counts, then by the count shared across
   * instances; resolves with the release of both, or rejects with a coded error
   * (before the handler runs, so Fastify replies with it). Only with a shared count.
   *
   * @throws TYPED_SSE_NOT_ACCEPTABLE (406), TYPED_SSE_TOO_MANY_STREAMS (503, with Retry-After),
   *   TYPED_SSE_ENGINE_UNAVAILABLE (503, with Retry-After: the shared count could not be read)
   * @example
   * const release = await admission.reserve(request, reply, hub.size)
   */
  async reserve (request: FastifyRequest, reply: FastifyReply, openStreams: number): Promise<Release> {
    const store = this.#store as AdmissionStore
    const local = this.#admitLocally(request, reply, openStreams) as { key: string, release: Release }
    let lease: AdmissionLease | undefined
    try {
      lease = await store.acquire(local.key, this.#rules.maxStreamsPerKey as number)
    } catch (err) {
      local.release()
      this.#onReject('admission_unavailable')
      this.#retryAfter(reply)
      throw new EngineError('streams per key could not be counted across instances', { cause: err })
    }
    if (lease === undefined) {
      local.release()
      this.#refuse(reply, 'max_streams_per_key', `limit ${this.#rules.maxStreamsPerKey as number} per client`)
    }
    const taken = lease
    let isReleased = false
    return () => {
      if (isReleased) return
      isReleased = true
      local.release()
      store.release(taken)
    }
  }

  /**
   * Checks `maxStreams` when a reserved request opens its stream: reservations made
   * while others were still asking the shared count each saw fewer open streams.
   * A refused reservation is given back.
   *
   * @throws TYPED_SSE_TOO_MANY_STREAMS (503, with Retry-After)
   * @example
   * admission.checkTotal(reply, hub.size, reserved)
   */
  checkTotal (reply: FastifyReply, openStreams: number, reserved: Release): void {
    const { maxStreams } = this.#rules
    if (maxStreams === false || openStreams < maxStreams) return
    reserved()
    this.#refuse(reply, 'max_streams', `limit ${maxStreams}`)
  }

  #admitLocally (request: FastifyRequest, reply: FastifyReply, openStreams: number): { key: string, release: Release } | undefined {
    const rules = this.#rules
    this.negotiate(request)
    if (rules.maxStreams !== false && openStreams >= rules.maxStreams) {
      this.#refuse(reply, 'max_streams', `limit ${rules.maxStreams}`)
    }
    if (rules.maxStreamsPerKey === false) return undefined
    const key = rules.streamKey(request)
    const count = this.#perKey.get(key) ?? 0
    if (count >= rules.maxStreamsPerKey) this.#refuse(reply, 'max_streams_per_key', `limit ${rules.maxStreamsPerKey} per client`)
    this.#perKey.set(key, count + 1)
    let isReleased = false
    const release = (): void => {
      if (isReleased) return
      isReleased = true
      const left = (this.#perKey.get(key) as number) - 1
      if (left === 0) this.#perKey.delete(key)
      else this.#perKey.set(key, left)
    }
    return { key, release }
  }

  /** Counts a stream in the shared count without a limit; the lease is given back on release, even if it comes later. */
  #track (key: string): Release {
    const store = this.#store as AdmissionStore
    let lease: AdmissionLease | undefined
    let isReleased = false
    store.acquire(key, Number.MAX_SAFE_INTEGER).then((taken) => {
      if (taken !== undefined && isReleased) store.release(taken)
      else lease = taken
    }, () => {
      // The shared count is away: this stream is counted here only.
    })
    return () => {
      if (isReleased) return
      isReleased = true
      if (lease !== undefined) store.release(lease)
    }
  }

  #retryAfter (reply: FastifyReply): void {
    reply.header('retry-after', String(Math.ceil(this.#rules.retryAfterMs / 1000)))
  }

  #refuse (reply: FastifyReply, reason: RejectReason, limit: string): never {
    this.#onReject(reason)
    this.#retryAfter(reply)
    throw new TooManyStreamsError(limit)
  }
}
