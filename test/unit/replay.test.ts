/**
 * Last-Event-ID replay through channels with history: a real EventSource client that
 * is cut off gets every missed event exactly once, in order, also for events
 * published while its replay runs; ids it cannot be replayed from give `sse:resync`.
 */
import { EventSource } from 'eventsource'
import t from 'tap'
import { defineEvents, memoryEngine, RESYNC_EVENT, Type, type SseEngine, type SseStream } from '../../lib/index.js'
import { buildApp, Inbox, sleep, waitUntil } from '../helpers/app.js'
import { openStream } from '../helpers/client.js'
import { laggingEngine } from '../helpers/engine.js'

const scores = defineEvents({
  score: Type.Object({ seq: Type.Integer() }),
  snapshot: Type.Object({ seqs: Type.Array(Type.Integer()) })
})

/**
 * The in-memory engine with a replay that takes time, as a remote store's would:
 * `replayStarted` resolves when a lookup begins; the lookup then waits for `release`.
 * With `readFirst`, the history is read before the wait (events published during the
 * wait are only live); without, after it (they are in the replay and live both).
 */
function slowReplayEngine (readFirst: boolean): { engine: SseEngine, replayStarted: Inbox<() => void> } {
  const inner = memoryEngine()
  const replayStarted = new Inbox<() => void>()
  const engine: SseEngine = {
    channel (name, history, deliver) {
      const channel = inner.channel(name, history, deliver)
      return {
        publish: async (message) => await channel.publish(message),
        async readPage (lastEventId, limit) {
          const early = readFirst ? await channel.readPage(lastEventId, limit) : undefined
          await new Promise<void>((resolve) => replayStarted.push(resolve))
          return early ?? await channel.readPage(lastEventId, limit)
        },
        close: () => channel.close()
      }
    },
    compareIds: (a, b) => inner.compareIds(a, b),
    close: async () => await inner.close()
  }
  return { engine, replayStarted }
}

for (const readFirst of [false, true]) {
  t.test(`a cut-off EventSource gets every missed event once, in order, also those published during its replay (history read ${readFirst ? 'before' : 'after'} them)`, async (t) => {
    const { engine, replayStarted } = slowReplayEngine(readFirst)
    const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, retryMs: 20, engine } })
    const channel = app.sse.channel('scores', scores, { history: true })
    const streams = new Inbox<SseStream<typeof scores>>()
    const lastEventIds: Array<string | undefined> = []
    app.get('/scores', async (_request, reply) => {
      const stream = reply.sse(scores)
      lastEventIds.push(stream.lastEventId)
      streams.push(stream)
      await channel.subscribe(stream)
    })
    const origin = await start()
    const source = new EventSource(`${origin}/scores`)
    t.teardown(() => source.close())
    const seen: number[] = []
    source.addEventListener('score', (event) => { seen.push(JSON.parse(event.data).seq) })

    const first = await streams.next()
    for (let seq = 0; seq < 10; seq++) await channel.publish('score', { seq })
    await waitUntil(() => seen.length === 10, 3000, 'first ten')

    first.close() // cut off: the client reconnects after retry: 20 ms
    for (let seq = 10; seq < 20; seq++) await channel.publish('score', { seq })
    const release = await replayStarted.next(3000)
    for (let seq = 20; seq < 30; seq++) await channel.publish('score', { seq })
    release()
    await waitUntil(() => seen.length >= 30, 3000, 'all thirty')
    await channel.publish('score', { seq: 30 })
    await waitUntil(() => seen.length >= 31, 3000, 'the live one after replay')
    await sleep(30)

    t.same(seen, Array.from({ length: 31 }, (_, i) => i), 'every event exactly once, in order')
    t.equal(lastEventIds[0], undefined, 'the first request had no Last-Event-ID')
    t.match(lastEventIds[1], /_10$/, 'the reconnect carried the id of the tenth event')
    t.equal(app.sse.stats().replaysServed, 1)
  })
}

t.test('a lagging instance: what the client already had, heard live only after its replay ended, is not sent again', async (t) => {
  // The engine's live deliveries lag: held here until released by hand, after the
  // replay (the client came with the newest id, so the replay has nothing to send).
  const lag = laggingEngine(memoryEngine())
  const engine = lag.engine
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, engine } })
  const channel = app.sse.channel('scores', scores, { history: true })
  const live = new Inbox<void>()
  app.get('/scores', async (_request, reply) => {
    await channel.subscribe(reply.sse(scores))
    live.push()
  })
  const origin = await start()
  const ids: string[] = []
  for (let seq = 0; seq < 5; seq++) ids.push(await channel.publish('score', { seq }) as string)
  t.equal(lag.held, 5, 'this instance has heard none of them yet')

  const client = await openStream(t, `${origin}/scores`, { 'last-event-id': ids[4] })
  await live.next(3000)
  // The replay is over: the late deliveries meet the subscriber's position, not a replay.
  lag.release()
  await channel.publish('score', { seq: 5 })
  const [event] = await client.events(1)
  await sleep(50)
  t.same(client.parser.events.map((each) => JSON.parse(each.data).seq), [5], 'only the new event: 0..4 arrived late but the client had them')
  t.equal(event.type, 'score')
})

t.test('an unknown id gets sse:resync with reason unknown, and onResync can send a snapshot', async (t) => {
  const resyncs: Array<{ reason: string, lastEventId: string }> = []
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  const channel = app.sse.channel('scores', scores, {
    history: true,
    onResync: (stream, info) => {
      resyncs.push(info)
      stream.send('snapshot', { seqs: [1, 2, 3] })
    }
  })
  app.get('/scores', async (_request, reply) => { await channel.subscribe(reply.sse(scores)) })
  const origin = await start()
  await channel.publish('score', { seq: 1 })
  const client = await openStream(t, `${origin}/scores`, { 'last-event-id': 'not-an-id\u00e9' })
  const [resync, snapshot] = await client.events(2)
  t.equal(resync.type, RESYNC_EVENT)
  t.same(JSON.parse(resync.data), { channel: 'scores', lastEventId: 'not-an-id\u00e9', reason: 'unknown' })
  t.same(snapshot, { type: 'snapshot', data: '{"seqs":[1,2,3]}', lastEventId: '' })
  t.same(resyncs.map((info) => info.reason), ['unknown'])
  await channel.publish('score', { seq: 2 })
  const events = await client.events(3)
  t.equal(events[2].type, 'score', 'live events follow')
  t.equal(app.sse.stats().replayMisses, 1)
})

t.test('an evicted id (count bound) gets sse:resync with reason evicted; a retained one replays', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  const channel = app.sse.channel('scores', scores, { history: { maxEvents: 3 } })
  app.get('/scores', async (_request, reply) => { await channel.subscribe(reply.sse(scores)) })
  const origin = await start()
  const ids: string[] = []
  for (let seq = 0; seq < 5; seq++) ids.push(await channel.publish('score', { seq }) as string)
  
  const evicted = await openStream(t, `${origin}/scores`, { 'last-event-id': ids[0] })
  const retained = await openStream(t, `${origin}/scores`, { 'last-event-id': ids[1] })
  const [resync] = await evicted.events(1)
  t.equal(resync.type, RESYNC_EVENT)
  t.equal(JSON.parse(resync.data).reason, 'evicted')
  const replayed = await retained.events(3)
  t.same(replayed.map((event) => JSON.parse(event.data).seq), [2, 3, 4], 'events after id 1, all still retained')
  t.same(replayed.map((event) => event.lastEventId), ids.slice(2), 'with their ids')
})

t.test('an id older than maxAgeMs is evicted', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  const channel = app.sse.channel('scores', scores, { history: { maxAgeMs: 50 } })
  app.get('/scores', async (_request, reply) => { await channel.subscribe(reply.sse(scores)) })
  const origin = await start()
  const first = await channel.publish('score', { seq: 0 }) as string
  await channel.publish('score', { seq: 1 })
  await sleep(80)
  const client = await openStream(t, `${origin}/scores`, { 'last-event-id': first })
  const [resync] = await client.events(1)
  t.equal(JSON.parse(resync.data).reason, 'evicted')
})

t.test('ids are unique across restarts: an id from a previous process is unknown, never replayed wrongly', async (t) => {
  const before = await buildApp(t, { sse: { heartbeatMs: false } })
  const oldChannel = before.app.sse.channel('scores', scores, { history: true })
  const oldIds: string[] = []
  for (let seq = 0; seq < 3; seq++) oldIds.push(await oldChannel.publish('score', { seq }) as string)
  await before.app.close()

  const after = await buildApp(t, { sse: { heartbeatMs: false } })
  const channel = after.app.sse.channel('scores', scores, { history: true })
  after.app.get('/scores', async (_request, reply) => { await channel.subscribe(reply.sse(scores)) })
  const origin = await after.start()
  const newIds: string[] = []
  for (let seq = 100; seq < 103; seq++) newIds.push(await channel.publish('score', { seq }) as string)
  t.notOk(newIds.some((id) => oldIds.includes(id)), 'no id is reused')

  const client = await openStream(t, `${origin}/scores`, { 'last-event-id': oldIds[0] })
  const [resync] = await client.events(1)
  t.equal(resync.type, RESYNC_EVENT)
  t.equal(JSON.parse(resync.data).reason, 'unknown')
})

t.test('subscribe({ lastEventId }) replays from a given id (e.g. from the query); null skips replay', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  const channel = app.sse.channel('scores', scores, { history: true })
  app.get<{ Querystring: { since?: string } }>('/scores', async (request, reply) => {
    const since = request.query.since
    await channel.subscribe(reply.sse(scores), { lastEventId: since === undefined ? null : since })
  })
  const origin = await start()
  const ids: string[] = []
  for (let seq = 0; seq < 3; seq++) ids.push(await channel.publish('score', { seq }) as string)
  const fromQuery = await openStream(t, `${origin}/scores?since=${ids[0]}`)
  const noReplay = await openStream(t, `${origin}/scores`, { 'last-event-id': ids[0] })
  const replayed = await fromQuery.events(2)
  t.same(replayed.map((event) => JSON.parse(event.data).seq), [1, 2])
  await waitUntil(() => channel.size === 2)
  await channel.publish('score', { seq: 3 })
  const [live] = await noReplay.events(1)
  t.equal(JSON.parse(live.data).seq, 3, 'the header was ignored: only the live event')
  t.equal(noReplay.parser.events.length, 1)
})
