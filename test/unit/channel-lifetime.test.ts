/**
 * Channels named from request input (`room:${id}`) must not live forever: a channel
 * can be dropped, or dropped when idle, and its history costs what it holds.
 */
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { defineEvents, Type } from '../../lib/index.js'
import { RingHistory } from '../../lib/engine/history.js'
import { buildApp, sleep, thrown, waitUntil } from '../helpers/app.js'
import { openStream } from '../helpers/client.js'

const room = defineEvents({ line: Type.Object({ text: Type.String() }) })

/** `GET /rooms/:id?last=<id>`: a stream on the channel `room:<id>` (with history), resuming after `last`. */
function roomsRoute (app: FastifyInstance): void {
  app.get('/rooms/:id', (request, reply) => {
    const { id } = request.params as { id: string }
    const { last } = request.query as { last?: string }
    void app.sse.channel(`room:${id}`, room, { history: true }).subscribe(reply.sse(room), { lastEventId: last })
  })
}

t.test('drop(): subscribers are closed, the channel is forgotten, the name makes a new one', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  roomsRoute(app)
  const origin = await start()
  const channel = app.sse.channel('room:7', room, { history: true })
  const client = await openStream(t, `${origin}/rooms/7`)
  await waitUntil(() => channel.size === 1, 2000, 'subscribed')
  const id = await channel.publish('line', { text: 'hi' }) as string
  await client.events(1)

  await channel.drop()
  await client.closed
  t.equal(channel.isActive, false)
  t.notOk('room:7' in app.sse.stats().channels, 'no longer listed')
  t.equal(thrown(() => channel.publish('line', { text: 'late' }))?.code, 'TYPED_SSE_CHANNEL_DROPPED')
  const again = app.sse.channel('room:7', room, { history: true })
  t.not(again, channel, 'a new channel')
  // The client saw all the old room had; nothing is missing, so it goes live without a resync.
  const probe = await openStream(t, `${origin}/rooms/7?last=${encodeURIComponent(id)}`)
  await waitUntil(() => again.size === 1, 2000, 'resubscribed')
  await again.publish('line', { text: 'new' })
  const [event] = await probe.events(1)
  t.same([event.type, event.data], ['line', '{"text":"new"}'], 'the new room, live')
  t.ok(app.sse.stats().eventsPublished >= 1, 'instance totals keep what dropped channels published')
})

t.test('an id from before a channel existed replays its whole history; an id from before a drop of that name resyncs', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  roomsRoute(app)
  const origin = await start()
  // A client reading room:1 holds its id, then moves to room:2, made later (ids share one order).
  const first = await app.sse.channel('room:1', room, { history: true }).publish('line', { text: 'one' }) as string
  const second = app.sse.channel('room:2', room, { history: true })
  await second.publish('line', { text: 'a' })
  await second.publish('line', { text: 'b' })
  const moved = await openStream(t, `${origin}/rooms/2?last=${encodeURIComponent(first)}`)
  const replayed = await moved.events(2)
  t.same(replayed.map((e) => [e.type, e.data]), [['line', '{"text":"a"}'], ['line', '{"text":"b"}']], 'nothing of room:2 came before that id: its history, no resync')
  moved.destroy()

  // room:3 existed, published after the client's id, and was dropped: that history is gone.
  const old = app.sse.channel('room:3', room, { history: true })
  await old.publish('line', { text: 'lost' })
  await old.drop()
  // Many other rooms come and go meanwhile: what the engine remembers of drops is bounded,
  // and forgetting must still err on the side of a resync.
  for (let i = 0; i < 10_050; i++) await app.sse.channel(`churn:${i}`, room, { history: true }).drop()
  const probe = await openStream(t, `${origin}/rooms/3?last=${encodeURIComponent(first)}`)
  const [event] = await probe.events(1)
  t.equal(event.type, 'sse:resync', 'an earlier room:3 published after that id: resync')
})

t.test('idleMs drops a channel that has had no subscriber and no publish for that long', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  app.get('/rooms/:id', (request, reply) => {
    const { id } = request.params as { id: string }
    void app.sse.channel(`room:${id}`, room, { history: true, idleMs: 150 }).subscribe(reply.sse(room))
  })
  const origin = await start()
  const client = await openStream(t, `${origin}/rooms/1`)
  await waitUntil(() => app.sse.stats().channels['room:1']?.subscribers === 1, 2000, 'subscribed')
  await sleep(400)
  t.ok('room:1' in app.sse.stats().channels, 'kept while it has a subscriber')
  client.destroy()
  await waitUntil(() => !('room:1' in app.sse.stats().channels), 3000, 'dropped once idle')
  t.pass('dropped after idleMs without subscribers')
  const channel = app.sse.channel('room:2', room, { idleMs: 400 })
  for (let i = 0; i < 6; i++) {
    await channel.publish('line', { text: String(i) })
    await sleep(50)
  }
  t.equal(channel.isActive, true, 'publishes keep it')
  await waitUntil(() => !channel.isActive, 3000, 'dropped after its last publish')
  t.pass('dropped idleMs after the last publish')
})

t.test('history memory grows with what it holds, up to maxEvents', async (t) => {
  const ring = new RingHistory({ maxEvents: 1000, maxAgeMs: false })
  t.ok(ring.capacity <= 16, `an empty ring holds ${ring.capacity} slots, not 1000`)
  for (let i = 1; i <= 40; i++) ring.append(i, { id: String(i), event: 'e', data: String(i) })
  t.ok(ring.capacity >= 40 && ring.capacity <= 64, `40 messages: ${ring.capacity} slots`)
  const read = ring.readAfter(30)
  t.same(read.status === 'ok' ? read.messages.map((m) => m.data) : read.status, ['31', '32', '33', '34', '35', '36', '37', '38', '39', '40'], 'order kept across growth')
  for (let i = 41; i <= 1500; i++) ring.append(i, { id: String(i), event: 'e', data: String(i) })
  t.equal(ring.capacity, 1000, 'never past maxEvents')
  t.equal(ring.size, 1000)
  t.equal(ring.readAfter(499).status, 'evicted')
  const tail = ring.readAfter(1499)
  t.same(tail.status === 'ok' ? tail.messages.map((m) => m.data) : tail.status, ['1500'])
})

t.test('end(): subscribers get sse:end and close; a client resuming later replays up to the end, then ends; sse:end gets 204', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  const answer = app.sse.channel('answer:1', room, { history: true })
  app.get('/answer', (_request, reply) => { void answer.subscribe(reply.sse(room), { replayAll: true }) })
  const origin = await start()
  const live = await openStream(t, `${origin}/answer`)
  await waitUntil(() => answer.size === 1, 2000, 'subscribed')
  const first = await answer.publish('line', { text: 'Hel' }) as string
  await answer.publish('line', { text: 'lo' })
  await answer.end()
  await live.ended
  t.same(live.parser.events.map((event) => event.type), ['line', 'line', 'sse:end'], 'live: the tokens, then the end')
  t.equal(live.parser.lastEventId, 'sse:end')

  const resumed = await openStream(t, `${origin}/answer`, { 'last-event-id': first })
  await resumed.ended
  t.same(resumed.parser.events.map((event) => event.type === 'line' ? JSON.parse(event.data).text : event.type), ['lo', 'sse:end'],
    'a client cut after the first token gets the rest exactly once, then the end')
  const again = await openStream(t, `${origin}/answer`, { 'last-event-id': 'sse:end' })
  t.equal(again.statusCode, 204, 'a reconnect after the end gets 204')
})
