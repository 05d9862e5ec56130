/**
 * HTTP/1.1: a keep-alive response with chunked encoding on its own socket, which can
 * be corked so a channel publish costs one flush for all its writes, and which takes a
 * frame as one chunk written to the socket itself (chunked.ts).
 */
import { streamHeaders, type Adapter } from './adapter.js'
import { directSocketOf, forgetDrain, writeChunk } from './chunked.js'

const anyHeader = (): boolean => true

/**
 * The HTTP/1.1 adapter.
 *
 * @example
 * http1.headers({ 'x-request-id': 'a1' })['connection'] // 'keep-alive'
 */
export const http1: Adapter = {
  headers (given) {
    const head = streamHeaders(given, anyHeader)
    head.connection = 'keep-alive'
    return head
  },
  socketOf: (raw) => raw.socket ?? undefined,
  isGone: (raw) => raw.destroyed === true,
  write (raw, frame) {
    const socket = directSocketOf(raw)
    return socket === undefined ? raw.write(frame) : writeChunk(socket, frame)
  },
  forgetDrain,
  release () {}
}
