/**
 * A live stream (lib/stream.ts) over a real socket: send, comment, retry, ids and
 * validation, each read back from the raw bytes by the spec parser. Also the
 * round-trip properties of the encoder, this time through the wire.
 */
import fc from 'fast-check'
import t from 'tap'
import { defineEvents, Text, Type, type SseStream } from '../../lib/index.js'
import { buildApp, streamRoute, thrown, type Teardown } from '../helpers/app.js'
import { openStream, type StreamClient } from '../helpers/client.js'

const events = defineEvents({
  tick: Type.Object({ now: Type.String(), epochMs: Type.Integer() }),
  token: Text(),
  any: Type.Unknown()
})
type Events = typeof events

/** One app, one open stream, one client, closed in teardown. */
async function openOne (t: Teardown): Promise<{ stream: SseStream<Events>, client: StreamClient }> {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  const streams = streamRoute(app, '/s', events)
  const origin = await start()
  const client = await openStream(t, `${origin}/s`)
  return { stream: await streams.next(), client }
}

const wireBytes = (client: StreamClient): string => Buffer.concat(client.chunks).toString('utf8')

t.test('send writes a typed JSON event with its id', async (t) => {
  const { stream, client } = await openOne(t)
  t.equal(stream.isOpen, true)
  t.equal(stream.lastEventId, undefined, 'no Last-Event-ID sent')
  t.equal(stream.send('tick', { now: 'noon', epochMs: 12 }, { id: 'a1' }), true, 'true: written at once')
  const [event] = await client.events(1)
  t.same(event, { type: 'tick', data: '{"now":"noon","epochMs":12}', lastEventId: 'a1' })
  t.equal(wireBytes(client), 'event: tick\nid: a1\ndata: {"now":"noon","epochMs":12}\n\n', 'exact bytes')
})

t.test('text events arrive exactly, line breaks as LF', async (t) => {
  const { stream, client } = await openOne(t)
  stream.send('token', 'Hel')
  stream.send('token', 'lo, "world"')
  stream.send('token', 'a\r\nb\rc\nd')
  stream.send('token', '')
  stream.send('token', ' leading space, trailing space ')
  const received = await client.events(5)
  t.same(received.map((event) => event.data), ['Hel', 'lo, "world"', 'a\nb\nc\nd', '', ' leading space, trailing space '])
})

t.test('id 0, id \'\' and retry 0 are written', async (t) => {
  const { stream, client } = await openOne(t)
  stream.send('token', 'a', { id: 0 })
  stream.send('token', 'b', { id: '' })
  stream.send('token', 'c', { id: 5, retry: 0 })
  const received = await client.events(3)
  t.same(received.map((event) => event.lastEventId), ['0', '', '5'])
  t.equal(client.parser.retry, 0)
  t.match(wireBytes(client), /^event: token\nid: 0\ndata: a\n\nevent: token\nid: \ndata: b\n\n/)
})

t.test('comment and retry', async (t) => {
  const { stream, client } = await openOne(t)
  t.equal(stream.comment('one\ntwo\r\nthree'), true)
  t.equal(stream.comment(), true)
  t.equal(stream.retry(0), true)
  t.equal(stream.retry(4000), true)
  stream.send('token', 'end')
  await client.events(1)
  t.same(client.parser.comments, [' one', ' two', ' three', ''])
  t.same(client.parser.retries, [0, 4000])
  t.same(client.parser.events, [{ type: 'token', data: 'end', lastEventId: '' }], 'comments and retry dispatch nothing')
})

t.test('invalid input throws a coded error, writes nothing, and the stream stays usable', async (t) => {
  const { stream, client } = await openOne(t)
  const send = stream.send.bind(stream) as (event: string, data: unknown, options?: object) => boolean
  const cases: Array<[string, () => unknown]> = [
    ['TYPED_SSE_INVALID_PAYLOAD', () => send('tick', { now: 'x', epochMs: 'y' })],
    ['TYPED_SSE_INVALID_PAYLOAD', () => send('token', 7)],
    ['TYPED_SSE_UNKNOWN_EVENT', () => send('tock', {})],
    ['TYPED_SSE_INVALID_ID', () => send('token', 'x', { id: '7\nevent: spoofed\ndata: x\n' })],
    ['TYPED_SSE_INVALID_ID', () => send('token', 'x', { id: 'a\0' })],
    ['TYPED_SSE_INVALID_ID', () => send('token', 'x', { id: NaN })],
    ['TYPED_SSE_INVALID_RETRY', () => send('token', 'x', { retry: -1 })],
    ['TYPED_SSE_INVALID_RETRY', () => send('token', 'x', { retry: 1.5 })],
    ['TYPED_SSE_INVALID_RETRY', () => send('token', 'x', { retry: NaN })],
    ['TYPED_SSE_INVALID_RETRY', () => stream.retry(-1)],
    ['TYPED_SSE_INVALID_RETRY', () => stream.retry(1.5)],
    ['TYPED_SSE_INVALID_RETRY', () => stream.retry(NaN)]
  ]
  for (const [code, act] of cases) t.equal(thrown(act)?.code, code, code)
  t.equal(stream.isOpen, true, 'still open')
  stream.send('token', 'after', { id: 'ok' })
  const [event] = await client.events(1)
  t.same(event, { type: 'token', data: 'after', lastEventId: 'ok' })
  t.equal(wireBytes(client), 'event: token\nid: ok\ndata: after\n\n', 'nothing of the refused sends reached the wire')
})

t.test('property, through the wire: any text round-trips, line breaks as LF', async (t) => {
  const { stream, client } = await openOne(t)
  let count = 0
  await fc.assert(fc.asyncProperty(fc.string({ unit: 'binary', maxLength: 60 }), fc.constantFrom('', '\r', '\n', '\r\n'), async (text, lineBreak) => {
    const sent = lineBreak + text + lineBreak + text
    stream.send('token', sent)
    const received = (await client.events(++count)).at(-1)
    return received?.type === 'token' && received.data === sent.replace(/\r\n|\r/g, '\n')
  }), { numRuns: 150 })
  t.equal(client.parser.fields.filter((field) => field.name !== 'event' && field.name !== 'data').length, 0, 'no other field')
})

t.test('property, through the wire: any JSON payload round-trips exactly', async (t) => {
  const { stream, client } = await openOne(t)
  let count = 0
  // JSON has no -0 (it reads back as 0), so values are taken as JSON holds them.
  const json = fc.jsonValue({ stringUnit: 'binary' }).map((value) => JSON.parse(JSON.stringify(value)) as unknown)
  await fc.assert(fc.asyncProperty(json, async (value) => {
    stream.send('any', value)
    const received = (await client.events(++count)).at(-1)
    return received !== undefined && fc.stringify(JSON.parse(received.data)) === fc.stringify(value)
  }), { numRuns: 150 })
  t.equal(client.parser.events.length, count, 'one event per send')
})

t.test('property, through the wire: any valid id round-trips; ids with CR, LF or NUL are refused', async (t) => {
  const { stream, client } = await openOne(t)
  let count = 0
  const validId = fc.oneof(fc.string({ unit: 'binary', maxLength: 30 }).filter((id) => !/[\r\n\0]/.test(id)), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }))
  const badId = fc.tuple(fc.string({ maxLength: 10 }), fc.constantFrom('\r', '\n', '\r\n', '\0'), fc.string({ maxLength: 10 })).map((parts) => parts.join(''))
  await fc.assert(fc.asyncProperty(validId, badId, async (id, bad) => {
    if (thrown(() => stream.send('token', 'x', { id: bad }))?.code !== 'TYPED_SSE_INVALID_ID') return false
    stream.send('token', 'x', { id })
    const received = (await client.events(++count)).at(-1)
    return received?.lastEventId === String(id)
  }), { numRuns: 150 })
  t.equal(client.parser.events.length, count, 'the refused ids wrote nothing')
})

t.test('any valid event name round-trips through the wire', async (t) => {
  const names = fc.sample(fc.string({ unit: 'binary', minLength: 1, maxLength: 20 })
    .filter((name) => !/[\r\n]/.test(name) && !name.startsWith('sse:')), { numRuns: 100, seed: 42 })
  const unique = [...new Set(names)]
  const many = defineEvents(Object.fromEntries(unique.map((name) => [name, Type.Integer()])))
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  const streams = streamRoute(app, '/s', many)
  const origin = await start()
  const client = await openStream(t, `${origin}/s`)
  const stream = await streams.next()
  unique.forEach((name, index) => stream.send(name, index))
  const received = await client.events(unique.length)
  t.same(received.map((event) => event.type), unique)
  t.same(received.map((event) => Number(event.data)), unique.map((_name, index) => index))
})
