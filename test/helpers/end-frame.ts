/**
 * Ends a stream for good the way the wire contract of issue 13 says: the control
 * event `event: sse:end`, `id: sse:end`, `data: {}`, then the close. Written by the
 * test itself until this branch meets the lib that sends it.
 * TODO after merging main: make `endStream` call `stream.end()` (lib/stream.ts sends
 * exactly this frame there), or replace its three call sites by `stream.end()` and
 * delete this file.
 */
import { END_EVENT } from '../../lib/client.js'
import type { SseStream } from '../../lib/index.js'

const END_FRAME = Buffer.from(`event: ${END_EVENT}\nid: ${END_EVENT}\ndata: {}\n\n`)

/**
 * Sends `sse:end` and closes: the typed client stops on it; a reconnect carrying its
 * id would get 204 from the lib.
 *
 * @example
 * stream.send('done', { tokens: 42 }); endStream(stream)
 */
export function endStream (stream: SseStream<any>): void {
  stream.writeFrame(END_FRAME)
  stream.close()
}
