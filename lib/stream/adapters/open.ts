/**
 * The head of a response: the stream's headers, or the answer of one that gets no
 * stream (HEAD, 204, 500). The adapter of the request's HTTP version says which
 * headers may go.
 */
import type { FastifyReply } from 'fastify'
import { OpenFailedError } from '../../core/errors.js'
import { describe } from '../../core/frame.js'
import { answerWithoutStream, type Adapter, type RawResponse } from './adapter.js'

/**
 * What the response becomes: an event stream; the headers of one without a body
 * (`HEAD`); or `204 No Content` for a client reconnecting to a stream that ended
 * (its Last-Event-ID is `sse:end`), which stops an EventSource for good.
 */
export type Disposition = 'stream' | 'head' | 'ended'

/**
 * Takes the response over from Fastify and sends its head.
 *
 * @returns `undefined` when the stream's head went out (the body follows), else why a
 *   stream on it is closed from birth: `'server'` (HEAD, 204) or `'error'` (500)
 * @example
 * const closed = openResponse(reply, reply.raw, adapterFor(reply.request), 'stream')
 */
export function openResponse (reply: FastifyReply, raw: RawResponse, adapter: Adapter, disposition: Disposition): 'server' | 'error' | undefined {
  // Headers set before opening (hooks, reply.header(), CORS plugins) live on the
  // reply; hijack() skips onSend, so they are passed on here.
  const given = reply.getHeaders()
  reply.hijack()
  if (disposition === 'ended') {
    answerWithoutStream(raw, 204)
    return 'server'
  }
  try {
    // One object given to writeHead(), no setHeader(): Node then keeps no header map
    // for the life of the response (about 0.5 KB per open stream).
    raw.writeHead(200, adapter.headers(given))
    // Send the headers now, so the client's `open` fires before the first event.
    raw.flushHeaders()
  } catch (err) {
    // An invalid header value set by the application, or a response it already
    // wrote to: the client gets an answer, and nothing stays counted.
    const failure = new OpenFailedError(err instanceof Error ? err.message : describe(err), { cause: err })
    reply.request.log.error({ err: failure }, failure.message)
    answerWithoutStream(raw, 500)
    return 'error'
  }
  if (disposition === 'head') {
    raw.end()
    return 'server'
  }
  return undefined
}
