/**
 * How replays read history (lib/replay-reads.ts), on the in-memory engine behind a
 * wrapper that counts and delays its page reads as a remote store would: replays from
 * one id share reads, a bounded number run at once, and a replay never takes a read
 * that started before it began holding live messages (it would miss what was
 * published in between).
 */
import t from 'tap'
import type { PageLimit, ReplayPage, SseEngine } from '../../lib/engine/engine.js'
import { defineEvents, memoryEngine, Type } from '../../lib/index.js'
import { MAX_REPLAY_READS, REPLAY_PAGE } from '../../lib/engine/replay-reads.js'
import { buildApp, sleep, waitUntil } from '../helpers/app.js'
import { openStream, type StreamClient } from '../helpers/client.js'

const scores = defineEvents({ score: Type.Object({ seq: Type.Integer() }) })

/** The in-memory engine, its page reads counted and held until `release()` (or delayed by `delayMs`). */
function countingEngine (delayMs: number): { engine: SseEngine, reads: () => number, mostAtOnce: () => number, hold: () => void, release: () => void } {
  const inner = memoryEngine()
  let reads = 0
  let running = 0
  let mostAtOnce = 0
  let gate: Promise<void> | undefined
  let open: () => void = () => {}
  const engine: SseEngine = {
    compareIds: (a, b) => inner.compareIds(a, b),
    close: async () => await inner.close(),
    channel (name, history, listener) {
      const channel = inner.channel(name, history, listener)
      const readPage = async (after: string | undefined, limit: PageLimit): Promise<ReplayPage> => {
        reads++
        mostAtOnce = Math.max(mostAtOnce, ++running)
        try {
          // Read when the call comes (as a store answers as of the command), answered later.
          const page = await channel.readPage(after, limit)
          await (gate ?? sleep(delayMs))
          return page
        } finally {
          running--
        }
      }
      return { ...channel, readPage }
    }
  }
  return {
    engine,
    reads: () => reads,
    mostAtOnce: () => mostAtOnce,
    hold: () => { gate = new Promise((resolve) => { open = resolve }) },
    release: () => { gate = undefined; open() }
  }
}

function seqsOf (client: StreamClient): number[] {
  return client.parser.events.map((event) => (JSON.parse(event.data) as { seq: number }).seq)
}

t.test('50 replays from one id share their page reads, at most MAX_REPLAY_READS run at once, and each gets every event once', async (t) => {
  const counting = countingEngine(20)
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, engine: counting.engine } })
  const channel = app.sse.channel('scores', scores, { history: { maxEvents: 5000 } })
  app.get('/scores', async (_request, reply) => { await channel.subscribe(reply.sse(scores)) })
  const origin = await start()
  const EVENTS = REPLAY_PAGE.maxEvents * 2 + 100
  const first = await channel.publish('score', { seq: 1 }) as string
  for (let seq = 2; seq <= EVENTS; seq++) await channel.publish('score', { seq })

  const REPLAYS = 50
  // The first reads wait until every client came: the others queue behind them.
  counting.hold()
  const clients = await Promise.all(Array.from({ length: REPLAYS }, async () => await openStream(t, `${origin}/scores`, { 'last-event-id': first })))
  await waitUntil(() => channel.size === REPLAYS, 10_000, 'every client subscribed')
  counting.release()
  await Promise.all(clients.map(async (client) => await client.events(EVENTS - 1, 30_000)))
  const expected = Array.from({ length: EVENTS - 1 }, (_, i) => i + 2)
  t.ok(clients.every((client) => JSON.stringify(seqsOf(client)) === JSON.stringify(expected)), 'every replay: every event after the id, once, in order')
  // Three pages each: 150 reads unshared; fewer than one per replay shared.
  t.ok(counting.reads() < REPLAYS, `${counting.reads()} page reads for ${REPLAYS} replays of 3 pages`)
  t.ok(counting.mostAtOnce() <= MAX_REPLAY_READS, `${counting.mostAtOnce()} reads at once at most`)
  t.equal(app.sse.stats().replaysServed, REPLAYS)
})

t.test('a replay that comes while a read from its id runs gets a read of its own: what was published in between reaches it', async (t) => {
  const counting = countingEngine(0)
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, engine: counting.engine } })
  const channel = app.sse.channel('scores', scores, { history: true })
  app.get('/scores', async (_request, reply) => { await channel.subscribe(reply.sse(scores)) })
  const origin = await start()
  const first = await channel.publish('score', { seq: 1 }) as string
  await channel.publish('score', { seq: 2 })

  counting.hold()
  const early = await openStream(t, `${origin}/scores`, { 'last-event-id': first })
  await waitUntil(() => counting.reads() === 1, 2000, 'the first read runs')
  // Published after that read looked, before the second replay begins holding.
  await channel.publish('score', { seq: 3 })
  const late = await openStream(t, `${origin}/scores`, { 'last-event-id': first })
  await waitUntil(() => channel.size === 2, 2000, 'both subscribed')
  await waitUntil(() => counting.reads() === 2, 2000, 'the second replay reads for itself')
  counting.release()
  await Promise.all([early.events(2), late.events(2)])
  t.same(seqsOf(early), [2, 3], 'the first replay: the read, then what it held')
  t.same(seqsOf(late), [2, 3], 'the second: its own read has seq 3')
})

t.test('history evicted while a replay is between pages: what was written stands, then sse:resync from there, never a silent gap', async (t) => {
  const counting = countingEngine(0)
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, engine: counting.engine } })
  const channel = app.sse.channel('scores', scores, { history: { maxEvents: REPLAY_PAGE.maxEvents * 2 } })
  app.get('/scores', async (_request, reply) => { await channel.subscribe(reply.sse(scores)) })
  const origin = await start()
  const ids: string[] = []
  for (let seq = 1; seq <= REPLAY_PAGE.maxEvents * 2; seq++) ids.push(await channel.publish('score', { seq }) as string)
  counting.hold()
  const client = await openStream(t, `${origin}/scores`, { 'last-event-id': ids[0] })
  await waitUntil(() => counting.reads() === 1, 2000, 'the first page read')
  // A full history's worth published before the second page is read: the rest of the replay is gone.
  const more = REPLAY_PAGE.maxEvents * 2
  for (let seq = ids.length + 1; seq <= ids.length + more; seq++) await channel.publish('score', { seq })
  counting.release()
  const events = await client.events(REPLAY_PAGE.maxEvents + 1 + more, 10_000)
  const page = events.slice(0, REPLAY_PAGE.maxEvents).map((event) => (JSON.parse(event.data) as { seq: number }).seq)
  t.same(page, Array.from({ length: REPLAY_PAGE.maxEvents }, (_, i) => i + 2), 'the first page, as read')
  const resync = events[REPLAY_PAGE.maxEvents]
  t.equal(resync.type, 'sse:resync')
  t.same(JSON.parse(resync.data), { channel: 'scores', lastEventId: ids[REPLAY_PAGE.maxEvents], reason: 'evicted' }, 'told where the gap begins')
  const live = events.slice(REPLAY_PAGE.maxEvents + 1).map((event) => (JSON.parse(event.data) as { seq: number }).seq)
  t.same(live, Array.from({ length: more }, (_, i) => ids.length + 1 + i), 'then what was held, in order')
  t.equal(app.sse.stats().replayMisses, 1)
})
