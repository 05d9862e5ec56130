/**
 * What differs between HTTP versions for an event stream: which headers may be sent,
 * how a batch of writes is corked, how a closed connection is seen, and what to close
 * on shutdown. One stateless transport per version (nothing allocated per stream);
 * the stream picks one when it opens and knows nothing else of HTTP.
 */
import type { FastifyRequest } from 'fastify'
import { http1 } from './http1.js'
import { http2 } from './http2.js'
import type { Transport } from './adapter.js'

export { answerWithoutStream, type CorkableSocket, type Headers, type RawResponse, type Transport } from './adapter.js'

/**
 * The transport of a request's HTTP version.
 *
 * @example
 * const transport = transportFor(reply.request)
 * reply.raw.writeHead(200, transport.headers(reply.getHeaders()))
 */
export function transportFor (request: FastifyRequest): Transport {
  return request.raw.httpVersionMajor === 2 ? http2 : http1
}
