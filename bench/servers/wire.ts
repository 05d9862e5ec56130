/**
 * The hand-written wire format of the baselines (raw node:http, hijacked Fastify):
 * the same bytes the plugin emits for an event, `event:` then `data:` then a blank
 * line, serialized once per event and shared by every socket.
 */
import type { ServerResponse } from 'node:http'
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

/** A comment line, what the plugin sends as a heartbeat. */
const HEARTBEAT = Buffer.from(':\n\n')

/**
 * Writes a heartbeat comment to every response every `intervalMs` (one shared timer,
 * as the plugin does), when the runner asks for heartbeats; does nothing otherwise.
 *
 * @example
 * startHeartbeat(responses, heartbeatMs())
 */
export function startHeartbeat (responses: ReadonlySet<ServerResponse>, intervalMs: number | undefined): void {
  if (intervalMs === undefined) return
  setInterval(() => {
    for (const response of responses) response.write(HEARTBEAT)
  }, intervalMs).unref()
}
