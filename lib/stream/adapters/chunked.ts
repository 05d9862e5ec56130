/**
 * An HTTP/1.1 frame as one chunk on the socket. Node's `response.write()` frames a chunk
 * as three writes (its size, the data, CRLF), each a trip through the socket's stream
 * machinery and an entry of the `writev` that flushes them: with one small event per
 * write, that costs more than the event (bench/README.md, fifth round). Written here as
 * one Buffer instead, byte for byte what Node would send, when nothing else of the
 * response is in the way; otherwise through `response.write()` as before.
 */
import { OutgoingMessage } from 'node:http'
import type { RawResponse } from './adapter.js'

/**
 * Node's own `response.write()`, as it was when this module loaded: one replaced since, on
 * the response or its class (a plugin that counts or logs what is written), sees every frame.
 */
const nodeWrite = OutgoingMessage.prototype.write

/** What this file reads of Node's `ServerResponse` and its socket (Node 20 to 24). */
interface Http1Response {
  readonly socket: Http1Socket | null
  /** The body is chunked (HTTP/1.1, no Content-Length, not HEAD). */
  readonly chunkedEncoding: boolean
  /** The head went out (or is first in `outputData`). */
  readonly _headerSent: boolean
  /** Writes held until the socket is this response's (a pipelined request's). */
  readonly outputData?: readonly unknown[]
  /** `response.cork()` holds writes in the response itself. */
  readonly writableCorked: number
  readonly writableEnded: boolean
}

interface Http1Socket {
  /** The response the socket serves now. */
  readonly _httpMessage: unknown
  readonly destroyed: boolean
  readonly writable: boolean
  readonly writableCorked: number
  readonly writableNeedDrain: boolean
  cork (): void
  uncork (): void
  write (chunk: Buffer): boolean
  once (event: 'drain', listener: (this: Http1Socket) => void): unknown
  off (event: 'drain', listener: (this: Http1Socket) => void): unknown
  listeners (event: 'drain'): unknown[]
}

/**
 * Node 20's `response.writableCorked` adds the socket's count to the response's own (a
 * channel publish corks the socket: that is no reason to go through `response.write()`);
 * later versions give the response's own, and hold its writes while it is corked. Asked of
 * Node itself, not told by its version number: a message given a socket that says 5. (A
 * bare OutgoingMessage: a ServerResponse would be announced to diagnostics channels.)
 */
const CORKED_COUNTS_SOCKET = ((): boolean => {
  const probe = new OutgoingMessage()
  Object.assign(probe, { socket: { writableCorked: 5 } })
  return probe.writableCorked === 5
})()

/**
 * Frames up to this size go out as one Buffer, the chunk's framing copied around them;
 * larger ones as three writes (size, frame, CRLF), as Node does, since copying them would
 * cost more than the writes saved.
 */
const COPY_LIMIT = 16 * 1024

const CR = 13
const LF = 10
const CRLF = Buffer.from('\r\n', 'latin1')
/** The bytes of '0'-'9', 'a'-'f': a chunk's size is written in hex, as Node writes it. */
const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1')

/**
 * The socket a frame can go to as a chunk of its own: the response's, when the head went
 * out, nothing waits in the response (a pipelined request's, or `cork()`), the body is
 * chunked, and `write()` is Node's. `undefined` otherwise: `response.write()` then.
 *
 * @example
 * const socket = directSocketOf(reply.raw)
 */
export function directSocketOf (raw: RawResponse): Http1Socket | undefined {
  const response = raw as unknown as Http1Response
  const socket = response.socket
  if (raw.write !== nodeWrite || socket === null || socket._httpMessage !== response || !response.chunkedEncoding || !response._headerSent ||
    (response.outputData?.length ?? 0) > 0 || response.writableEnded || socket.destroyed || !socket.writable) return undefined
  // Writes held by `response.cork()` must go out first.
  const corked = CORKED_COUNTS_SOCKET ? response.writableCorked - socket.writableCorked : response.writableCorked
  if (corked > 0) return undefined
  return socket
}

/** The frame and the chunk made of it last: a channel's fan-out writes one frame to every subscriber in turn. */
let lastFrame: Buffer | undefined
let lastChunk: Buffer | undefined

/** Writes a chunk's size line (`<hex>\r\n`) into a new Buffer with `room` bytes after it. */
function sizeLine (size: number, room: number): Buffer {
  let digits = 1
  while (size >= 16 ** digits) digits++
  const bytes = Buffer.allocUnsafe(digits + 2 + room)
  for (let i = digits - 1, rest = size; i >= 0; i--, rest = Math.floor(rest / 16)) bytes[i] = HEX_DIGITS[rest % 16]
  bytes[digits] = CR
  bytes[digits + 1] = LF
  return bytes
}

/** A small `frame` framed as one chunk: its size in hex, CRLF, the frame, CRLF. */
function chunkOf (frame: Buffer): Buffer {
  if (frame === lastFrame) return lastChunk as Buffer
  const chunk = sizeLine(frame.length, frame.length + 2)
  chunk.set(frame, chunk.length - frame.length - 2)
  chunk[chunk.length - 2] = CR
  chunk[chunk.length - 1] = LF
  lastFrame = frame
  lastChunk = chunk
  return chunk
}

/**
 * Writes `frame` as one chunk. When the socket's buffer is full, its `drain` is passed
 * on to the response, where the stream listens (as after `response.write()`).
 *
 * @returns false when the socket's buffer is full
 * @example
 * const socket = directSocketOf(reply.raw)
 * if (socket !== undefined) writeChunk(socket, Buffer.from('data: 1\n\n'))
 */
export function writeChunk (socket: Http1Socket, frame: Buffer): boolean {
  // A chunk of size 0 would end the body: there is nothing to write.
  if (frame.length === 0) return true
  // As Node's response.write() does: the writes of this tick leave in one flush.
  if (socket.writableCorked === 0) {
    socket.cork()
    process.nextTick(uncork, socket)
  }
  let isWritten: boolean
  if (frame.length <= COPY_LIMIT) {
    isWritten = socket.write(chunkOf(frame))
  } else {
    socket.write(sizeLine(frame.length, 0))
    socket.write(frame)
    isWritten = socket.write(CRLF)
  }
  if (isWritten) return true
  socket.once('drain', passDrain)
  return false
}

function uncork (socket: Http1Socket): void {
  socket.uncork()
}

/**
 * One `drain` listener for every socket: tells the response it serves, unless it ended, or
 * a listener before this one in the same `drain` (Node's own, for the response's writes)
 * already wrote until the socket was full again: then the next `drain` tells it (told
 * twice, a stream would take the second for room that is not there).
 */
function passDrain (this: Http1Socket): void {
  const response = this._httpMessage as { readonly writableEnded: boolean, emit: (event: 'drain') => void } | null
  if (response === null || response.writableEnded) return
  if (!this.writableNeedDrain) {
    response.emit('drain')
  } else if (!this.listeners('drain').includes(passDrain)) {
    this.once('drain', passDrain)
  }
}

/**
 * The stream of `raw` closed: its socket no longer passes `drain` on (a keep-alive
 * socket may serve another response next).
 *
 * @example
 * forgetDrain(reply.raw)
 */
export function forgetDrain (raw: RawResponse): void {
  (raw as unknown as Http1Response).socket?.off('drain', passDrain)
}
