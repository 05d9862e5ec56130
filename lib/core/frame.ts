/**
 * Every frame a stream writes, and the only place that knows the wire grammar
 * (WHATWG HTML, "Server-sent events", §9.2.5 Parsing an event stream, §9.2.6
 * Interpreting an event stream): events, ids, retry hints, data lines, comments and
 * the library's control events. Pure: strings in, strings or Buffers out.
 *
 * The grammar makes CR, LF and CRLF all end a line, so a value that holds one would
 * start a new field. Data may hold line breaks (each line becomes its own `data:`
 * field, which the parser joins back with LF); `event` and `id` may not, so they are
 * rejected rather than escaped: a silently altered id would break replay. We emit LF
 * only, because a CRLF split across two TCP chunks is misread by some parsers.
 */
import { InvalidCommentError, InvalidEventNameError, InvalidIdError, InvalidRetryError } from './errors.js'

/** An event id as given by the caller: a string (no CR, LF, NUL, lone surrogate) or a finite number. */
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
/** {@link HEARTBEAT} as the one Buffer every stream writes. */
export const HEARTBEAT_FRAME = Buffer.from(HEARTBEAT)

/** Event names starting with this prefix are reserved for the library's control events. */
export const RESERVED_EVENT_PREFIX = 'sse:'

/**
 * Names EventSource dispatches itself (WHATWG HTML §9.2.2): a server event named
 * `error` would flip a client to "connecting", one named `open` would fake a connection.
 */
const EVENTSOURCE_NAMES = new Set(['error', 'open'])

/** A value named in an error message, whatever its type (`Object.create(null)` has no toString). */
export function describe (value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint' || value == null) return String(value)
  if (typeof value === 'symbol') return value.description === undefined ? 'a symbol' : `Symbol(${value.description})`
  return `a ${typeof value === 'function' ? 'function' : Array.isArray(value) ? 'array' : 'object'}`
}

/**
 * Checks an event name and returns its `event:` line.
 *
 * @throws TYPED_SSE_INVALID_EVENT_NAME when empty, holding CR/LF, or reserved
 *   (unless `allowReserved`, used for the library's own control events).
 * @example
 * eventField('tick') // 'event: tick\n'
 */
export function eventField (name: string, allowReserved = false): string {
  if (typeof name !== 'string' || name.length === 0 || LINE_BREAK_CHAR.test(name) || !name.isWellFormed() ||
    EVENTSOURCE_NAMES.has(name) || (!allowReserved && name.startsWith(RESERVED_EVENT_PREFIX))) {
    throw new InvalidEventNameError(describe(name))
  }
  // One space after the colon: the parser strips exactly one, so a name that
  // itself starts with a space survives.
  return `event: ${name}\n`
}

/**
 * Checks an id and returns its string form. `''` is valid: it resets the client's
 * last event id. `0` is written as `'0'`, never dropped. A lone surrogate cannot be
 * written as UTF-8 (it would arrive as U+FFFD, another id), so it is refused.
 *
 * @throws TYPED_SSE_INVALID_ID
 * @example
 * idValue(7) // '7'
 */
export function idValue (id: EventId): string {
  if (typeof id === 'number') {
    if (Number.isFinite(id)) return String(id)
  } else if (typeof id === 'string' && !ID_FORBIDDEN.test(id) && id.isWellFormed()) {
    return id
  }
  throw new InvalidIdError(describe(id))
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
  if (typeof ms !== 'number' || !Number.isSafeInteger(ms) || ms < 0) throw new InvalidRetryError(describe(ms))
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

/**
 * The text of one whole event: `event:`, `id:` and `retry:` when given, the data
 * lines, and the blank line that dispatches it. `event` must come from a catalog
 * (checked when it was defined); id and retry are checked here, before anything is
 * returned, so a failure writes nothing.
 *
 * @throws TYPED_SSE_INVALID_ID, TYPED_SSE_INVALID_RETRY
 * @example
 * eventText('tick', '{"n":1}', 7) // 'event: tick\nid: 7\ndata: {"n":1}\n\n'
 */
export function eventText (event: string, data: string, id?: EventId, retry?: number): string {
  return frameText(event, data, id === undefined ? '' : idField(id), retry === undefined ? '' : retryField(retry))
}

/**
 * {@link eventText} for an id one of the library's engines made: such ids cannot hold a
 * line break, NUL or a lone surrogate (engine.ts, `withWireSafeIds`), so it is not checked
 * again on every frame.
 *
 * @example
 * eventTextWithSafeId('tick', '{"n":1}', 'k3_7') // 'event: tick\nid: k3_7\ndata: {"n":1}\n\n'
 */
export function eventTextWithSafeId (event: string, data: string, id: string | undefined): string {
  return frameText(event, data, id === undefined ? '' : `id: ${id}\n`, '')
}

/** An event's text from its checked parts: the id and retry lines are `''` when absent. */
function frameText (event: string, data: string, idLine: string, retryLine: string): string {
  // One line of data (every JSON payload): one template, no `data:` string made apart.
  if (!LINE_BREAK_CHAR.test(data)) return `event: ${event}\n${idLine}${retryLine}data: ${data}\n\n`
  return `event: ${event}\n${idLine}${retryLine}${dataField(data)}\n`
}

/**
 * The bytes {@link eventText} produces for an event without id or retry, counted
 * without building it: a size limit checks every publish, before the engine gives the
 * id that the frame is built with.
 *
 * @example
 * eventByteLength('tick', '{"n":1}') // 27, as Buffer.byteLength(eventText('tick', '{"n":1}'))
 */
export function eventByteLength (event: string, data: string): number {
  // 'event: ' + name + LF, then 'data: ' + line + LF per line of the data, then LF.
  const fixed = 8 + Buffer.byteLength(event) + 1
  if (!LINE_BREAK_CHAR.test(data)) return fixed + 7 + Buffer.byteLength(data)
  let bytes = fixed
  for (const line of data.split(LINE_BREAK)) bytes += 7 + Buffer.byteLength(line)
  return bytes
}

/**
 * The most bytes {@link eventText} can produce for these parts (UTF-8 takes at most
 * three bytes per UTF-16 unit, and each line break of the data may add a `data: `
 * prefix), so a size limit can refuse a huge event before building it.
 *
 * @example
 * eventBytesBound('tick', 'x'.repeat(10)) <= 1000 // true
 */
export function eventBytesBound (event: string, data: string): number {
  return 3 * (event.length + data.length) + 6 * data.length + 64
}

/**
 * A frame with just a `retry:` line (a reconnection hint between events).
 *
 * @throws TYPED_SSE_INVALID_RETRY
 * @example
 * retryFrame(1000) // <Buffer 'retry: 1000\n'>
 */
export function retryFrame (ms: number): Buffer {
  return Buffer.from(retryField(ms) + '\n')
}

/**
 * A comment block as a Buffer, for a string (or a number, written in decimal).
 *
 * @throws TYPED_SSE_INVALID_COMMENT for any other type
 * @example
 * commentFrame('hi') // <Buffer ': hi\n\n'>
 */
export function commentFrame (text: string | number): Buffer {
  if (typeof text === 'number') text = String(text)
  else if (typeof text !== 'string') throw new InvalidCommentError(describe(text))
  return text.length === 0 ? HEARTBEAT_FRAME : Buffer.from(commentBlock(text))
}

/**
 * A control event of the library (a name with the reserved `sse:` prefix): its
 * payload is built by the library from numbers and strings, so JSON.stringify cannot
 * fail or produce a line break.
 *
 * @example
 * controlFrame('sse:missed', { dropped: 3 }) // 'event: sse:missed\ndata: {"dropped":3}\n\n'
 */
export function controlFrame (name: `${typeof RESERVED_EVENT_PREFIX}${string}`, payload: object, id?: string): Buffer {
  return Buffer.from(eventField(name, true) + (id === undefined ? '' : idField(id)) + dataField(JSON.stringify(payload)) + '\n')
}
