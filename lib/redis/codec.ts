/**
 * What travels through Redis, both ways: a pub/sub message is `${id}\n${event}\n${data}`
 * (id empty on channels without history), a stream entry has fields `e` (event) and
 * `d` (data). Whatever comes back is checked, since anyone with access to Redis can
 * write there: what a channel could not have published is dropped, never delivered.
 */
import type { EngineMessage } from '../engine.js'
import { ID_PATTERN } from './ids.js'

/**
 * The pub/sub text of a message. The event name has no LF (catalogs refuse it), so
 * the first two LFs split the text; the data may hold more.
 *
 * @example
 * encode('1-0', 'score', '{"seq":1}') // '1-0\nscore\n{"seq":1}'
 */
export function encode (id: string, event: string, data: string): string {
  return `${id}\n${event}\n${data}`
}

/** A message read from Redis, or undefined when it is not one a channel could have published. */
function message (id: string, event: unknown, data: unknown): EngineMessage | undefined {
  if (typeof event !== 'string' || event.length === 0 || event.includes('\r') || event.includes('\n')) return undefined
  if (typeof data !== 'string') return undefined
  if (id !== '' && !ID_PATTERN.test(id)) return undefined
  return { id: id === '' ? undefined : id, event, data }
}

/**
 * Decodes a pub/sub message made by {@link encode}.
 *
 * @example
 * decode('1-0\nscore\n{"seq":1}') // { id: '1-0', event: 'score', data: '{"seq":1}' }
 */
export function decode (text: string): EngineMessage | undefined {
  const first = text.indexOf('\n')
  const second = first === -1 ? -1 : text.indexOf('\n', first + 1)
  if (second === -1) return undefined
  return message(text.slice(0, first), text.slice(first + 1, second), text.slice(second + 1))
}

/**
 * Stream entries as XRANGE returns them (`[id, [field, value, ...]]`), as messages.
 * Entries a channel could not have written (no id, other fields, a bad event name)
 * are skipped.
 *
 * @example
 * entries([['1-0', ['e', 'score', 'd', '{"seq":1}']]]) // [{ id: '1-0', event: 'score', data: '{"seq":1}' }]
 */
export function entries (reply: unknown): EngineMessage[] {
  const messages: EngineMessage[] = []
  if (!Array.isArray(reply)) return messages
  for (const entry of reply as unknown[]) {
    if (!Array.isArray(entry) || typeof entry[0] !== 'string' || !Array.isArray(entry[1])) continue
    const fields = entry[1] as unknown[]
    let event: unknown
    let data: unknown
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i] === 'e') event = fields[i + 1]
      else if (fields[i] === 'd') data = fields[i + 1]
    }
    const parsed = message(entry[0], event, data)
    if (parsed?.id !== undefined) messages.push(parsed)
  }
  return messages
}
