/**
 * Keyed state, snapshots, coalescing and presence on the in-memory engine: two app
 * instances sharing one engine (test/helpers/state.ts has the scenarios; the Redis
 * and Cluster runs are in test/state-redis.test.ts), plus the option checks.
 */
import { Registry } from 'prom-client'
import t from 'tap'
import { defineEvents, memoryEngine, Type } from '../../lib/index.js'
import { buildApp, waitUntil } from '../helpers/app.js'
import { openRawStream, openStream } from '../helpers/client.js'
import { prices, stateScenarios } from '../helpers/state.js'

const shared = memoryEngine()
stateScenarios(t, () => shared)

t.test('state and presence options are checked when the channel is made', async (t) => {
  const { app, start } = await buildApp(t)
  t.throws(() => app.sse.channel('a', prices, { state: { price: (d) => d.symbol } }), { code: 'TYPED_SSE_INVALID_OPTION' }, 'state needs history')
  t.throws(() => app.sse.channel('b', prices, { history: true, state: { nope: () => 'x' } as any }), { code: 'TYPED_SSE_INVALID_OPTION' }, 'an event the catalog lacks')
  t.throws(() => app.sse.channel('c', prices, { history: true, maxKeys: 5 }), { code: 'TYPED_SSE_INVALID_OPTION' }, 'maxKeys without state')
  t.throws(() => app.sse.channel('d', prices, { history: true, state: { price: (d) => d.symbol }, maxKeys: 0 }), { code: 'TYPED_SSE_INVALID_OPTION' }, 'maxKeys below 1')
  t.throws(() => app.sse.channel('e', prices, { presence: { info: Type.String(), events: 'yes' as any } }), { code: 'TYPED_SSE_INVALID_OPTION' }, 'presence.events not a boolean')
  const plain = app.sse.channel('f', prices, { history: true })
  t.throws(() => plain.remove('x'), { code: 'TYPED_SSE_INVALID_OPTION' }, 'remove() on a channel without state')
  await t.rejects(plain.state(), { code: 'TYPED_SSE_INVALID_OPTION' }, 'state() on a channel without state')
  await t.rejects(plain.presence(), { code: 'TYPED_SSE_INVALID_OPTION' }, 'presence() on a channel without presence')
  const keyed = app.sse.channel('g', prices, { history: true, state: { price: (d) => d.symbol } })
  t.throws(() => app.sse.channel('g', prices, { history: true }), { code: 'TYPED_SSE_CHANNEL_CONFLICT' }, 'asked again without state: a conflict')
  t.equal(app.sse.channel('g', prices, { history: true, state: { price: (d) => d.symbol } }), keyed, 'asked again alike: the same channel')
  const chat = defineEvents({ chat: Type.String() })
  const room = app.sse.channel('h', chat, { presence: { info: Type.Object({ name: Type.String() }) } })
  const codes: Array<string | undefined> = []
  app.get('/h', (_request, reply) => {
    const stream = reply.sse(chat)
    for (const presence of [{ id: 'x', info: { name: 1 } }, { id: '', info: { name: 'x' } }, { id: 'x'.repeat(300), info: { name: 'x' } }]) {
      try {
        void room.subscribe(stream, { presence: presence as any })
      } catch (err) {
        codes.push((err as { code?: string }).code)
      }
    }
    try {
      void keyed.subscribe(stream as any, { presence: { id: 'x', info: {} } as any })
    } catch (err) {
      codes.push((err as { code?: string }).code)
    }
    stream.close()
  })
  const origin = await start()
  await (await openStream(t, `${origin}/h`)).ended
  t.same(codes, ['TYPED_SSE_INVALID_PAYLOAD', 'TYPED_SSE_INVALID_OPTION', 'TYPED_SSE_INVALID_OPTION', 'TYPED_SSE_INVALID_OPTION'],
    'an info not matching its schema, an empty or too long id, presence on a channel without it: refused with their codes')
  t.equal(room.size, 0, 'and nothing subscribed')
})

t.test("the metrics count coalesced events: sse_events_dropped_total{reason=\"coalesced\"}", async (t) => {
  const registry = new Registry()
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, metrics: { registry } } })
  const channel = app.sse.channel('prices', prices, { history: true, state: { price: (d) => d.symbol } })
  app.get('/slow', async (_request, reply) => { await channel.subscribe(reply.sse(prices, { queuePolicy: 'coalesce' })) })
  const origin = await start()
  const reader = openRawStream(Number(new URL(origin).port), '/slow', { paused: true })
  t.teardown(() => reader.close())
  await waitUntil(() => channel.size === 1, 10_000, 'subscribed')
  const pad = 'x'.repeat(2000)
  for (let seq = 0; seq < 3000; seq++) await channel.publish('price', { symbol: `K${seq % 3}`, seq, pad })
  const coalesced = app.sse.stats().coalescedEvents
  t.ok(coalesced > 0, `coalesced ${coalesced}`)
  const text = await registry.getSingleMetricAsString('sse_events_dropped_total')
  t.match(text, new RegExp(`sse_events_dropped_total\\{reason="coalesced"\\} ${coalesced}$`, 'm'), 'the metric says as many as stats()')
})
