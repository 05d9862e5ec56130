/**
 * What crosses the fetch boundary, besides the stream: the Last-Event-ID as a header
 * value, a response body freed unread, and failures said in words.
 */
import { SseClientError } from './errors.js'

/**
 * Whether an id survives the trip as a header value: no control character but tab
 * (Node's fetch refuses them, §9.2.3 allows them), and no space or tab at either end
 * (`Headers` trims them, so the server would read another id).
 */
export function isSendableId (id: string): boolean {
  return !/[\x00-\x08\x0a-\x1f\x7f]|^[ \t]|[ \t]$/.test(id)
}

/**
 * An id as a header value: `Headers` takes byte strings only (a character above U+00FF
 * throws), so the UTF-8 bytes go one per character, which is what browsers'
 * EventSource puts on the wire (§9.2.3: "UTF-8 encode").
 */
export function utf8AsByteString (id: string): string {
  if (!/[^\x00-\x7f]/.test(id)) return id
  let value = ''
  for (const byte of new TextEncoder().encode(id)) value += String.fromCharCode(byte)
  return value
}

/** What a body that failed mid-stream is reported as: the liveness deadline, a bound, or the read itself. */
export function readFailure (cause: unknown, isSilent: boolean, silenceMs: number | false): SseClientError {
  if (isSilent) {
    return new SseClientError('TYPED_SSE_CLIENT_TIMEOUT',
      `Nothing arrived for heartbeatTimeoutMs (${String(silenceMs)} ms); dropped the connection, reconnecting with Last-Event-ID.`, { cause })
  }
  if (cause instanceof SseClientError) return cause
  return new SseClientError('TYPED_SSE_CLIENT_READ_FAILED',
    'The response body failed mid-stream (connection reset, or a body that cannot be decoded); reconnecting.', { cause })
}

/** Frees a response we will not read, whatever state its body is in. */
export async function cancelBody (response: Response): Promise<void> {
  try {
    await response.body?.cancel()
  } catch {
    // Already errored or aborted: nothing to free.
  }
}

/** A failed fetch in words: Node's says "fetch failed" and keeps the reason (ECONNREFUSED, ENOTFOUND) in its cause. */
export function describeFailure (cause: unknown): string {
  const error = cause as { message?: string, cause?: { code?: string, message?: string } }
  const reason = error.cause?.code ?? error.cause?.message
  return reason === undefined ? String(error.message) : `${String(error.message)}: ${reason}`
}
