/**
 * The client's parser (lib/client/parser.ts) against the WHATWG examples (§9.2.5-9.2.6)
 * and, on random streams cut at random places, against the independent spec parser
 * of the tests (test/helpers/parser.ts, itself checked by parser.test.ts); then its
 * bound on an event's bytes.
 */
import fc from 'fast-check'
import t from 'tap'
import { EventStreamParser, type StreamEvent } from '../../lib/client/parser.js'
import { parseAll } from '../helpers/parser.js'

const bytes = (text: string): Buffer => Buffer.from(text, 'utf8')

interface Parsed {
  events: StreamEvent[]
  retries: number[]
  lastEventId: string
}

/** Feeds `input` to the client parser in the given chunk sizes (cycled). */
function clientParse (input: Uint8Array, chunkSizes: readonly number[] = [input.length || 1], maxEventBytes?: number): Parsed {
  const events: StreamEvent[] = []
  const retries: number[] = []
  const parser = new EventStreamParser({ onEvent: (event) => events.push(event), onRetry: (ms) => retries.push(ms), maxEventBytes })
  let offset = 0
  for (let i = 0; offset < input.length; i++) {
    const size = Math.max(1, chunkSizes[i % chunkSizes.length])
    parser.push(input.subarray(offset, offset + size))
    offset += size
  }
  return { events, retries, lastEventId: parser.lastEventId }
}

/** The spec parser's view of the same input, in the same shape. */
function specParse (input: Uint8Array, chunkSizes?: readonly number[]): Parsed {
  const parser = parseAll(input, chunkSizes)
  return { events: parser.events, retries: parser.retries, lastEventId: parser.lastEventId }
}

t.test('spec examples (§9.2.6)', async (t) => {
  t.same(clientParse(bytes('data: YHOO\ndata: +2\ndata: 10\n\n')).events, [{ type: 'message', data: 'YHOO\n+2\n10', lastEventId: '' }])
  t.same(clientParse(bytes(': test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n')).events, [
    { type: 'message', data: 'first event', lastEventId: '1' },
    { type: 'message', data: 'second event', lastEventId: '' },
    { type: 'message', data: ' third event', lastEventId: '' }
  ], 'comments skipped, an empty id resets, one space stripped')
  t.same(clientParse(bytes('data\n\ndata\ndata\n\ndata:')).events.map((event) => event.data), ['', '\n'],
    'empty data dispatches; an unterminated event does not')
  t.same(clientParse(bytes('event: x\n\nid: 3\n\n')).events, [], 'blocks without data dispatch nothing')
  t.equal(clientParse(bytes('id: 3\n\n')).lastEventId, '3', 'yet an id alone sets the last event id')
  t.same(clientParse(bytes('data:test\n\ndata: test\n\n')).events.map((event) => event.data), ['test', 'test'])
})

t.test('CR, LF and CRLF end lines, also split across chunks; only a leading BOM is dropped', async (t) => {
  const input = bytes('\uFEFFevent: a\rdata: 1\r\ndata: 2\n\r\nevent: b\rdata: \uFEFF3\r\r')
  const expected = [{ type: 'a', data: '1\n2', lastEventId: '' }, { type: 'b', data: '\uFEFF3', lastEventId: '' }]
  for (let cut = 1; cut < input.length; cut++) {
    const events = clientParse(input, [cut, input.length]).events
    if (JSON.stringify(events) !== JSON.stringify(expected)) {
      t.fail(`split at byte ${cut}: ${JSON.stringify(events)}`)
      return
    }
  }
  t.same(clientParse(input, [1]).events, expected, 'one byte at a time: the BOM split over three chunks is still dropped')
})

t.test('a BOM at the start of a later line is not dropped: that line names an unknown field and is ignored', async (t) => {
  // Only the stream's first line may start with a BOM the parser drops (§9.2.6); here the
  // second block's only line is "\uFEFFdata: 2", whose field name is not "data".
  const input = bytes('\uFEFFdata: 1\n\n\uFEFFdata: 2\n\ndata: 3\n\uFEFFdata: 4\n\n')
  for (const chunks of [[input.length], [1], [4, 7]]) {
    t.same(clientParse(input, chunks).events.map((event) => event.data), ['1', '3'], `chunks of ${chunks.join(', ')}`)
  }
  t.same(specParse(input).events.map((event) => event.data), ['1', '3'], 'as the spec parser reads it')
})

t.test('an id with NUL is ignored; retry takes ASCII digits only; unknown fields are ignored', async (t) => {
  const parsed = clientParse(bytes('id: 1\n\nid: a\0b\nretry: 10a\nretry: -1\nretry: 1.5\nretry: 250\nfoo: bar\ndata: x\n\n'))
  t.same(parsed.events, [{ type: 'message', data: 'x', lastEventId: '1' }], 'the NUL id left the previous one')
  t.same(parsed.retries, [250])
})

t.test('the last event id carries over to the next connection, as browsers do', async (t) => {
  const events: StreamEvent[] = []
  const parser = new EventStreamParser({ lastEventId: '7', onEvent: (event) => events.push(event) })
  parser.push(bytes('data: a\n\n'))
  t.same(events, [{ type: 'message', data: 'a', lastEventId: '7' }])
})

/** Stream text made of the pieces the spec cares about, including broken ones. */
const streamText = fc.array(fc.oneof(
  fc.constantFrom('data', 'data:', 'data: ', 'event: ', 'id: ', 'id', 'retry: ', ':', 'x: '),
  fc.constantFrom('\n', '\r', '\r\n', '\n\n', '\r\n\r\n', '\uFEFF', '\0', 'é', '😀', '12', ' '),
  fc.string({ maxLength: 6 })
), { maxLength: 40 }).map((parts) => parts.join(''))

t.test('any stream, cut anywhere: the same events, retries and last id as the spec parser', async (t) => {
  fc.assert(fc.property(streamText, fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 12 }), (text, sizes) => {
    const input = bytes(text)
    // The spec parser flushes at end(): both see only complete lines here.
    const whole = specParse(input)
    const client = clientParse(input, sizes)
    return JSON.stringify(client) === JSON.stringify(whole)
  }), { numRuns: 500 })
  t.pass('500 random streams and cuts agree')
})

t.test('maxEventBytes: one endless line is refused with a code, across chunks', async (t) => {
  const line = bytes('data: ' + 'x'.repeat(5000))
  t.throws(() => clientParse(line, [100], 4096), { code: 'TYPED_SSE_CLIENT_EVENT_TOO_LARGE' })
  const manyLines = bytes(('data: ' + 'x'.repeat(100) + '\n').repeat(50))
  t.throws(() => clientParse(manyLines, [64], 4096), { code: 'TYPED_SSE_CLIENT_EVENT_TOO_LARGE' }, 'the lines of one event add up')
  const manyEvents = bytes(('data: ' + 'x'.repeat(100) + '\n\n').repeat(100))
  t.equal(clientParse(manyEvents, [64], 4096).events.length, 100, 'separate events are each within the bound')
  // 'data: ' and 2045 two-byte characters: 4096 bytes exactly; one character more is too many.
  t.equal(clientParse(bytes('data: ' + 'é'.repeat(2045) + '\n\n'), [7], 4096).events.length, 1, 'exactly the bound passes')
  t.throws(() => clientParse(bytes('data: ' + 'é'.repeat(2046) + '\n\n'), [7], 4096), { code: 'TYPED_SSE_CLIENT_EVENT_TOO_LARGE' },
    'counted in UTF-8 bytes, not characters')
})
