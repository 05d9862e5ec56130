/**
 * Admission: what is checked before a stream opens, so a refused request still gets
 * an ordinary HTTP error reply (406, 503) instead of a stream.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { NotAcceptableError, TooManyStreamsError } from './errors.js'
import type { RejectReason } from './hub.js'

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

/**
 * Counts open streams (in total and per key) and refuses those over a limit.
 *
 * @example
 * const admission = new Admission(rules)
 * const release = admission.admit(request, reply, hub.size) // throws 406/503 errors
 * stream.onClose(release)
 */
export class Admission {
  readonly #rules: AdmissionRules
  readonly #perKey = new Map<string, number>()
  readonly #onReject: (reason: RejectReason) => void

  constructor (rules: AdmissionRules, onReject: (reason: RejectReason) => void = () => {}) {
    this.#rules = rules
    this.#onReject = onReject
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
   * Admits a request or throws a coded error whose status Fastify replies with.
   *
   * @returns a function to call when the admitted stream closes, or `undefined` when nothing is counted per key
   * @throws TYPED_SSE_NOT_ACCEPTABLE (406), TYPED_SSE_TOO_MANY_STREAMS (503, with Retry-After)
   */
  admit (request: FastifyRequest, reply: FastifyReply, openStreams: number): (() => void) | undefined {
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
    return () => {
      if (isReleased) return
      isReleased = true
      const left = (this.#perKey.get(key) as number) - 1
      if (left === 0) this.#perKey.delete(key)
      else this.#perKey.set(key, left)
    }
  }

  #refuse (reply: FastifyReply, reason: RejectReason, limit: string): never {
    this.#onReject(reason)
    reply.header('retry-after', String(Math.ceil(this.#rules.retryAfterMs / 1000)))
    throw new TooManyStreamsError(limit)
  }
}
