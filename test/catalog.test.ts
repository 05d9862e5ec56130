/**
 * Event catalogs (lib/catalog.ts): compiled once at definition, validation before
 * encoding with stable error codes, raw text events, frozen results.
 */
import { FormatRegistry } from '@sinclair/typebox'
import t from 'tap'
import { compiledEvent, parsePayload, serializePayload, type EventCatalog } from '../lib/catalog.js'
import { defineEvents, Text, TEXT_KEYWORD, Type } from '../lib/index.js'
import { thrown } from './helpers/app.js'

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
  t.equal(thrown(() => defineEvents({ 'sse:missed': Type.String() }))?.code, 'TYPED_SSE_INVALID_EVENT_NAME')
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
