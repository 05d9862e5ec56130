/**
 * What differs between HTTP versions for an event stream: which headers may be sent,
 * how a batch of writes is corked, how a closed connection is seen, and what to close
 * on shutdown. One stateless adapter per version (nothing allocated per stream);
 * the stream picks one when it opens and knows nothing else of HTTP.
 */
import type { FastifyRequest } from 'fastify'
import { http1 } from './http1.js'
import { http2 } from './http2.js'
import type { Adapter } from './adapter.js'

export { answerWithoutStream, type CorkableSocket, type Headers, type RawResponse, type Adapter } from './adapter.js'

/**
 * The adapter of a request's HTTP version.
 *
 * @example
 * const adapter = adapterFor(reply.request)
 * reply.raw.writeHead(200, adapter.headers(reply.getHeaders()))
 */
export function adapterFor (request: FastifyRequest): Adapter {
  return request.raw.httpVersionMajor === 2 ? http2 : http1
}
