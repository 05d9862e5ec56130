/**
 * An event-stream parser written straight from the WHATWG HTML spec, independent of
 * lib/: §9.2.5 "Parsing an event stream" (decoding and line splitting) and §9.2.6
 * "Interpreting an event stream" (fields, dispatch). Tests feed it the raw bytes of a
 * response, in chunks split anywhere: inside a CRLF, inside a multi-byte UTF-8 char.
 *
 * It also records what a browser throws away (comments, every field line), so tests
 * can assert that no input produced an extra field.
 */

/** One dispatched event, as a browser's `MessageEvent` would carry it. */
export interface ParsedEvent {
  /** The `event:` value, or 'message' when none was given. */
  type: string
  /** The data buffer with its trailing LF removed. */
  data: string
  /** The stream's last event id at dispatch time. */
  lastEventId: string
}

/** A field line as read, before interpretation. */
export interface ParsedField {
  name: string
  value: string
}

/**
 * Incremental parser. `push(bytes)` any number of times, then `end()`.
 *
 * @example
 * const parser = new EventStreamParser()
 * parser.push(Buffer.from('data: a\r'))
 * parser.push(Buffer.from('\n\n'))
 * parser.events // [{ type: 'message', data: 'a', lastEventId: '' }]
 */
export class EventStreamParser {
  /** Dispatched events, in order. */
  readonly events: ParsedEvent[] = []
  /** Comment lines (the text after ':'), in order. */
  readonly comments: string[] = []
  /** Every non-comment, non-blank line, as field name and value. */
  readonly fields: ParsedField[] = []
  /** The reconnection time last set by a valid `retry:` field. */
  retry: number | undefined
  /** Every valid `retry:` value, in order. */
  readonly retries: number[] = []
  /** The last event id string (§9.2.6 dispatch step 1). */
  lastEventId = ''

  /** Called after each dispatch (for tests waiting on events). */
  onEvent: ((event: ParsedEvent) => void) | undefined
  /** Called after each comment line. */
  onComment: ((text: string) => void) | undefined

  // The stream is decoded with UTF-8 decode, which strips one leading BOM (§9.2.5);
  // `stream: true` keeps a multi-byte char split across chunks whole.
  readonly #decoder = new TextDecoder('utf-8')
  /** Finds the next CR or LF (one per parser: `lastIndex` is state). */
  readonly #lineBreak = /[\r\n]/g
  #pending = ''
  /** The previous chunk ended with CR: a LF starting the next one belongs to it. */
  #afterCR = false
  #dataBuffer = ''
  #eventTypeBuffer = ''
  #lastEventIdBuffer = ''

  /** Feeds the next bytes of the stream. */
  push (chunk: Uint8Array): void {
    this.#feed(this.#decoder.decode(chunk, { stream: true }))
  }

  /** Ends the stream: flushes the decoder; an incomplete event is discarded (§9.2.6). */
  end (): void {
    this.#feed(this.#decoder.decode())
    this.#pending = ''
  }

  #feed (text: string): void {
    let start = 0
    if (this.#afterCR && text.length > 0) {
      // CRLF split across two chunks: the LF closes nothing new.
      if (text[0] === '\n') start = 1
      this.#afterCR = false
    }
    this.#lineBreak.lastIndex = start
    for (let match = this.#lineBreak.exec(text); match !== null; match = this.#lineBreak.exec(text)) {
      const i = match.index
      this.#line(this.#pending + text.slice(start, i))
      this.#pending = ''
      if (text[i] === '\r') {
        if (i + 1 < text.length) {
          if (text[i + 1] === '\n') this.#lineBreak.lastIndex = i + 2
        } else {
          this.#afterCR = true
        }
      }
      start = this.#lineBreak.lastIndex
    }
    this.#pending += text.slice(start)
  }

  #line (line: string): void {
    if (line === '') {
      this.#dispatch()
      return
    }
    if (line[0] === ':') {
      const text = line.slice(1)
      this.comments.push(text)
      this.onComment?.(text)
      return
    }
    const colon = line.indexOf(':')
    let name = line
    let value = ''
    if (colon !== -1) {
      name = line.slice(0, colon)
      value = line.slice(colon + 1)
      if (value[0] === ' ') value = value.slice(1)
    }
    this.fields.push({ name, value })
    switch (name) {
      case 'event':
        this.#eventTypeBuffer = value
        break
      case 'data':
        this.#dataBuffer += value + '\n'
        break
      case 'id':
        if (!value.includes('\0')) this.#lastEventIdBuffer = value
        break
      case 'retry':
        if (/^[0-9]+$/.test(value)) {
          this.retry = Number.parseInt(value, 10)
          this.retries.push(this.retry)
        }
        break
      default:
        // Any other field is ignored.
    }
  }

  #dispatch (): void {
    this.lastEventId = this.#lastEventIdBuffer
    if (this.#dataBuffer === '') {
      this.#eventTypeBuffer = ''
      return
    }
    const data = this.#dataBuffer.endsWith('\n') ? this.#dataBuffer.slice(0, -1) : this.#dataBuffer
    const event: ParsedEvent = {
      type: this.#eventTypeBuffer === '' ? 'message' : this.#eventTypeBuffer,
      data,
      lastEventId: this.lastEventId
    }
    this.#dataBuffer = ''
    this.#eventTypeBuffer = ''
    this.events.push(event)
    this.onEvent?.(event)
  }
}

/**
 * Parses a whole stream at once, or in the given chunk sizes (cycled).
 *
 * @example
 * parseAll(Buffer.from('event: a\ndata: 1\n\n')).events[0].type // 'a'
 */
export function parseAll (bytes: Uint8Array, chunkSizes: readonly number[] = [bytes.length || 1]): EventStreamParser {
  const parser = new EventStreamParser()
  let offset = 0
  for (let i = 0; offset < bytes.length; i++) {
    const size = Math.max(1, chunkSizes[i % chunkSizes.length])
    parser.push(bytes.subarray(offset, offset + size))
    offset += size
  }
  parser.end()
  return parser
}
