/**
 * Pure wire encoding: fields -> the exact text of an event stream (WHATWG HTML,
 * "Server-sent events", §9.2.5 Parsing an event stream, §9.2.6 Interpreting an event stream).
 *
 * The grammar makes CR, LF and CRLF all end a line, so a value that holds one would
 * start a new field. Data may hold line breaks (each line becomes its own `data:`
 * field, which the parser joins back with LF); `event` and `id` may not, so they are
 * rejected rather than escaped: a silently altered id would break replay. We emit LF
 * only, because a CRLF split across two TCP chunks is misread by some parsers.
 */
import { InvalidEventNameError, InvalidIdError, InvalidRetryError } from './errors.js'

/** An event id as given by the caller: a string (no CR, LF, NUL) or a finite number. */
export type EventId = string | number

/** Any CR or LF: these end a line in the event stream grammar. */
const LINE_BREAK_CHAR = /[\r\n]/
/** CRLF, CR and LF, in that order so CRLF is one break, not two. */
const LINE_BREAK = /\r\n|\r|\n/
/** The id field ignores values with NUL (§9.2.6), so such an id would be lost. */
const ID_FORBIDDEN = /[\r\n\0]/

/**
 * A comment line sent after a period of silence. The blank line after it ends
 * the (empty) event, so the client dispatches nothing.
 */
export const HEARTBEAT = ':\n\n'

/** Event names starting with this prefix are reserved for the library's control events. */
export const RESERVED_EVENT_PREFIX = 'sse:'

/**
 * Checks an event name and returns its `event:` line.
 *
 * @throws TYPED_SSE_INVALID_EVENT_NAME when empty, holding CR/LF, or reserved
 *   (unless `allowReserved`, used for the library's own control events).
 * @example
 * eventField('tick') // 'event: tick\n'
 */
export function eventField (name: string, allowReserved = false): string {
  if (typeof name !== 'string' || name.length === 0 || LINE_BREAK_CHAR.test(name) ||
    (!allowReserved && name.startsWith(RESERVED_EVENT_PREFIX))) {
    throw new InvalidEventNameError(JSON.stringify(name))
  }
  // One space after the colon: the parser strips exactly one, so a name that
  // itself starts with a space survives.
  return `event: ${name}\n`
}

/**
 * Checks an id and returns its string form. `''` is valid: it resets the client's
 * last event id. `0` is written as `'0'`, never dropped.
 *
 * @throws TYPED_SSE_INVALID_ID
 * @example
 * idValue(7) // '7'
 */
export function idValue (id: EventId): string {
  if (typeof id === 'number') {
    if (Number.isFinite(id)) return String(id)
  } else if (typeof id === 'string' && !ID_FORBIDDEN.test(id)) {
    return id
  }
  throw new InvalidIdError(typeof id === 'string' ? JSON.stringify(id) : String(id))
}

/**
 * Checks an id and returns its `id:` line.
 *
 * @throws TYPED_SSE_INVALID_ID
 * @example
 * idField('') // 'id: \n' (resets the client's last event id)
 */
export function idField (id: EventId): string {
  return `id: ${idValue(id)}\n`
}

/**
 * Checks a reconnection time and returns its `retry:` line. The parser only accepts
 * ASCII digits (§9.2.6), so negative, fractional and non-finite values are rejected.
 *
 * @throws TYPED_SSE_INVALID_RETRY
 * @example
 * retryField(0) // 'retry: 0\n'
 */
export function retryField (ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 0) throw new InvalidRetryError(String(ms))
  return `retry: ${ms}\n`
}

/**
 * Returns the `data:` lines for a text value: one line per line of the text, with
 * CRLF, CR and LF all taken as line breaks. The client joins them with LF, so a CR
 * in text arrives as LF (the format cannot carry a CR).
 *
 * @example
 * dataField('a\nb') // 'data: a\ndata: b\n'
 * dataField('')     // 'data: \n' (an event with empty data)
 */
export function dataField (text: string): string {
  if (!LINE_BREAK_CHAR.test(text)) return `data: ${text}\n`
  let out = ''
  for (const line of text.split(LINE_BREAK)) out += `data: ${line}\n`
  return out
}

/**
 * Returns a comment block: one `:` line per line of text, then a blank line.
 * Clients ignore comments; proxies see traffic.
 *
 * @example
 * commentBlock('hi') // ': hi\n\n'
 */
export function commentBlock (text: string): string {
  if (text.length === 0) return HEARTBEAT
  let out = ''
  for (const line of text.split(LINE_BREAK)) out += `: ${line}\n`
  return out + '\n'
}
