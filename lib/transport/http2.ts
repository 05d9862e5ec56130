/**
 * HTTP/2: one stream of a session that many responses share, so there is no socket of
 * its own to cork, connection-specific headers are forbidden, and the session must be
 * closed on shutdown.
 */
import { streamHeaders, type Transport } from './transport.js'

/** Connection-specific headers, which HTTP/2 forbids (RFC 9113 §8.2.2): Node would throw. */
const CONNECTION_HEADERS = new Set(['connection', 'keep-alive', 'proxy-connection', 'upgrade'])
const isAllowed = (name: string): boolean => !CONNECTION_HEADERS.has(name)

/**
 * The HTTP/2 transport.
 *
 * @example
 * http2.headers({ connection: 'close' }).connection // undefined
 */
export const http2: Transport = {
  headers: (given) => streamHeaders(given, isAllowed),
  socketOf: () => undefined,
  isGone: (raw) => raw.stream?.destroyed ?? true,
  // Before Node 24 server.close() waits for open sessions (Fastify closes them only
  // with forceCloseConnections: true). Close it gracefully (GOAWAY): other streams on
  // it still finish.
  release: (raw) => raw.stream?.session?.close()
}
