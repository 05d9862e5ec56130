/**
 * The test parser (test/helpers/parser.ts) against the examples of the WHATWG spec,
 * §9.2.5-9.2.6. Every other test trusts it to read the wire, so it is checked first,
 * including chunk splits inside a CRLF and inside a multi-byte UTF-8 character.
 */
import fc from 'fast-check'
import t from 'tap'
import { parseAll } from '../helpers/parser.js'

const bytes = (text: string): Buffer => Buffer.from(text, 'utf8')

t.test('spec example: several data lines join with LF', async (t) => {
  const parser = parseAll(bytes('data: YHOO\ndata: +2\ndata: 10\n\n'))
  t.same(parser.events, [{ type: 'message', data: 'YHOO\n+2\n10', lastEventId: '' }])
})

t.test('spec example: comments, ids, an id without value resets, one space stripped', async (t) => {
  const parser = parseAll(bytes(': test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n'))
  t.same(parser.events, [
    { type: 'message', data: 'first event', lastEventId: '1' },
    { type: 'message', data: 'second event', lastEventId: '' },
    { type: 'message', data: ' third event', lastEventId: '' }
  ])
  t.same(parser.comments, [' test stream'])
})

t.test('spec example: empty data dispatches, no data field does not, an unterminated event is dropped', async (t) => {
  const parser = parseAll(bytes('data\n\ndata\ndata\n\ndata:'))
  t.same(parser.events.map((event) => event.data), ['', '\n'])
  t.same(parseAll(bytes('event: x\n\nid: 3\n\n')).events, [], 'blocks without data dispatch nothing')
  t.equal(parseAll(bytes('id: 3\n\n')).lastEventId, '3', 'yet an id alone sets the last event id')
})

t.test('spec example: a space after the colon is optional', async (t) => {
  t.same(parseAll(bytes('data:test\n\ndata: test\n\n')).events.map((event) => event.data), ['test', 'test'])
})

t.test('CR, LF and CRLF all end a line; a BOM at the start is stripped', async (t) => {
  const parser = parseAll(bytes('\uFEFFevent: a\rdata: 1\r\ndata: 2\n\r\nevent: b\rdata: 3\r\r'))
  t.same(parser.events, [
    { type: 'a', data: '1\n2', lastEventId: '' },
    { type: 'b', data: '3', lastEventId: '' }
  ])
  t.same(parser.fields.map((field) => field.name), ['event', 'data', 'data', 'event', 'data'])
})

t.test('id with NUL is ignored, retry only takes ASCII digits, unknown fields are ignored', async (t) => {
  const parser = parseAll(bytes('id: a\0b\nretry: 10a\nretry: -1\nretry: 1.5\nretry: 250\nfoo: bar\ndata: x\n\n'))
  t.same(parser.events, [{ type: 'message', data: 'x', lastEventId: '' }])
  t.same(parser.retries, [250])
  t.equal(parser.retry, 250)
})

t.test('the result does not depend on where the bytes are split', async (t) => {
  const corpus = bytes('\uFEFFevent: é✓\r\ndata: 😀 a\r\ndata:\rid: ü\n\n: c\r\n\r\ndata: z\r\n\r\n')
  const whole = parseAll(corpus)
  t.equal(whole.events.length, 2)
  t.equal(whole.events[0].type, 'é✓')
  t.equal(whole.events[0].data, '😀 a\n')
  t.equal(whole.events[0].lastEventId, 'ü')
  // Every split point, one at a time: covers inside the CRLFs and inside each UTF-8 sequence.
  for (let cut = 1; cut < corpus.length; cut++) {
    const split = parseAll(corpus, [cut, corpus.length])
    if (JSON.stringify(split.events) !== JSON.stringify(whole.events)) {
      t.fail(`split at byte ${cut} changed the result`)
      return
    }
  }
  fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 20 }), (sizes) => {
    const split = parseAll(corpus, sizes)
    return JSON.stringify(split.events) === JSON.stringify(whole.events) &&
      JSON.stringify(split.comments) === JSON.stringify(whole.comments)
  }), { numRuns: 300 })
  t.pass('any chunking gives the same events and comments')
})
