/**
 * The hand-written wire format of the baselines (raw node:http, hijacked Fastify):
 * the same bytes the plugin emits for an event, `event:` then `data:` then a blank
 * line, serialized once per event and shared by every socket.
 */
import type { PayloadKind, Score, Token } from '../payload.js'

/** Response headers of an event stream, as the plugin sends them. */
export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  'x-accel-buffering': 'no',
  connection: 'keep-alive'
} as const

/** One event, serialized once. */
export function encodeFrame (kind: PayloadKind, data: Score | Token): Buffer {
  return Buffer.from(`event: ${kind}\ndata: ${JSON.stringify(data)}\n\n`)
}
