/**
 * Admission: what is checked before a stream opens, so a refused request still gets
 * an ordinary HTTP error reply (406, 503) instead of a stream.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { NotAcceptableError, TooManyStreamsError } from './errors.js'

/** The admission rules, from the plugin's options. */
export interface AdmissionRules {
  readonly maxStreams: number | false
  readonly maxStreamsPerKey: number | false
  readonly streamKey: (request: FastifyRequest) => string
  readonly retryAfterMs: number
  readonly negotiate: boolean
}

const EVENT_STREAM_RANGES = new Set(['text/event-stream', 'text/*', '*/*'])

/**
 * True when an `Accept` header admits `text/event-stream` (directly or through
 * `text/*` or a wildcard) with a non-zero quality (RFC 9110 §12.5.1). A missing
 * header accepts anything.
 *
 * @example
 * acceptsEventStream('application/json') // false
 * acceptsEventStream('text/html, *' + '/*;q=0.8') // true
 */
export function acceptsEventStream (accept: string | undefined): boolean {
  if (accept === undefined || accept.trim() === '') return true
  for (const range of accept.split(',')) {
    const [type, ...params] = range.split(';')
    if (!EVENT_STREAM_RANGES.has(type.trim().toLowerCase())) continue
    const quality = params.map((param) => param.trim().toLowerCase()).find((param) => param.startsWith('q='))
    if (quality === undefined || Number(quality.slice(2)) > 0) return true
  }
  return false
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

  constructor (rules: AdmissionRules) {
    this.#rules = rules
  }

  /**
   * Admits a request or throws a coded error whose status Fastify replies with.
   *
   * @returns a function to call when the admitted stream closes, or `undefined` when nothing is counted per key
   * @throws TYPED_SSE_NOT_ACCEPTABLE (406), TYPED_SSE_TOO_MANY_STREAMS (503, with Retry-After)
   */
  admit (request: FastifyRequest, reply: FastifyReply, openStreams: number): (() => void) | undefined {
    const rules = this.#rules
    if (rules.negotiate && !acceptsEventStream(request.headers.accept)) {
      throw new NotAcceptableError(String(request.headers.accept))
    }
    if (rules.maxStreams !== false && openStreams >= rules.maxStreams) {
      this.#refuse(reply, `limit ${rules.maxStreams}`)
    }
    if (rules.maxStreamsPerKey === false) return undefined
    const key = rules.streamKey(request)
    const count = this.#perKey.get(key) ?? 0
    if (count >= rules.maxStreamsPerKey) this.#refuse(reply, `limit ${rules.maxStreamsPerKey} per client`)
    this.#perKey.set(key, count + 1)
    return () => {
      const left = (this.#perKey.get(key) as number) - 1
      if (left === 0) this.#perKey.delete(key)
      else this.#perKey.set(key, left)
    }
  }

  #refuse (reply: FastifyReply, limit: string): never {
    reply.header('retry-after', String(Math.ceil(this.#rules.retryAfterMs / 1000)))
    throw new TooManyStreamsError(limit)
  }
}
