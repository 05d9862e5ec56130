/**
 * Broadcast channels: one publish reaches every subscriber exactly once, in order,
 * as the same bytes; filters, several channels per stream, detach on close, stats.
 */
import t from 'tap'
import { kWrite } from '../../lib/core/symbols.js'
import { defineEvents, Text, Type } from '../../lib/index.js'
import { buildApp, thrown, waitUntil } from '../helpers/app.js'
import { openStream, type StreamClient } from '../helpers/client.js'

const scores = defineEvents({
  score: Type.Object({ match: Type.String(), home: Type.Integer(), away: Type.Integer(), seq: Type.Integer() }),
  note: Text()
})
const chat = defineEvents({ line: Type.Object({ from: Type.String(), text: Type.String() }) })

async function openMany (t: Parameters<typeof openStream>[0], url: string, count: number): Promise<StreamClient[]> {
  const clients: StreamClient[] = []
  // Batches keep the listen backlog from overflowing.
  for (let i = 0; i < count; i += 100) {
    clients.push(...await Promise.all(Array.from({ length: Math.min(100, count - i) }, async () => await openStream(t, url))))
  }
  return clients
}

t.test('1000 subscribers each receive every one of 200 events exactly once, in order', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  const channel = app.sse.channel('scores', scores)
  app.get('/scores', (_request, reply) => { void channel.subscribe(reply.sse(scores)) })
  const origin = await start()
  const clients = await openMany(t, `${origin}/scores`, 1000)
  await waitUntil(() => channel.size === 1000, 5000, 'all subscribed')

  for (let seq = 0; seq < 200; seq++) {
    await channel.publish('score', { match: 'AUS-NZL', home: seq % 7, away: seq % 5, seq })
    // Yield now and then so sockets flush, as a live server would between publishes.
    if (seq % 20 === 19) await new Promise((resolve) => setImmediate(resolve))
  }
  await Promise.all(clients.map(async (client) => await client.events(200, 15_000)))

  let inOrder = 0
  for (const client of clients) {
    const seqs = client.parser.events.map((event) => (JSON.parse(event.data) as { seq: number }).seq)
    if (client.parser.events.length === 200 && seqs.every((seq, i) => seq === i) &&
      client.parser.events.every((event) => event.type === 'score')) inOrder++
  }
  t.equal(inOrder, 1000, 'every client got 200 score events, exactly once, in order')
  const stats = app.sse.stats()
  t.equal(stats.channels.scores.published, 200)
  t.equal(stats.channels.scores.delivered, 200)
  t.equal(stats.eventsSent, 200 * 1000, 'one write per subscriber per event')
})

t.test('every subscriber gets the very same bytes (encoded once per publish)', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  const channel = app.sse.channel('notes', scores)
  const frames: Buffer[] = []
  app.get('/notes', (_request, reply) => {
    const stream = reply.sse(scores)
    const write = stream[kWrite].bind(stream)
    // Record what each stream is handed, to compare identities.
    stream[kWrite] = (frame: Buffer) => { frames.push(frame); return write(frame) }
    void channel.subscribe(stream)
  })
  const origin = await start()
  const clients = await Promise.all([1, 2, 3].map(async () => await openStream(t, `${origin}/notes`)))
  await waitUntil(() => channel.size === 3)
  await channel.publish('note', 'line one\nline two')
  const received = await Promise.all(clients.map(async (client) => await client.events(1)))
  t.equal(frames.length, 3)
  t.ok(frames[1] === frames[0] && frames[2] === frames[0], 'one Buffer object shared by all subscribers')
  for (const [event] of received) t.same(event, { type: 'note', data: 'line one\nline two', lastEventId: '' })
})

t.test('a filter delivers only matching events, without re-encoding', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  const channel = app.sse.channel('scores', scores)
  app.get<{ Querystring: { match: string } }>('/match', (request, reply) => {
    void channel.subscribe(reply.sse(scores), {
      filter: (message) => message.event === 'score' && message.data.match === request.query.match
    })
  })
  const origin = await start()
  const aus = await openStream(t, `${origin}/match?match=AUS-NZL`)
  const fra = await openStream(t, `${origin}/match?match=FRA-ITA`)
  await waitUntil(() => channel.size === 2)
  await channel.publish('score', { match: 'AUS-NZL', home: 1, away: 0, seq: 1 })
  await channel.publish('score', { match: 'FRA-ITA', home: 0, away: 1, seq: 2 })
  await channel.publish('note', 'half time')
  await channel.publish('score', { match: 'AUS-NZL', home: 2, away: 0, seq: 3 })
  const ausEvents = await aus.events(2)
  const fraEvents = await fra.events(1)
  t.same(ausEvents.map((event) => JSON.parse(event.data).seq), [1, 3])
  t.same(fraEvents.map((event) => JSON.parse(event.data).seq), [2])
  t.equal(aus.parser.events.length, 2, 'nothing else reached AUS')
  t.equal(fra.parser.events.length, 1, 'nothing else reached FRA')
})

t.test('one stream subscribed to two channels gets both; closing detaches it from both', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  const both = defineEvents({ ...scores.schemas, ...chat.schemas })
  const scoreChannel = app.sse.channel('scores', scores)
  const chatChannel = app.sse.channel('chat', chat)
  app.get('/both', (_request, reply) => {
    const stream = reply.sse(both)
    void scoreChannel.subscribe(stream)
    void chatChannel.subscribe(stream)
  })
  const origin = await start()
  const client = await openStream(t, `${origin}/both`)
  await waitUntil(() => scoreChannel.size === 1 && chatChannel.size === 1)
  await scoreChannel.publish('score', { match: 'A-B', home: 0, away: 0, seq: 0 })
  await chatChannel.publish('line', { from: 'ann', text: 'hi' })
  const events = await client.events(2)
  t.same(events.map((event) => event.type), ['score', 'line'])
  t.same([...scoreChannel.subscribers()].length, 1, 'subscribers() lists the stream')

  client.destroy()
  await waitUntil(() => scoreChannel.size === 0 && chatChannel.size === 0, 2000, 'detached on close')
  t.equal(app.sse.stats().openStreams, 0)
  t.equal(await scoreChannel.publish('score', { match: 'A-B', home: 1, away: 0, seq: 1 }), undefined, 'publishing to nobody is fine')
})

t.test('unsubscribe detaches without closing the stream', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  const channel = app.sse.channel('chat', chat)
  app.get('/chat', (_request, reply) => {
    const stream = reply.sse(chat)
    void channel.subscribe(stream)
    void channel.subscribe(stream) // a second subscribe of the same stream is a no-op
  })
  const origin = await start()
  const client = await openStream(t, `${origin}/chat`)
  await waitUntil(() => channel.size === 1)
  await channel.publish('line', { from: 'a', text: '1' })
  await client.events(1)
  const [stream] = channel.subscribers()
  channel.unsubscribe(stream)
  await channel.publish('line', { from: 'a', text: '2' })
  t.equal(channel.size, 0)
  t.ok(stream.isOpen, 'the stream stays open')
  stream.send('line', { from: 'direct', text: '3' })
  const events = await client.events(2)
  t.same(events.map((event) => JSON.parse(event.data).text), ['1', '3'], 'no channel event after unsubscribe, once each')
})

t.test('publish validates once, before anything is sent', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  const channel = app.sse.channel('scores', scores)
  app.get('/scores', (_request, reply) => { void channel.subscribe(reply.sse(scores)) })
  const origin = await start()
  const client = await openStream(t, `${origin}/scores`)
  await waitUntil(() => channel.size === 1)
  const bad = { match: 'A-B', home: 'one', away: 0, seq: 0 }
  t.equal(thrown(() => channel.publish('score', bad as never))?.code, 'TYPED_SSE_INVALID_PAYLOAD')
  t.equal(thrown(() => channel.publish('nope' as never, {} as never))?.code, 'TYPED_SSE_UNKNOWN_EVENT')
  await channel.publish('score', { match: 'A-B', home: 1, away: 0, seq: 7 })
  const [event] = await client.events(1)
  t.equal(JSON.parse(event.data).seq, 7, 'only the valid event arrived')
  t.equal(app.sse.stats().channels.scores.published, 1, 'refused publishes are not counted')
})

t.test('channel() returns the same channel for the same definition and refuses a conflicting one', async (t) => {
  const { app } = await buildApp(t)
  const first = app.sse.channel('scores', scores, { history: { maxEvents: 10 } })
  t.equal(app.sse.channel('scores', scores, { history: { maxEvents: 10 } }), first)
  t.equal(thrown(() => app.sse.channel('scores', chat as never))?.code, 'TYPED_SSE_CHANNEL_CONFLICT')
  t.equal(thrown(() => app.sse.channel('scores', scores, { history: { maxEvents: 11 } }))?.code, 'TYPED_SSE_CHANNEL_CONFLICT')
  t.equal(thrown(() => app.sse.channel('', scores))?.code, 'TYPED_SSE_INVALID_OPTION')
  t.equal(thrown(() => app.sse.channel('h', scores, { history: { maxEvents: 0 } }))?.code, 'TYPED_SSE_INVALID_OPTION')
  t.equal(thrown(() => app.sse.channel('h', scores, { history: { maxAgeMs: -1 } }))?.code, 'TYPED_SSE_INVALID_OPTION')
})
