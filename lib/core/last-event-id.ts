/**
 * The `Last-Event-ID` request header as the application sees it: decoded as UTF-8, and
 * `undefined` when there is nothing a replay could use.
 */
import { isUtf8 } from 'node:buffer'

const NON_ASCII = /[^\x00-\x7f]/

/**
 * Node exposes header values as latin1; browsers send `Last-Event-ID` as UTF-8.
 * Bytes that are not valid UTF-8 keep their latin1 reading: Node's fetch (so the
 * `eventsource` package) sends an id such as 'café' as latin1, one byte per character.
 * Returns undefined for a missing or empty header (browsers never send an empty one)
 * and for one longer than `maxBytes`, so no replay lookup runs on hostile input.
 *
 * @example
 * decodeLastEventId('caf\xc3\xa9', 256) // 'café'
 */
export function decodeLastEventId (value: string | string[] | undefined, maxBytes: number): string | undefined {
  const header = Array.isArray(value) ? value[0] : value
  // latin1: one character per byte, so the length is the byte count.
  if (header === undefined || header === '' || header.length > maxBytes) return undefined
  if (!NON_ASCII.test(header)) return header
  const bytes = Buffer.from(header, 'latin1')
  return isUtf8(bytes) ? bytes.toString('utf8') : header
}
