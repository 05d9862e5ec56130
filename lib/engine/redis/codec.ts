/**
 * What travels through Redis, both ways: a pub/sub message is
 * `${id}\n${publishedAt}\n${event}\n${data}` (id empty on channels without history,
 * publishedAt the publisher's clock in epoch ms, empty when unknown); the publish
 * script writes the id as `${id} ${publishId} ${previous}`, previous the id and the
 * publish id of the entry before it in the stream (`${id} ${publishId}`, or '-' for
 * none; scripts.ts). A stream entry has
 * fields `e` (event), `d` (data) and `p` (its publish id). Whatever comes back is checked, since anyone
 * with access to Redis can write there: what a channel could not have published is
 * dropped, never delivered, and a timestamp no clock could have written is not believed.
 */
import type { EngineMessage } from '../engine.js'
import { ID_PATTERN } from './ids.js'

/**
 * How far a timestamp from Redis may be from this instance's clock, either way, to be
 * believed: a live message is never that old, and two clocks that disagree more are
 * broken. Past it the message is still delivered, without `publishedAt`, so one
 * absurd value cannot skew the delivery latency histogram.
 */
export const MAX_CLOCK_DISTANCE_MS = 60 * 60 * 1000

/** Digits of a timestamp: 15 reach the year 33658 and stay below 2^53. */
const MAX_TIMESTAMP_DIGITS = 15

const ZERO = 48
const NINE = 57

/**
 * The timestamp field of a message made by {@link encode}: a safe integer of epoch
 * ms, or '' for none.
 *
 * @example
 * timestampField(1718000000000) // '1718000000000'
 */
export function timestampField (publishedAt: number | undefined): string {
  return publishedAt !== undefined && Number.isSafeInteger(publishedAt) && publishedAt >= 0 ? String(publishedAt) : ''
}

/**
 * The pub/sub text of a message. The event name has no LF (catalogs refuse it), nor
 * have the id and the timestamp, so the first three LFs split the text; the data may
 * hold more.
 *
 * @example
 * encode('1-0', 'score', '{"seq":1}', 1718000000000) // '1-0\n1718000000000\nscore\n{"seq":1}'
 */
export function encode (id: string, event: string, data: string, publishedAt?: number): string {
  return `${id}\n${timestampField(publishedAt)}\n${event}\n${data}`
}

/** A message from Redis with what chains it to the stream: its publish id, and the entry before it (heard messages only). */
export interface HeardMessage extends EngineMessage {
  readonly publishId?: string | undefined
  /** The publish id of the entry before it in the stream, '-' for none. */
  readonly previous?: string | undefined
  /** The id of that entry (none with '-'). */
  readonly previousId?: string | undefined
}

/** The longest parts of a publish id (scripts.ts: random base64url, a dot, a base-36 counter); the publish script checks them too. */
export const PUBLISH_ID_MAX_HEAD = 64
export const PUBLISH_ID_MAX_COUNTER = 16
/** A publish id. */
const PUBLISH_ID = `[A-Za-z0-9_-]{1,${PUBLISH_ID_MAX_HEAD}}\\.[0-9a-z]{1,${PUBLISH_ID_MAX_COUNTER}}`
/** A publish id, or '-' for none. */
const PUBLISH_ID_PATTERN = new RegExp(`^(?:-|${PUBLISH_ID})$`)

/** A stream id, unanchored. */
const ID = ID_PATTERN.source.slice(1, -1)

/**
 * The first line of a message from the publish script, whole: `<id> <publish id>
 * <previous>` (`-`, or `<id> <publish id>`) and its LF. One test per message heard,
 * in place of a split and a test of each part.
 */
const CHAINED_HEADER = new RegExp(`^${ID} ${PUBLISH_ID} (?:-|${ID} ${PUBLISH_ID})\n`)

const DASH = 45

/** An event name a catalog accepts on the wire: not empty, no line break. */
function isEventName (event: string): boolean {
  return event.length > 0 && !event.includes('\r') && !event.includes('\n')
}

/** A message read from Redis, or undefined when it is not one a channel could have published. */
function message (id: string, event: unknown, data: unknown, publishedAt: number | undefined, publishId?: string, previous?: string): HeardMessage | undefined {
  if (typeof event !== 'string' || !isEventName(event) || typeof data !== 'string') return undefined
  if (id !== '' && !ID_PATTERN.test(id)) return undefined
  if (publishId === undefined) return { id: id === '' ? undefined : id, event, data, publishedAt }
  return previous === undefined ? { id, event, data, publishedAt, publishId } : { id, event, data, publishedAt, publishId, previous }
}

/**
 * The timestamp in `text` from `start` to `end`: a number, `undefined` for none or one
 * too far from `nowMs`, `NaN` for a field {@link encode} cannot write. Read digit by
 * digit, without a slice: this runs for every message heard.
 */
function timestamp (text: string, start: number, end: number, nowMs: number): number | undefined {
  const length = end - start
  if (length === 0) return undefined
  if (length > MAX_TIMESTAMP_DIGITS || (length > 1 && text.charCodeAt(start) === ZERO)) return NaN
  let ms = 0
  for (let i = start; i < end; i++) {
    const code = text.charCodeAt(i)
    if (code < ZERO || code > NINE) return NaN
    ms = ms * 10 + code - ZERO
  }
  return Math.abs(nowMs - ms) <= MAX_CLOCK_DISTANCE_MS ? ms : undefined
}

/**
 * Decodes a pub/sub message made by {@link encode}. A timestamp farther than
 * {@link MAX_CLOCK_DISTANCE_MS} from `nowMs` is left out; a malformed one makes the
 * message foreign.
 *
 * @example
 * decode('1-0\n1718000000000\nscore\n{"seq":1}', 1718000000002)
 * // { id: '1-0', event: 'score', data: '{"seq":1}', publishedAt: 1718000000000 }
 * decode('5-0 k3Jx.2 4-0 k3Jx.1\n\nscore\n{}').previous // 'k3Jx.1' (previousId '4-0')
 */
export function decode (text: string, nowMs: number = Date.now()): HeardMessage | undefined {
  const first = text.indexOf('\n')
  const second = first === -1 ? -1 : text.indexOf('\n', first + 1)
  const third = second === -1 ? -1 : text.indexOf('\n', second + 1)
  if (third === -1) return undefined
  const publishedAt = timestamp(text, first + 1, second, nowMs)
  if (Number.isNaN(publishedAt)) return undefined
  const space = text.indexOf(' ')
  if (space === -1 || space > first) return message(text.slice(0, first), text.slice(second + 1, third), text.slice(third + 1), publishedAt)
  if (!CHAINED_HEADER.test(text)) return undefined
  const event = text.slice(second + 1, third)
  if (!isEventName(event)) return undefined
  const next = text.indexOf(' ', space + 1)
  const id = text.slice(0, space)
  const publishId = text.slice(space + 1, next)
  const data = text.slice(third + 1)
  if (text.charCodeAt(next + 1) === DASH) return { id, event, data, publishedAt, publishId, previous: '-' }
  const last = text.indexOf(' ', next + 1)
  return { id, event, data, publishedAt, publishId, previous: text.slice(last + 1, first), previousId: text.slice(next + 1, last) }
}

/**
 * Stream entries as XRANGE returns them (`[id, [field, value, ...]]`), as messages.
 * Entries a channel could not have written (no id, other fields, a bad event name)
 * are skipped. `withPublishIds`: with each entry's publish id (a catch-up chains by it). They carry no `publishedAt`: a replay is not a delivery's latency.
 *
 * @example
 * entries([['1-0', ['e', 'score', 'd', '{"seq":1}']]]) // [{ id: '1-0', event: 'score', data: '{"seq":1}', publishedAt: undefined }]
 */
export function entries (reply: unknown, withPublishIds = false): HeardMessage[] {
  const messages: EngineMessage[] = []
  if (!Array.isArray(reply)) return messages
  for (const entry of reply as unknown[]) {
    if (!Array.isArray(entry) || typeof entry[0] !== 'string' || !Array.isArray(entry[1])) continue
    const fields = entry[1] as unknown[]
    let event: unknown
    let data: unknown
    let publishId: unknown
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i] === 'e') event = fields[i + 1]
      else if (fields[i] === 'd') data = fields[i + 1]
      else if (fields[i] === 'p') publishId = fields[i + 1]
    }
    const parsed = message(entry[0], event, data, undefined, withPublishIds && typeof publishId === 'string' && PUBLISH_ID_PATTERN.test(publishId) ? publishId : undefined)
    if (parsed?.id !== undefined) messages.push(parsed)
  }
  return messages
}
