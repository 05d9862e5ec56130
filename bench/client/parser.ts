/**
 * An incremental parser for one HTTP/1.1 event-stream response, fed the bytes of a
 * socket as they arrive: the response head, then the chunked body (RFC 9112 §7.1)
 * or an unframed one, then the event stream (WHATWG HTML §9.2.5/§9.2.6).
 *
 * It works on Buffers without decoding text: lines are found with `indexOf(LF)`,
 * and of each event only the leading `{"seq":N,"t":T` of its data is read. Lines
 * end at LF (a CR before it is dropped); every contender emits LF or CRLF.
 */

const LF = 10
const CR = 13
const COLON = 58
const SEMICOLON = 59
const HEAD_END = Buffer.from('\r\n\r\n')
const DATA_FIELD = Buffer.from('data:')
const SEQ_PREFIX = Buffer.from('{"seq":')
const T_PREFIX = Buffer.from(',"t":')
/** A response head larger than this is not an event stream we asked for. */
const MAX_HEAD_BYTES = 16 * 1024

/** Called once per dispatched event with its `seq` and `t` (NaN when the data does not start as expected). */
export type EventListener = (seq: number, t: number) => void

type State = 'head' | 'chunk-size' | 'chunk-ext' | 'chunk-data' | 'chunk-end' | 'identity' | 'ended'

/**
 * Parses one response. `onOpen` runs when a `200 text/event-stream` head arrived;
 * `onEvent` for every event (a blank line after at least one `data:` field).
 *
 * @example
 * const parser = new ResponseParser((seq, t) => count++)
 * socket.on('data', (chunk) => parser.feed(chunk))
 */
export class ResponseParser {
  /** The response status, once the head arrived. */
  status = 0
  /** Set when the head is not a 200 event stream, or the framing is broken. */
  error: string | undefined
  /** Events dispatched so far. */
  events = 0
  onOpen: (() => void) | undefined

  /** Read `t` too (only the latency scenario needs it; it costs a string per event). */
  readsTime = false

  readonly #onEvent: EventListener
  #state: State = 'head'
  #head: Buffer | undefined
  #chunkSize = 0
  #chunkLeft = 0
  /** The start of a line that did not end in the bytes seen so far. */
  #partial: Buffer | undefined
  #hasData = false
  #seq = NaN
  #t = NaN

  constructor (onEvent: EventListener) {
    this.#onEvent = onEvent
  }

  /** `true` once a `200 text/event-stream` head arrived. */
  get isOpen (): boolean {
    return this.status === 200 && this.error === undefined
  }

  /** Feeds the next bytes of the socket. */
  feed (buf: Buffer): void {
    let pos = 0
    if (this.#state === 'head') {
      pos = this.#readHead(buf)
      if (pos < 0) return
    }
    if (this.#state === 'identity') {
      this.#body(buf, pos, buf.length)
      return
    }
    // Bounded by the buffer: every pass consumes at least one byte or returns.
    while (pos < buf.length) {
      switch (this.#state) {
        case 'chunk-size': {
          const byte = buf[pos++]
          if (byte === LF) {
            if (this.#chunkSize === 0) {
              this.#state = 'ended'
              return
            }
            this.#chunkLeft = this.#chunkSize
            this.#state = 'chunk-data'
          } else if (byte === SEMICOLON) {
            this.#state = 'chunk-ext'
          } else if (byte !== CR) {
            const digit = hexDigit(byte)
            if (digit < 0) return this.#fail(`bad chunk size byte ${byte}`)
            this.#chunkSize = this.#chunkSize * 16 + digit
          }
          break
        }
        case 'chunk-ext': {
          const lf = buf.indexOf(LF, pos)
          if (lf === -1) return
          pos = lf
          this.#state = 'chunk-size'
          break
        }
        case 'chunk-data': {
          const end = Math.min(buf.length, pos + this.#chunkLeft)
          this.#body(buf, pos, end)
          this.#chunkLeft -= end - pos
          pos = end
          if (this.#chunkLeft === 0) this.#state = 'chunk-end'
          break
        }
        case 'chunk-end': {
          // The CRLF after the chunk's data.
          const byte = buf[pos++]
          if (byte === LF) {
            this.#chunkSize = 0
            this.#state = 'chunk-size'
          } else if (byte !== CR) {
            return this.#fail('missing CRLF after chunk data')
          }
          break
        }
        default:
          return
      }
    }
  }

  /** Reads the head; returns the offset of the body in `buf`, or -1 while the head is incomplete. */
  #readHead (buf: Buffer): number {
    const before = this.#head?.length ?? 0
    const head = this.#head === undefined ? buf : Buffer.concat([this.#head, buf])
    const end = head.indexOf(HEAD_END)
    if (end === -1) {
      if (head.length > MAX_HEAD_BYTES) this.#fail('response head too large')
      else this.#head = Buffer.from(head)
      return -1
    }
    this.#head = undefined
    const lines = head.toString('latin1', 0, end).split('\r\n')
    this.status = Number(lines[0].split(' ')[1])
    let contentType = ''
    let isChunked = false
    for (let i = 1; i < lines.length; i++) {
      const colon = lines[i].indexOf(':')
      const name = lines[i].slice(0, colon).trim().toLowerCase()
      const value = lines[i].slice(colon + 1).trim().toLowerCase()
      if (name === 'content-type') contentType = value
      else if (name === 'transfer-encoding') isChunked = value.includes('chunked')
    }
    if (this.status !== 200 || !contentType.startsWith('text/event-stream')) {
      this.#fail(`status ${this.status}, content-type ${JSON.stringify(contentType)}`)
      return -1
    }
    this.#state = isChunked ? 'chunk-size' : 'identity'
    this.onOpen?.()
    return end + HEAD_END.length - before
  }

  /** Body bytes `buf[start, end)`: split into lines, carrying an unfinished one over. */
  #body (buf: Buffer, start: number, end: number): void {
    let pos = start
    while (pos < end) {
      let lf = buf.indexOf(LF, pos)
      if (lf >= end) lf = -1
      if (lf === -1) {
        const rest = buf.subarray(pos, end)
        this.#partial = this.#partial === undefined ? Buffer.from(rest) : Buffer.concat([this.#partial, rest])
        return
      }
      if (this.#partial !== undefined) {
        const line = Buffer.concat([this.#partial, buf.subarray(pos, lf)])
        this.#partial = undefined
        this.#line(line, 0, line.length)
      } else {
        this.#line(buf, pos, lf)
      }
      pos = lf + 1
    }
  }

  /** One line, `buf[start, end)` without its LF. */
  #line (buf: Buffer, start: number, end: number): void {
    if (end > start && buf[end - 1] === CR) end--
    if (end === start) {
      // A blank line dispatches the event, if it had data (§9.2.6).
      if (this.#hasData) {
        this.events++
        this.#onEvent(this.#seq, this.#t)
      }
      this.#hasData = false
      this.#seq = NaN
      this.#t = NaN
      return
    }
    if (buf[start] === COLON) return
    if (!startsWith(buf, start, end, DATA_FIELD)) return
    let value = start + DATA_FIELD.length
    if (buf[value] === 32) value++
    if (!this.#hasData) this.#readStamp(buf, value, end)
    this.#hasData = true
  }

  /** Reads `seq` and `t` from data starting `{"seq":N,"t":T`. */
  #readStamp (buf: Buffer, start: number, end: number): void {
    if (!startsWith(buf, start, end, SEQ_PREFIX)) return
    let pos = start + SEQ_PREFIX.length
    let seq = 0
    const seqStart = pos
    while (pos < end && buf[pos] >= 48 && buf[pos] <= 57) seq = seq * 10 + buf[pos++] - 48
    if (pos === seqStart || !startsWith(buf, pos, end, T_PREFIX)) return
    this.#seq = seq
    if (!this.readsTime) return
    pos += T_PREFIX.length
    let tEnd = pos
    while (tEnd < end && buf[tEnd] !== 44 && buf[tEnd] !== 125) tEnd++
    this.#t = Number(buf.toString('latin1', pos, tEnd))
  }

  #fail (message: string): void {
    this.error ??= message
    this.#state = 'ended'
  }
}

function startsWith (buf: Buffer, start: number, end: number, prefix: Buffer): boolean {
  if (end - start < prefix.length) return false
  for (let i = 0; i < prefix.length; i++) if (buf[start + i] !== prefix[i]) return false
  return true
}

function hexDigit (byte: number): number {
  if (byte >= 48 && byte <= 57) return byte - 48
  if (byte >= 97 && byte <= 102) return byte - 87
  if (byte >= 65 && byte <= 70) return byte - 55
  return -1
}
