/**
 * The client's event-stream parser, from the WHATWG HTML standard: §9.2.5 "Parsing an
 * event stream" (lines end at CR, LF or CRLF; one leading BOM is dropped) and §9.2.6
 * "Interpreting an event stream" (fields, dispatch).
 *
 * It splits lines on the raw bytes and decodes each whole line: CR and LF never occur
 * inside a multi-byte UTF-8 sequence, so a character split across chunks is whole by
 * then, and the bytes held for an unfinished event are counted exactly, which is what
 * `maxEventBytes` bounds (a hostile server sending one endless line must not fill memory).
 */
import { SseClientError } from './errors.js'

const LF = 0x0a
const CR = 0x0d
const BOM = [0xef, 0xbb, 0xbf]

/**
 * The default bound on the bytes of one event (all its lines, and the line being read).
 * @default 1048576 (1 MiB)
 * @example
 * createClient(url, { maxEventBytes: 4 * DEFAULT_MAX_EVENT_BYTES })
 */
export const DEFAULT_MAX_EVENT_BYTES = 1024 * 1024

/**
 * One dispatched event, as a browser's `MessageEvent` would carry it.
 *
 * @example
 * const event: StreamEvent = { type: 'message', data: 'x', lastEventId: '' }
 */
export interface StreamEvent {
  /** The `event:` value, `'message'` when none was given. */
  readonly type: string
  /** The data lines joined with LF. */
  readonly data: string
  /** The stream's last event id at dispatch time. */
  readonly lastEventId: string
}

/**
 * An incremental parser: `push` the bytes of a response as they come; `onEvent` and
 * `onRetry` are called as the stream dictates. Create one per connection, giving it
 * the last event id of the previous one (browsers keep it across reconnects).
 *
 * @example
 * const parser = new EventStreamParser({ onEvent: (event) => console.log(event.type, event.data) })
 * parser.push(new TextEncoder().encode('data: a\r\n\r\n'))
 */
export class EventStreamParser {
  /** The last event id (§9.2.6): sent as `Last-Event-ID` on the next connection. */
  lastEventId: string

  readonly #onEvent: (event: StreamEvent) => void
  readonly #onRetry: (ms: number) => void
  readonly #maxEventBytes: number
  // ignoreBOM: each line is decoded alone; only the stream's first BOM is dropped, below.
  readonly #decoder = new TextDecoder('utf-8', { ignoreBOM: true })
  /** The unfinished line's chunks, and their total bytes. */
  #pending: Uint8Array[] = []
  #pendingBytes = 0
  /** Bytes of the lines of the event being read. */
  #eventBytes = 0
  /** The previous chunk ended with CR: a LF starting the next one belongs to it. */
  #afterCR = false
  #isFirstLine = true
  #data = ''
  #hasData = false
  #type = ''
  #idBuffer: string

  constructor (options: { onEvent: (event: StreamEvent) => void, onRetry?: (ms: number) => void, maxEventBytes?: number, lastEventId?: string }) {
    this.#onEvent = options.onEvent
    this.#onRetry = options.onRetry ?? (() => {})
    this.#maxEventBytes = options.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES
    this.lastEventId = options.lastEventId ?? ''
    this.#idBuffer = this.lastEventId
  }

  /**
   * Feeds the next bytes of the stream.
   *
   * @throws SseClientError TYPED_SSE_CLIENT_EVENT_TOO_LARGE when the event being read passes `maxEventBytes` (the parser is then unusable: drop the connection)
   */
  push (chunk: Uint8Array): void {
    let start = 0
    if (this.#afterCR && chunk.length > 0) {
      // A CRLF split across two chunks: the LF ends nothing new.
      if (chunk[0] === LF) start = 1
      this.#afterCR = false
    }
    const breaks = new LineBreaks(chunk)
    while (start < chunk.length) {
      const end = breaks.next(start)
      if (end === -1) {
        this.#hold(chunk.subarray(start))
        return
      }
      this.#hold(chunk.subarray(start, end))
      this.#line(this.#takeLine())
      if (chunk[end] === LF) {
        start = end + 1
      } else if (end + 1 === chunk.length) {
        this.#afterCR = true
        return
      } else {
        start = chunk[end + 1] === LF ? end + 2 : end + 1
      }
    }
  }

  #hold (bytes: Uint8Array): void {
    this.#pendingBytes += bytes.length
    if (this.#eventBytes + this.#pendingBytes > this.#maxEventBytes) {
      throw new SseClientError('TYPED_SSE_CLIENT_EVENT_TOO_LARGE',
        `An event passed maxEventBytes (${this.#maxEventBytes} bytes) before its end; the connection was dropped. ` +
        'Raise maxEventBytes if the server really sends events this large.')
    }
    if (bytes.length > 0) this.#pending.push(bytes)
  }

  #takeLine (): string {
    let bytes: Uint8Array
    if (this.#pending.length === 1) {
      bytes = this.#pending[0]
    } else {
      bytes = new Uint8Array(this.#pendingBytes)
      let offset = 0
      for (const part of this.#pending) {
        bytes.set(part, offset)
        offset += part.length
      }
    }
    this.#eventBytes += this.#pendingBytes
    this.#pending = []
    this.#pendingBytes = 0
    if (this.#isFirstLine) {
      this.#isFirstLine = false
      if (bytes.length >= 3 && BOM.every((byte, i) => bytes[i] === byte)) bytes = bytes.subarray(3)
    }
    return bytes.length === 0 ? '' : this.#decoder.decode(bytes)
  }

  #line (line: string): void {
    if (line === '') {
      this.#dispatch()
      return
    }
    if (line.charCodeAt(0) === 0x3a) return // ':' a comment
    const colon = line.indexOf(':')
    let name = line
    let value = ''
    if (colon !== -1) {
      name = line.slice(0, colon)
      value = line.slice(colon + 1)
      if (value.charCodeAt(0) === 0x20) value = value.slice(1)
    }
    switch (name) {
      case 'event':
        this.#type = value
        break
      case 'data':
        this.#data = this.#hasData ? this.#data + '\n' + value : value
        this.#hasData = true
        break
      case 'id':
        if (!value.includes('\0')) this.#idBuffer = value
        break
      case 'retry':
        if (/^[0-9]+$/.test(value)) this.#onRetry(Number.parseInt(value, 10))
        break
      default:
        // §9.2.6: any other field is ignored.
    }
  }

  #dispatch (): void {
    this.#eventBytes = 0
    this.lastEventId = this.#idBuffer
    const type = this.#type === '' ? 'message' : this.#type
    const hasData = this.#hasData
    const data = this.#data
    this.#type = ''
    this.#data = ''
    this.#hasData = false
    if (!hasData) return
    this.#onEvent({ type, data, lastEventId: this.lastEventId })
  }
}

/**
 * Finds line breaks in one chunk. The next CR and the next LF are each searched with
 * the native `indexOf` and remembered, so a chunk of many lines is scanned once, not
 * once per line.
 */
class LineBreaks {
  readonly #chunk: Uint8Array
  #lf = -2
  #cr = -2

  constructor (chunk: Uint8Array) {
    this.#chunk = chunk
  }

  /** The index of the next CR or LF at or after `start`, or -1. */
  next (start: number): number {
    if (this.#lf !== -1 && this.#lf < start) this.#lf = this.#chunk.indexOf(LF, start)
    if (this.#cr !== -1 && this.#cr < start) this.#cr = this.#chunk.indexOf(CR, start)
    if (this.#cr === -1) return this.#lf
    if (this.#lf === -1) return this.#cr
    return Math.min(this.#lf, this.#cr)
  }
}
