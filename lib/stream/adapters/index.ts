/**
 * What differs between HTTP versions for an event stream: which headers may be sent,
 * how a batch of writes is corked, how a closed connection is seen, and what to close
 * on shutdown. One stateless adapter per version (nothing allocated per stream);
 * the stream picks one when it opens and knows nothing else of HTTP.
 */
import type { FastifyRequest } from 'fastify'
import { ServerResponse } from 'node:http'
import { http1 } from './http1.js'
import { http2 } from './http2.js'
import type { Adapter, RawResponse } from './adapter.js'

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

/**
 * The adapter of a response, told from the response alone: a channel publish corks each
 * subscriber's socket, and reading its request (and the request's `raw`) for the HTTP
 * version would touch two more objects per subscriber on that path. HTTP/1 responses,
 * also those of an HTTP/2 server with `allowHTTP1`, are Node's `ServerResponse`.
 *
 * @example
 * const socket = adapterOf(reply.raw).socketOf(reply.raw)
 */
export function adapterOf (raw: RawResponse): Adapter {
  return raw instanceof ServerResponse ? http1 : http2
}
