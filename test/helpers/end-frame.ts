/**
 * The end-of-stream control frame of the wire contract (issue 13), written by the
 * test servers themselves until lib/ sends it: `stream.end()` and an ended channel
 * will. TODO after merge: use `controlFrame(END_EVENT, {}, END_EVENT)` from
 * lib/frame.ts, or `stream.end()`, and drop this file.
 */
import { END_EVENT } from '../../lib/client.js'

/**
 * `event: sse:end`, `id: sse:end`, `data: {}`: the client stops on it; a reconnect
 * carrying its id gets 204.
 *
 * @example
 * stream.writeFrame(END_FRAME); stream.close()
 */
export const END_FRAME = Buffer.from(`event: ${END_EVENT}\nid: ${END_EVENT}\ndata: {}\n\n`)
