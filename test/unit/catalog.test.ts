/**
 * Event catalogs (lib/catalog.ts): compiled once at definition, validation before
 * encoding with stable error codes, raw text events, frozen results, and JSON data
 * written by its schema (fast-json-stringify): what is not declared never reaches
 * the wire, and what does passes the schema.
 */
import { FormatRegistry, type TSchema } from '@sinclair/typebox'
import { EventSource } from 'eventsource'
import fc from 'fast-check'
import t from 'tap'
import { compiledEvent, eventValidator, parsePayload, serializePayload, type EventCatalog } from '../../lib/core/catalog.js'
import { createClient } from '../../lib/client.js'
import { defineEvents, Text, TEXT_KEYWORD, Type } from '../../lib/index.js'
import { buildApp, Inbox, streamRoute, thrown } from '../helpers/app.js'
import { openRawStream } from '../helpers/client.js'

function encodeMessage (catalog: EventCatalog, name: string, data: unknown): string {
  return serializePayload(compiledEvent(catalog, name), data)
}

const events = defineEvents({
  tick: Type.Object({ now: Type.String(), epochMs: Type.Integer() }),
  token: Text(),
  short: Text({ maxLength: 3 }),
  anything: Type.Unknown()
})

t.test('names in declaration order, schemas as given, all frozen', async (t) => {
  t.same(events.names, ['tick', 'token', 'short', 'anything'])
  t.equal(events.schemas.token[TEXT_KEYWORD], 'text')
  t.ok(Object.isFrozen(events), 'catalog frozen')
  t.ok(Object.isFrozen(events.names), 'names frozen')
  t.ok(Object.isFrozen(events.schemas), 'schemas frozen')
  t.ok(Object.isFrozen(compiledEvent(events, 'tick')), 'compiled event frozen')
})

t.test('each schema is compiled once, at definition', async (t) => {
  const first = compiledEvent(events, 'tick')
  encodeMessage(events, 'tick', { now: 'x', epochMs: 1 })
  t.equal(compiledEvent(events, 'tick'), first, 'the same compiled event on every lookup')
  t.equal(compiledEvent(events, 'tick').check, first.check, 'the same checker on every send')
  t.equal(first.isText, false)
  t.equal(compiledEvent(events, 'token').isText, true)
})

t.test('an invalid payload throws TYPED_SSE_INVALID_PAYLOAD with status 500', async (t) => {
  for (const [name, data] of [
    ['tick', { now: 1, epochMs: 1 }],
    ['tick', { now: 'x', epochMs: 1.5 }],
    ['tick', { now: 'x' }],
    ['tick', null],
    ['token', 42],
    ['token', undefined],
    ['short', 'four']
  ] as Array<[string, unknown]>) {
    const err = thrown(() => encodeMessage(events, name, data)) as Error & { code?: string, statusCode?: number }
    t.equal(err?.code, 'TYPED_SSE_INVALID_PAYLOAD', `${name} ${JSON.stringify(data)}`)
    t.equal(err?.statusCode, 500)
  }
})

t.test('a payload JSON cannot encode throws TYPED_SSE_INVALID_PAYLOAD', async (t) => {
  const circular: Record<string, unknown> = {}
  circular.self = circular
  for (const data of [1n, circular, undefined, () => 1, Symbol('s')]) {
    t.equal(thrown(() => encodeMessage(events, 'anything', data))?.code, 'TYPED_SSE_INVALID_PAYLOAD', typeof data)
  }
})

t.test('an event the catalog does not declare throws TYPED_SSE_UNKNOWN_EVENT', async (t) => {
  for (const name of ['tock', 'toString', '__proto__', 'constructor', '']) {
    t.equal(thrown(() => encodeMessage(events, name, {}))?.code, 'TYPED_SSE_UNKNOWN_EVENT', JSON.stringify(name))
  }
})

t.test('text events are written raw, JSON events as one JSON line', async (t) => {
  t.equal(serializePayload(compiledEvent(events, 'token'), 'say "hi"'), 'say "hi"')
  t.equal(serializePayload(compiledEvent(events, 'anything'), 'say "hi"'), '"say \\"hi\\""')
  t.equal(serializePayload(compiledEvent(events, 'anything'), 'a\nb\rc'), '"a\\nb\\rc"', 'JSON escapes line breaks')
})

t.test('parsePayload reads back what serializePayload wrote, and refuses what the schema refuses', async (t) => {
  const tick = compiledEvent(events, 'tick')
  t.same(parsePayload(tick, serializePayload(tick, { now: 'x', epochMs: 3 })), { now: 'x', epochMs: 3 })
  const token = compiledEvent(events, 'token')
  t.equal(parsePayload(token, serializePayload(token, 'a\nb')), 'a\nb')
  t.equal(parsePayload(tick, '{"now":1}'), undefined, 'wrong shape')
  t.equal(parsePayload(tick, 'not json'), undefined, 'not JSON')
  t.equal(parsePayload(compiledEvent(events, 'short'), 'four'), undefined, 'text over its maxLength')
})

t.test('reserved and malformed names are refused at definition', async (t) => {
  // From untyped code: typed code does not compile (test/types/catalog.types.ts).
  const untyped = defineEvents as (schemas: Record<string, TSchema>) => unknown
  for (const name of ['sse:missed', 'error', 'open']) t.equal(thrown(() => untyped({ [name]: Type.String() }))?.code, 'TYPED_SSE_INVALID_EVENT_NAME', name)
  t.equal(thrown(() => defineEvents({ 'a\nb': Type.String() }))?.code, 'TYPED_SSE_INVALID_EVENT_NAME')
  t.equal(thrown(() => defineEvents({ '': Type.String() }))?.code, 'TYPED_SSE_INVALID_EVENT_NAME')
  t.same(defineEvents({ 'sse-ok': Type.String(), 'a:b': Type.String() }).names, ['sse-ok', 'a:b'], 'others are fine')
})

t.test('a string format TypeBox has no checker for is refused at definition, not at every send', async (t) => {
  const err = thrown(() => defineEvents({ signup: Type.Object({ email: Type.String({ format: 'typed-sse-test-email' }) }) }))
  t.equal(err?.code, 'TYPED_SSE_UNKNOWN_FORMAT')
  FormatRegistry.Set('typed-sse-test-email', (value) => value.includes('@'))
  t.teardown(() => FormatRegistry.Delete('typed-sse-test-email'))
  const catalog = defineEvents({ signup: Type.Object({ email: Type.String({ format: 'typed-sse-test-email' }) }) })
  t.equal(encodeMessage(catalog, 'signup', { email: 'a@b' }), '{"email":"a@b"}', 'registered first: it checks')
  t.equal(thrown(() => encodeMessage(catalog, 'signup', { email: 'nope' }))?.code, 'TYPED_SSE_INVALID_PAYLOAD')
})

t.test('undeclared properties never reach the wire: send and publish, read by the spec parser', async (t) => {
  const clock = defineEvents({ tick: Type.Object({ now: Type.String(), epochMs: Type.Integer() }) })
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  const streams = streamRoute(app, '/time', clock)
  const ticks = app.sse.channel('ticks', clock)
  app.get('/channel', async (_request, reply) => { await ticks.subscribe(reply.sse(clock)) })
  await start()
  const { port } = app.server.address() as { port: number }

  const user = { now: '2026-01-01T00:00:00.000Z', epochMs: 1, passwordHash: 'secret-hash' }
  const direct = openRawStream(port, '/time')
  t.teardown(() => direct.close())
  const stream = await streams.next()
  stream.send('tick', user)
  const [sent] = await direct.waitForEvents(1)
  t.equal(sent.data, '{"now":"2026-01-01T00:00:00.000Z","epochMs":1}', 'send(): only what tick declares')

  const subscriber = openRawStream(port, '/channel')
  t.teardown(() => subscriber.close())
  await subscriber.ready
  await waitForSubscribers(() => ticks.size, 1)
  await ticks.publish('tick', user)
  const [published] = await subscriber.waitForEvents(1)
  t.equal(published.data, sent.data, 'publish(): the same text')
  t.notMatch(direct.parser.fields.concat(subscriber.parser.fields).map((field) => field.value).join('\n'), /secret-hash|passwordHash/)
})

/** Waits (bounded) until a channel has `count` subscribers. */
async function waitForSubscribers (size: () => number, count: number): Promise<void> {
  const deadline = Date.now() + 2000
  while (size() < count) {
    if (Date.now() > deadline) throw new Error(`channel: ${count} subscriber(s) not reached in 2000 ms`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

t.test('what the typed client receives passes the same schema (checked by eventValidator)', async (t) => {
  const profile = defineEvents({
    user: Type.Object({ name: Type.String(), address: Type.Object({ city: Type.String() }), tags: Type.Array(Type.Object({ label: Type.String() })) })
  })
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false }, fastify: { forceCloseConnections: true } })
  const streams = streamRoute(app, '/me', profile)
  const origin = await start()
  const client = createClient(`${origin}/me`, { catalog: profile, EventSource, validate: eventValidator(profile) })
  t.teardown(() => client.close())
  const received = new Inbox<unknown>()
  client.on('user', (user) => received.push(user))
  const stream = await streams.next()
  // A record from a database: more than the event declares (no excess-property check on a variable).
  const row = { name: 'ada', role: 'admin', address: { city: 'London', street: 'hidden' }, tags: [{ label: 'a', internal: true }] }
  stream.send('user', row)
  t.same(await received.next(), { name: 'ada', address: { city: 'London' }, tags: [{ label: 'a' }] }, 'nested undeclared properties are dropped too')
})

t.test('Date and toJSON values are written as the schema says', async (t) => {
  class Money {
    constructor (readonly cents: number) {}
    toJSON (): { amount: number, currency: string } { return { amount: this.cents / 100, currency: 'EUR' } }
  }
  const shop = defineEvents({
    order: Type.Object({ at: Type.Unknown(), total: Type.Object({ amount: Type.Number() }) }),
    note: Type.Object({ text: Type.String() }, { additionalProperties: true })
  })
  const order = compiledEvent(shop, 'order')
  // Check sees the value as given (Money has no `amount`), so declare what toJSON returns only
  // where the value itself matches: here the total is a plain object with a toJSON of its own.
  const total = { amount: 12.5, toJSON: () => ({ amount: 12.5, secret: 1 }) }
  t.equal(serializePayload(order, { at: new Date(0), total }), '{"at":"1970-01-01T00:00:00.000Z","total":{"amount":12.5}}',
    'a Date in an open value is its ISO string; toJSON() output is written by the schema (its undeclared key dropped)')
  t.equal(thrown(() => serializePayload(order, { at: 1, total: new Money(150) }))?.code, 'TYPED_SSE_INVALID_PAYLOAD',
    'a value the schema refuses as given is refused, whatever its toJSON() returns')
  t.equal(serializePayload(compiledEvent(shop, 'note'), { text: 'x', extra: new Date(0), money: new Money(1) }),
    '{"text":"x","extra":"1970-01-01T00:00:00.000Z","money":{"amount":0.01,"currency":"EUR"}}',
    'additionalProperties: true keeps extras, written as JSON.stringify writes them')
  const stamped = defineEvents({ stamp: Type.Object({ at: Type.String() }) })
  t.equal(thrown(() => serializePayload(compiledEvent(stamped, 'stamp'), { at: new Date(0) }))?.code, 'TYPED_SSE_INVALID_PAYLOAD',
    'a Date is not a string: send date.toISOString()')
})

t.test('open values JSON cannot hold are refused, the word "undefined" in a string is not', async (t) => {
  const open = defineEvents({
    bag: Type.Object({ meta: Type.Unknown(), list: Type.Array(Type.Any()) }),
    loose: Type.Object({ a: Type.String() }, { additionalProperties: true })
  })
  const bag = compiledEvent(open, 'bag')
  for (const meta of [() => 1, Symbol('s'), undefined]) {
    t.equal(thrown(() => serializePayload(bag, { meta, list: [] }))?.code, 'TYPED_SSE_INVALID_PAYLOAD', `meta: ${typeof meta}`)
  }
  t.equal(thrown(() => serializePayload(bag, { meta: 1, list: [undefined] }))?.code, 'TYPED_SSE_INVALID_PAYLOAD', 'undefined in an array')
  t.equal(serializePayload(bag, { meta: 'undefined', list: [':undefined', { undefined: 1 }] }), '{"meta":"undefined","list":[":undefined",{"undefined":1}]}')
  t.equal(serializePayload(compiledEvent(open, 'loose'), { a: 'x', f: () => 1, u: undefined }), '{"a":"x"}', 'extras JSON cannot hold are left out, as JSON.stringify does')
  t.equal(compiledEvent(open, 'bag').hasOpenValues, true)
  t.equal(compiledEvent(events, 'tick').hasOpenValues, false, 'a closed schema never pays for the guard')
})

t.test('unions: each member writes its own properties; the first member the value matches wins', async (t) => {
  const shapes = defineEvents({
    shape: Type.Union([
      Type.Object({ kind: Type.Literal('circle'), r: Type.Number() }),
      Type.Object({ kind: Type.Literal('rect'), w: Type.Number(), h: Type.Number() })
    ]),
    maybe: Type.Union([Type.String(), Type.Null()])
  })
  const shape = compiledEvent(shapes, 'shape')
  t.equal(serializePayload(shape, { kind: 'rect', w: 1, h: 2, r: 9 }), '{"kind":"rect","w":1,"h":2}')
  t.equal(serializePayload(shape, { kind: 'circle', r: 3, w: 9 }), '{"kind":"circle","r":3}')
  t.equal(serializePayload(compiledEvent(shapes, 'maybe'), null), 'null')
  t.equal(serializePayload(compiledEvent(shapes, 'maybe'), 'a"b'), '"a\\"b"')
})

t.test('a schema JSON cannot carry is refused at definition with TYPED_SSE_UNSERIALIZABLE_SCHEMA', async (t) => {
  for (const [label, schema] of [
    ['Type.Date()', Type.Date()],
    ['nested Type.Uint8Array()', Type.Object({ bytes: Type.Uint8Array() })],
    ['Type.BigInt()', Type.BigInt()],
    ['Type.Undefined()', Type.Undefined()]
  ] as Array<[string, TSchema]>) {
    t.equal(thrown(() => defineEvents({ bad: schema }))?.code, 'TYPED_SSE_UNSERIALIZABLE_SCHEMA', label)
  }
})

t.test('a custom string format is known to the serializer too (no warning, union member chosen by it)', async (t) => {
  FormatRegistry.Set('typed-sse-test-ticket', (value) => /^T-\d+$/.test(value))
  t.teardown(() => FormatRegistry.Delete('typed-sse-test-ticket'))
  const warnings: unknown[] = []
  const warn = console.warn
  console.warn = (...args: unknown[]) => { warnings.push(args) }
  let catalog
  try {
    catalog = defineEvents({
      ref: Type.Union([
        Type.Object({ ticket: Type.String({ format: 'typed-sse-test-ticket' }) }),
        Type.Object({ ticket: Type.String(), note: Type.String() })
      ])
    })
  } finally {
    console.warn = warn
  }
  t.same(warnings, [], 'Ajv did not warn of an unknown format')
  const ref = compiledEvent(catalog, 'ref')
  t.equal(serializePayload(ref, { ticket: 'free text', note: 'n' }), '{"ticket":"free text","note":"n"}', 'the format decides the member')
  t.equal(serializePayload(ref, { ticket: 'T-1', note: 'n' }), '{"ticket":"T-1"}')
})

// A schema with every kind fast-json-stringify writes differently: nested objects,
// optional keys, arrays, a tagged union, a record, open values, strings of any code unit.
const Item = Type.Object({
  name: Type.String(),
  count: Type.Integer(),
  price: Type.Number(),
  tags: Type.Array(Type.String()),
  note: Type.Optional(Type.String()),
  shape: Type.Union([
    Type.Object({ kind: Type.Literal('a'), size: Type.Integer() }),
    Type.Object({ kind: Type.Literal('b'), label: Type.Union([Type.String(), Type.Null()]) })
  ]),
  scores: Type.Record(Type.String(), Type.Number()),
  meta: Type.Unknown(),
  isOn: Type.Boolean()
})
const inventory = defineEvents({ item: Item })

const anyString = fc.string({ unit: 'binary', maxLength: 20 })
const finite = fc.double({ noNaN: true, noDefaultInfinity: true })
const extras = fc.dictionary(fc.string({ maxLength: 6 }).map((key) => `x${key}`), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 })
const withExtras = <T extends object>(arbitrary: fc.Arbitrary<T>): fc.Arbitrary<T> =>
  fc.tuple(arbitrary, extras).map(([value, extra]) => ({ ...extra, ...value }))
const itemArbitrary = withExtras(fc.record({
  name: anyString,
  count: fc.integer(),
  price: finite,
  tags: fc.array(anyString, { maxLength: 3 }),
  note: anyString,
  shape: fc.oneof(
    withExtras(fc.record({ kind: fc.constant('a' as const), size: fc.integer() })),
    withExtras(fc.record({ kind: fc.constant('b' as const), label: fc.option(anyString, { nil: null }) }))
  ),
  scores: fc.dictionary(anyString, finite, { maxKeys: 3 }),
  meta: fc.jsonValue({ maxDepth: 2 }),
  isOn: fc.boolean()
}, { requiredKeys: ['name', 'count', 'price', 'tags', 'shape', 'scores', 'meta', 'isOn'] }))

t.test('property: what is serialized is one line of JSON that parses back to a value passing the schema', async (t) => {
  const item = compiledEvent(inventory, 'item')
  fc.assert(fc.property(itemArbitrary, (value) => {
    const text = serializePayload(item, value)
    if (/[\r\n]/.test(text)) return false
    const parsed = JSON.parse(text) as Record<string, unknown>
    if (!item.check.Check(parsed)) return false
    if (Object.keys(parsed).some((key) => key.startsWith('x'))) return false // no undeclared key
    return parsed.name === value.name && parsePayload(item, text) !== undefined
  }), { numRuns: 300 })
  t.pass('300 random items')
})
