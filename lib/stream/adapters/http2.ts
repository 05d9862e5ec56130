/**
 * HTTP/2: one stream of a session that many responses share, so there is no socket of
 * its own to cork, connection-specific headers are forbidden, and the session must be
 * closed on shutdown.
 */
import { streamHeaders, type Http2SessionLike, type RawResponse, type Adapter } from './adapter.js'

/** Connection-specific headers, which HTTP/2 forbids (RFC 9113 §8.2.2): Node would throw. */
const CONNECTION_HEADERS = new Set(['connection', 'keep-alive', 'proxy-connection', 'upgrade'])
const isAllowed = (name: string): boolean => !CONNECTION_HEADERS.has(name)

/**
 * The HTTP/2 adapter.
 *
 * @example
 * http2.headers({ connection: 'close' }).connection // undefined
 */
export const http2: Adapter = {
  headers: (given) => streamHeaders(given, isAllowed),
  socketOf: () => undefined,
  isGone: (raw) => raw.stream?.destroyed ?? true,
  write: (raw, frame) => raw.write(frame),
  forgetDrain () {},
  release
}

/**
 * Before Node 24 server.close() waits for open sessions (Fastify closes them only with
 * forceCloseConnections: true). Closed gracefully (GOAWAY), other streams on it still
 * finish; but a graceful close waits for what the session has to send, which a client
 * that stopped reading its connection never takes: destroyed after the grace time,
 * with its socket.
 * (Every stream of the session asks: the first asking arms the timer.)
 */
function release (raw: RawResponse, graceMs: number): void {
  const session = raw.stream?.session
  if (session === undefined || session.destroyed || armed.has(session)) return
  armed.add(session)
  // Destroying the session only ends its socket, which waits for the same unread data;
  // the socket's proxy refuses destroy() but passes resetAndDestroy() (bound to the
  // socket, taken now: the proxy throws once the session let go of it).
  const reset = session.socket?.resetAndDestroy
  session.close()
  const timer = setTimeout(() => { session.destroy(); reset?.() }, graceMs)
  timer.unref()
  session.once('close', () => clearTimeout(timer))
}

/** Sessions whose shutdown timer runs. */
const armed = new WeakSet<Http2SessionLike>()

