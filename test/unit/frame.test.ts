/**
 * The frame builder (lib/frame.ts): exact bytes for each field, and
 * property tests that every accepted input reads back exactly through the spec parser
 * and every input that could forge a field is refused with a coded error.
 */
import fc from 'fast-check'
import t from 'tap'
import { compiledEvent, serializePayload, type EventCatalog } from '../../lib/core/catalog.js'
import { commentBlock, dataField, eventByteLength, eventField, eventText, HEARTBEAT, idField, idValue, retryField, type EventId } from '../../lib/core/frame.js'
import { defineEvents, Text, Type } from '../../lib/index.js'
import { thrown } from '../helpers/app.js'
import { parseAll } from '../helpers/parser.js'

const catalog = defineEvents({ text: Text(), json: Type.Unknown() })

/** Strings full of what the grammar cares about: CR, LF, CRLF, colons, spaces, NUL, BOM. */
const unit = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.constantFrom('\r', '\n', '\r\n', '\n\r', ':', ' ', '\0', '\uFEFF', 'data: ', 'event: x', 'id: 1', 'retry: 1') }
)
const wireString = fc.string({ unit, maxLength: 40 })
const lineBreak = fc.constantFrom('\r', '\n', '\r\n')
/** A string with at least one CR or LF in it. */
const withLineBreak = fc.tuple(wireString, lineBreak, wireString).map(([a, b, c]) => a + b + c)
/** Any chunking of the encoded bytes, so splits inside a CRLF or a UTF-8 sequence are tried. */
const chunkSizes = fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 8 })

const lf = (text: string): string => text.replace(/\r\n|\r/g, '\n')

/** One event as a stream writes it: validated and serialized by the catalog, framed by frame.ts. */
function encodeMessage (events: EventCatalog, event: string, data: unknown, options: { id?: EventId, retry?: number } = {}): string {
  return eventText(event, serializePayload(compiledEvent(events, event), data), options.id, options.retry)
}

t.test('exact bytes of each field', async (t) => {
  t.equal(eventField('tick'), 'event: tick\n')
  t.equal(eventField(' padded'), 'event:  padded\n', 'one space is added so a leading space survives')
  t.equal(idField(7), 'id: 7\n')
  t.equal(idField(0), 'id: 0\n', 'id 0 is written')
  t.equal(idField(''), 'id: \n', "id '' is written (resets the client's last id)")
  t.equal(idValue(-0), '0')
  t.equal(retryField(0), 'retry: 0\n', 'retry 0 is written')
  t.equal(retryField(3000), 'retry: 3000\n')
  t.equal(dataField(''), 'data: \n', 'empty data is one empty data line')
  t.equal(dataField('a\r\nb\rc\nd'), 'data: a\ndata: b\ndata: c\ndata: d\n')
  t.equal(commentBlock('hi'), ': hi\n\n')
  t.equal(commentBlock('a\r\nb'), ': a\n: b\n\n')
  t.equal(commentBlock(''), HEARTBEAT)
  t.equal(HEARTBEAT, ':\n\n')
  t.equal(encodeMessage(catalog, 'json', { a: 1 }), 'event: json\ndata: {"a":1}\n\n')
  t.equal(encodeMessage(catalog, 'text', 'hi', { id: 7, retry: 0 }), 'event: text\nid: 7\nretry: 0\ndata: hi\n\n')
  t.equal(encodeMessage(catalog, 'text', '', { id: '' }), 'event: text\nid: \ndata: \n\n')
})

t.test('the output holds no CR, only LF', async (t) => {
  fc.assert(fc.property(wireString, wireString, (text, comment) =>
    !encodeMessage(catalog, 'text', text).includes('\r') && !commentBlock(comment).includes('\r')))
  t.pass('no CR in 100 random events and comments')
})

t.test('adversarial ids are refused with TYPED_SSE_INVALID_ID', async (t) => {
  for (const id of ['7\nevent: spoofed\ndata: x\n', 'a\rb', 'a\r\nb', '\n', 'a\0b', NaN, Infinity, -Infinity]) {
    t.equal(thrown(() => idField(id))?.code, 'TYPED_SSE_INVALID_ID', `id ${JSON.stringify(String(id))}`)
    t.equal(thrown(() => encodeMessage(catalog, 'text', 'x', { id }))?.code, 'TYPED_SSE_INVALID_ID')
  }
  for (const id of [null, {}, true, 1n, Object.create(null), Symbol('x'), 'a\ud800b', '\udc00'] as unknown[]) {
    t.equal(thrown(() => idField(id as string))?.code, 'TYPED_SSE_INVALID_ID', `id of type ${typeof id}`)
  }
})

t.test('retry other than a non-negative integer is refused with TYPED_SSE_INVALID_RETRY', async (t) => {
  for (const ms of [-1, 1.5, NaN, Infinity, -0.5, 2 ** 53, '5' as unknown as number, Object.create(null)]) {
    t.equal(thrown(() => retryField(ms))?.code, 'TYPED_SSE_INVALID_RETRY', `retry ${typeof ms === 'object' ? 'object' : String(ms)}`)
    t.equal(thrown(() => encodeMessage(catalog, 'text', 'x', { retry: ms }))?.code, 'TYPED_SSE_INVALID_RETRY')
  }
})

t.test('event names that could forge a field are refused with TYPED_SSE_INVALID_EVENT_NAME', async (t) => {
  for (const name of ['', 'a\nb', 'a\rb', 'tick\r\ndata: x', 'sse:missed', 'sse:anything']) {
    t.equal(thrown(() => eventField(name))?.code, 'TYPED_SSE_INVALID_EVENT_NAME', `name ${JSON.stringify(name)}`)
    t.equal(thrown(() => defineEvents({ [name]: Type.String() }))?.code, 'TYPED_SSE_INVALID_EVENT_NAME')
  }
})

t.test('a lone CR in text data does not forge a field', async (t) => {
  const parser = parseAll(Buffer.from(encodeMessage(catalog, 'text', 'a\revent: spoofed\rid: 9\rdata: x')))
  t.same(parser.events, [{ type: 'text', data: 'a\nevent: spoofed\nid: 9\ndata: x', lastEventId: '' }])
  t.same(new Set(parser.fields.map((field) => field.name)), new Set(['event', 'data']))
  t.equal(parser.fields.filter((field) => field.name === 'event').length, 1, 'one event field')
})

t.test('property: any text round-trips (line breaks arrive as LF)', async (t) => {
  fc.assert(fc.property(wireString, chunkSizes, (text, sizes) => {
    const parser = parseAll(Buffer.from(encodeMessage(catalog, 'text', text)), sizes)
    return parser.events.length === 1 && parser.events[0].type === 'text' && parser.events[0].data === lf(text) &&
      parser.fields.every((field) => field.name === 'event' || field.name === 'data')
  }), { numRuns: 500 })
  t.pass('500 random texts, randomly chunked')
})

t.test('property: any JSON payload round-trips exactly', async (t) => {
  const anyUnit = fc.oneof(fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }), fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code)))
  // JSON has no -0 (it reads back as 0), so values are taken as JSON holds them.
  const json = fc.jsonValue({ stringUnit: anyUnit }).map((value) => JSON.parse(JSON.stringify(value)) as unknown)
  fc.assert(fc.property(json, chunkSizes, (value, sizes) => {
    const parser = parseAll(Buffer.from(encodeMessage(catalog, 'json', value)), sizes)
    return parser.events.length === 1 && parser.fields.length === 2 && fc.stringify(JSON.parse(parser.events[0].data)) === fc.stringify(value)
  }), { numRuns: 500 })
  t.pass('500 random JSON values (lone surrogates included), randomly chunked')
})

t.test('property: any valid id round-trips', async (t) => {
  const id = fc.oneof(
    wireString.filter((text) => !/[\r\n\0]/.test(text) && text.isWellFormed()),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.integer()
  )
  fc.assert(fc.property(id, chunkSizes, (value, sizes) => {
    const parser = parseAll(Buffer.from(encodeMessage(catalog, 'text', 'x', { id: value })), sizes)
    return parser.events.length === 1 && parser.events[0].lastEventId === String(value)
  }), { numRuns: 500 })
  t.pass('500 random ids')
})

t.test('property: any valid event name round-trips', async (t) => {
  const name = wireString.filter((text) => text !== '' && !/[\r\n]/.test(text) && !text.startsWith('sse:') && text.isWellFormed())
  fc.assert(fc.property(name, chunkSizes, (value, sizes) => {
    const events = defineEvents({ [value]: Type.Literal(1) })
    const parser = parseAll(Buffer.from(encodeMessage(events, value, 1)), sizes)
    return parser.events.length === 1 && parser.events[0].type === value && parser.events[0].data === '1'
  }), { numRuns: 300 })
  t.pass('300 random event names')
})

t.test('property: any id or event name with CR or LF (or NUL for ids) is refused', async (t) => {
  fc.assert(fc.property(withLineBreak, (bad) =>
    thrown(() => idField(bad))?.code === 'TYPED_SSE_INVALID_ID' &&
    thrown(() => defineEvents({ [bad]: Type.String() }))?.code === 'TYPED_SSE_INVALID_EVENT_NAME'))
  fc.assert(fc.property(wireString, wireString, (a, b) => thrown(() => idField(`${a}\0${b}`))?.code === 'TYPED_SSE_INVALID_ID'))
  t.pass('100 random bad ids and names of each kind')
})

t.test('property: comments never produce a field or an event', async (t) => {
  fc.assert(fc.property(wireString, chunkSizes, (text, sizes) => {
    const parser = parseAll(Buffer.from(commentBlock(text)), sizes)
    return parser.events.length === 0 && parser.fields.length === 0 &&
      parser.comments.join('\n') === (text === '' ? '' : ' ' + lf(text).split('\n').join('\n '))
  }), { numRuns: 300 })
  t.pass('300 random comments')
})

t.test('eventByteLength counts the bytes eventText writes, without building the frame', async (t) => {
  const text = fc.array(fc.oneof(fc.string({ unit: 'grapheme' }), fc.constantFrom('\r\n', '\r', '\n', 'é', '🎉', '')), { maxLength: 12 }).map((parts) => parts.join(''))
  fc.assert(fc.property(fc.string({ unit: 'grapheme', minLength: 1 }), text, (event, data) => {
    return eventByteLength(event, data) === Buffer.byteLength(eventText(event, data))
  }), { numRuns: 2000 })
  t.equal(eventByteLength('tick', '{"n":1}'), 27, 'a JSON event')
  t.equal(eventByteLength('line', 'a\r\nb\rc'), Buffer.byteLength('event: line\ndata: a\ndata: b\ndata: c\n\n'), 'CRLF and CR end lines as LF does')
})
