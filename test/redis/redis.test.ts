/**
 * The Redis engine against a real, private redis-server: two Fastify apps (two
 * engines) share one Redis, as two instances behind a load balancer would. Fan-out
 * exactly once and in one order, replay across instances with no gap and no
 * duplicate, resync signals, foreign writes, and who closes which connection.
 */
import { once } from 'node:events'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { EventSource } from 'eventsource'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { defineEvents, RESYNC_EVENT, Type, type Channel, type SseEngine } from '../../lib/index.js'
import { channelKey } from '../../lib/engine/redis/keys.js'
import { redisEngine } from '../../lib/redis.js'
import { buildApp, sleep, thrown, waitUntil } from '../helpers/app.js'
import { Recorder, REDIS_MISSING, startRedis, type RedisServer } from '../helpers/redis.js'
import { openTracked, seqs, type RawStream } from '../helpers/client.js'
import { laggingEngine, readAll } from '../helpers/engine.js'

const scores = defineEvents({ score: Type.Object({ seq: Type.Integer() }) })
type Scores = typeof scores

const ENGINE_UNAVAILABLE = 'TYPED_SSE_ENGINE_UNAVAILABLE'
const STREAM_ID = /^\d+-\d+$/

if (REDIS_MISSING !== undefined) t.comment(REDIS_MISSING)
const redis = REDIS_MISSING === undefined ? await startRedis(t) : undefined as unknown as RedisServer

/** One instance: an app on its own engine, channel `scores`, `GET /scores` subscribing to it. */
interface Instance {
  channel: Channel<Scores>
  port: number
  origin: string
}

let prefixes = 0
/** A key prefix of its own for each test, so tests sharing the Redis never meet. */
function newPrefix (): string {
  return `test${++prefixes}:`
}

/** `onLive` runs when a subscribe() resolved: the stream's replay is over, it is live. */
async function instance (t: Test, engine: SseEngine, history: boolean | { maxEvents?: number, maxAgeMs?: number } = true, onLive?: () => void): Promise<Instance> {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, retryMs: 50, engine } })
  const channel = app.sse.channel('scores', scores, { history })
  app.get('/scores', async (_request, reply) => {
    await channel.subscribe(reply.sse(scores))
    onLive?.()
  })
  const origin = await start()
  return { channel, port: (app.server.address() as { port: number }).port, origin }
}

/** Two instances on two engines, same Redis, same prefix. */
async function pair (t: Test, history: boolean | { maxEvents?: number, maxAgeMs?: number } = true): Promise<[Instance, Instance]> {
  const prefix = newPrefix()
  return [
    await instance(t, redisEngine({ url: redis.url, prefix }), history),
    await instance(t, redisEngine({ url: redis.url, prefix }), history)
  ]
}

function open (t: Test, target: Instance, lastEventId?: string): RawStream {
  return openTracked(t, target.port, '/scores', lastEventId)
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i)

t.test('a publish on A reaches a client on B exactly once, and a client on A once (not twice)', { skip: REDIS_MISSING }, async (t) => {
  const [a, b] = await pair(t)
  const onA = open(t, a)
  const onB = open(t, b)
  await waitUntil(() => a.channel.size === 1 && b.channel.size === 1, 2000, 'both subscribed')

  const ids: Array<string | undefined> = []
  for (let seq = 0; seq < 100; seq++) ids.push(await (seq % 2 === 0 ? a : b).channel.publish('score', { seq }))
  await Promise.all([onA.waitForEvents(100, 5000), onB.waitForEvents(100, 5000)])
  await sleep(100) // a duplicate would arrive now

  t.same(seqs(onA), range(0, 100), 'A: every event once, in order')
  t.same(seqs(onB), range(0, 100), 'B: every event once, in order')
  t.ok(ids.every((id) => id !== undefined && STREAM_ID.test(id)), 'ids are Redis stream ids')
  t.same(onA.parser.events.map((event) => event.lastEventId), ids, 'A: with the ids publish returned')
  t.same(onB.parser.events.map((event) => event.lastEventId), ids, 'B: the same ids')
  t.equal(a.channel.stats().delivered, 100, 'A delivered each event once (its own from its subscription)')
})

t.test('concurrent publishes on both instances arrive in one order everywhere', { skip: REDIS_MISSING }, async (t) => {
  const [a, b] = await pair(t)
  const onA = open(t, a)
  const onB = open(t, b)
  await waitUntil(() => a.channel.size === 1 && b.channel.size === 1, 2000, 'both subscribed')
  await Promise.all(range(0, 200).map(async (seq) => await (seq % 2 === 0 ? a : b).channel.publish('score', { seq })))
  await Promise.all([onA.waitForEvents(200, 5000), onB.waitForEvents(200, 5000)])
  await sleep(100)
  t.equal(onA.parser.events.length, 200)
  t.same(onA.parser.events, onB.parser.events, 'same events, same ids, same order on A and B')
  t.same([...seqs(onA)].sort((x, y) => x - y), range(0, 200), 'each event once')
})

t.test('a channel without history fans out too, without ids', { skip: REDIS_MISSING }, async (t) => {
  const [a, b] = await pair(t, false)
  const onB = open(t, b)
  await waitUntil(() => b.channel.size === 1, 2000, 'subscribed')
  for (let seq = 0; seq < 5; seq++) t.equal(await a.channel.publish('score', { seq }), undefined, 'no id')
  await onB.waitForEvents(5)
  t.same(seqs(onB), range(0, 5))
  t.notOk(onB.parser.fields.some((field) => field.name === 'id'), 'no id field on the wire')
})

t.test('a client cut off from A reconnects to B with Last-Event-ID: every missed event once, in order, also those published during its replay', { skip: REDIS_MISSING }, async (t) => {
  const [a, b] = await pair(t)
  const first = open(t, a)
  await waitUntil(() => a.channel.size === 1, 2000, 'subscribed on A')
  for (let seq = 0; seq < 10; seq++) await a.channel.publish('score', { seq })
  await first.waitForEvents(10)
  first.close()
  const lastEventId = first.parser.lastEventId
  for (let seq = 10; seq < 20; seq++) await a.channel.publish('score', { seq })

  // A keeps publishing while the client subscribes on B and its replay runs.
  let seq = 20
  const publishing = (async () => { for (; seq < 300; seq++) await a.channel.publish('score', { seq }) })()
  await waitUntil(() => seq >= 25, 2000, 'publishing under way')
  const second = open(t, b, lastEventId)
  await publishing
  await second.waitForEvents(290, 10_000)
  await sleep(100)
  t.same(seqs(second), range(10, 300), 'events 10..299, each once, in order')
  t.ok(seq > 25 && b.channel.stats().replaysServed === 1, 'the replay ran while A published')
})

t.test('a real EventSource behind a "load balancer" that sends its reconnect to the other instance', { skip: REDIS_MISSING }, async (t) => {
  const [a, b] = await pair(t)
  const targets = [a.origin, b.origin]
  const requests: Array<{ origin: string, lastEventId: string | null }> = []
  const source = new EventSource(`${a.origin}/scores`, {
    fetch: async (url, init) => {
      const origin = targets[requests.length % 2]
      const headers = new Headers(init?.headers as Record<string, string>)
      requests.push({ origin, lastEventId: headers.get('last-event-id') })
      return await fetch(String(url).replace(a.origin, origin), init)
    }
  })
  t.teardown(() => source.close())
  const seen: number[] = []
  source.addEventListener('score', (event) => { seen.push((JSON.parse(event.data) as { seq: number }).seq) })
  await waitUntil(() => a.channel.size === 1, 3000, 'subscribed on A')
  for (let seq = 0; seq < 5; seq++) await a.channel.publish('score', { seq })
  await waitUntil(() => seen.length === 5, 3000, 'first five')

  // The server ends the stream (a deploy); the client reconnects, to B, after ~retry.
  await a.channel.publish('score', { seq: 5 })
  for (const stream of [...a.channel.subscribers()]) stream.close()
  for (let seq = 6; seq < 10; seq++) await a.channel.publish('score', { seq })
  await waitUntil(() => b.channel.size === 1, 8000, 'reconnected to B')
  for (let seq = 10; seq < 15; seq++) await b.channel.publish('score', { seq })
  await waitUntil(() => seen.length >= 15, 3000, 'all fifteen')
  await sleep(100)
  t.same(seen, range(0, 15), 'every event once, in order, across the switch')
  t.equal(requests[1]?.origin, b.origin, 'the reconnect went to B')
  t.match(requests[1]?.lastEventId, STREAM_ID, 'carrying a stream id as Last-Event-ID')
})

t.test('ids that cannot be replayed get sse:resync: evicted by count or age, unknown when malformed, ahead, or from before the stream', { skip: REDIS_MISSING }, async (t) => {
  const prefix = newPrefix()
  const a = await instance(t, redisEngine({ url: redis.url, prefix }), { maxEvents: 3 })
  const ids: string[] = []
  for (let seq = 0; seq < 10; seq++) ids.push(await a.channel.publish('score', { seq }) as string)
  const [ms, counter] = ids[9].split('-')

  async function firstEvent (lastEventId: string): Promise<{ type: string, data: unknown }> {
    const client = open(t, a, lastEventId)
    const [event] = await client.waitForEvents(1)
    client.close()
    return { type: event.type, data: JSON.parse(event.data) }
  }
  t.same(await firstEvent(ids[6]), { type: 'score', data: { seq: 7 } }, 'maxEvents 3 keeps exactly 7, 8, 9: after 6 replays')
  for (const [lastEventId, reason] of [
    [ids[5], 'evicted'], [ids[0], 'evicted'],
    ['not-an-id', 'unknown'], ['01-1', 'unknown'], [`${ms}-${Number(counter) + 1}`, 'unknown'], [`${Number(ms) + 1}-0`, 'unknown']
  ]) {
    t.same(await firstEvent(lastEventId), { type: RESYNC_EVENT, data: { channel: 'scores', lastEventId, reason } }, `${lastEventId}: ${reason}`)
  }

  // A stream never trimmed: an id before its first entry is from another life of
  // Redis (restarted empty), not one this stream gave.
  const fresh = await instance(t, redisEngine({ url: redis.url, prefix: newPrefix() }))
  await fresh.channel.publish('score', { seq: 0 })
  const client = open(t, fresh, '1-0')
  const [event] = await client.waitForEvents(1)
  t.same(JSON.parse(event.data), { channel: 'scores', lastEventId: '1-0', reason: 'unknown' })
})

t.test('maxAgeMs evicts by age, also when nothing was published since', { skip: REDIS_MISSING }, async (t) => {
  const a = await instance(t, redisEngine({ url: redis.url, prefix: newPrefix() }), { maxAgeMs: 100 })
  const first = await a.channel.publish('score', { seq: 0 }) as string
  const second = await a.channel.publish('score', { seq: 1 }) as string
  await sleep(150)
  const old = open(t, a, first)
  const [resync] = await old.waitForEvents(1)
  t.same(JSON.parse(resync.data).reason, 'evicted', 'entry 1 aged out: trimmed at read time')
  const current = open(t, a, second)
  await waitUntil(() => a.channel.size === 2, 2000, 'both subscribed')
  await a.channel.publish('score', { seq: 2 })
  const [live] = await current.waitForEvents(1)
  t.same(JSON.parse(live.data), { seq: 2 }, 'up to date: nothing to replay, then live')
})

t.test('a lagging instance does not resend what the client already had', { skip: REDIS_MISSING }, async (t) => {
  // B hears the publishes only once the client's replay is over: as if its subscription
  // lagged behind A while the client switched from A to B. (Released during the replay,
  // they would meet the replay's merge, not the position kept after it.)
  const prefix = newPrefix()
  const lag = laggingEngine(redisEngine({ url: redis.url, prefix }))
  const a = await instance(t, redisEngine({ url: redis.url, prefix }))
  const b = await instance(t, lag.engine, true, () => lag.release())
  const first = open(t, a)
  await waitUntil(() => a.channel.size === 1, 2000, 'subscribed on A')
  for (let seq = 0; seq < 5; seq++) await a.channel.publish('score', { seq })
  await first.waitForEvents(5)
  first.close()
  await waitUntil(() => lag.held === 5, 2000, 'B heard nothing yet')

  const second = open(t, b, first.parser.lastEventId)
  await waitUntil(() => b.channel.size === 1 && !lag.isLagging, 2000, 'subscribed on B')
  await a.channel.publish('score', { seq: 5 })
  await second.waitForEvents(1)
  await sleep(100)
  t.same(seqs(second), [5], 'only the new event: 0..4 arrived late on B but the client had them')
})

/** Writes to `key` what no channel publishes: pub/sub messages, then stream entries. */
async function forge (admin: Redis, key: string): Promise<void> {
  for (const text of [
    '1-1\nscore\r\n{"seq":-1}', // CR in the event name
    '1-1\n\n{"seq":-2}', // empty event name
    'x\nscore\n{"seq":-3}', // not a stream id
    '\nscore\n{"seq":-4}', // no id, on a channel with history
    '1-1\nscore', // no data
    'garbage'
  ]) await admin.publish(key, text)
  await admin.xadd(key, '*', 'e', 'score\nevent: forged', 'd', '{"seq":-5}')
  await admin.xadd(key, '*', 'e', 'score\r', 'd', '{"seq":-6}')
  await admin.xadd(key, '*', 'e', '', 'd', '{"seq":-7}')
  await admin.xadd(key, '*', 'e', 'score')
  await admin.xadd(key, '*', 'x', 'score', 'd', '{"seq":-8}')
}

t.test('the engine drops what channels could not have written, live and in replay (a read that starts before the forged entries)', { skip: REDIS_MISSING }, async (t) => {
  const prefix = newPrefix()
  const engine = redisEngine({ url: redis.url, prefix })
  t.teardown(async () => await engine.close())
  await engine.ready?.()
  const admin = new Redis(redis.url)
  t.teardown(() => admin.quit())
  const seen = new Recorder()
  const channel = engine.channel('scores', { maxEvents: 100, maxAgeMs: false }, seen)
  const before = await channel.publish({ event: 'score', data: '{"seq":0}' }) as string
  await forge(admin, channelKey(prefix, 'scores'))
  const after = await channel.publish({ event: 'score', data: '{"seq":1}' }) as string
  await waitUntil(() => seen.messages.length >= 2, 2000, 'both real messages delivered')
  await sleep(100)
  t.same(seen.ids, [before, after], 'live: only the two real messages')
  t.equal(await admin.xlen(channelKey(prefix, 'scores')), 7, 'the forged entries are in the range the replay reads')
  t.same(await readAll(channel, before), { status: 'ok', messages: [{ id: after, event: 'score', data: '{"seq":1}' }] }, 'replay: the forged entries after the id are skipped')
  t.same(seen.gaps, 0)
})

t.test('messages that channels could not have made never reach a client, live or in replay', { skip: REDIS_MISSING }, async (t) => {
  const prefix = newPrefix()
  const a = await instance(t, redisEngine({ url: redis.url, prefix }))
  const admin = new Redis(redis.url)
  t.teardown(() => admin.quit())
  const client = open(t, a)
  await waitUntil(() => a.channel.size === 1, 2000, 'subscribed')
  const before = await a.channel.publish('score', { seq: 0 }) as string
  await forge(admin, channelKey(prefix, 'scores'))
  await a.channel.publish('score', { seq: 1 })
  await client.waitForEvents(2)
  await sleep(100)
  t.same(seqs(client), [0, 1], 'only the real events were delivered')
  t.same(client.parser.events.map((event) => event.type), ['score', 'score'], 'no forged event name')

  const replay = open(t, a, before)
  await replay.waitForEvents(1)
  await sleep(100)
  t.same(seqs(replay), [1], 'replayed from before the forged entries: they are skipped')
})

t.test('fastify.close() quits the connections the engine opened, and never a client passed in', { skip: REDIS_MISSING }, async (t) => {
  /** Waits (bounded) until Redis counts `expected` connections: it frees a client just after its socket closes. */
  async function connections (expected: number): Promise<number> {
    let count = (await redis.clients()).length
    for (const deadline = Date.now() + 1000; count !== expected && Date.now() < deadline;) {
      await sleep(20)
      count = (await redis.clients()).length
    }
    return count
  }
  const before = (await redis.clients()).length
  const owned = await buildApp(t, { sse: { engine: redisEngine({ url: redis.url, prefix: newPrefix() }) } })
  owned.app.sse.channel('scores', scores, { history: true })
  t.equal(await connections(before + 2), before + 2, 'a command and a subscriber connection')
  await owned.app.close()
  t.equal(await connections(before), before, 'both gone after close()')

  const client = new Redis(redis.url)
  t.teardown(() => client.quit())
  const shared = await buildApp(t, { sse: { engine: redisEngine({ client, prefix: newPrefix() }) } })
  const channel = shared.app.sse.channel('scores', scores, { history: true })
  await channel.publish('score', { seq: 0 })
  t.equal(await connections(before + 3), before + 3, "the user's client and the engine's two duplicates of it")
  await shared.app.close()
  t.equal(client.status, 'ready', "the user's client is still open")
  t.equal(await client.ping(), 'PONG')
  t.equal(await connections(before + 1), before + 1, "only the user's client remains")
})

t.test('one subscription per channel per instance, however many clients', { skip: REDIS_MISSING }, async (t) => {
  const prefix = newPrefix()
  const a = await instance(t, redisEngine({ url: redis.url, prefix }))
  const clients = range(0, 20).map(() => open(t, a))
  await waitUntil(() => a.channel.size === 20, 3000, 'all subscribed')
  const admin = new Redis(redis.url)
  t.teardown(() => admin.quit())
  t.same(await admin.pubsub('NUMSUB', channelKey(prefix, 'scores')), [channelKey(prefix, 'scores'), 1])
  await a.channel.publish('score', { seq: 0 })
  await Promise.all(clients.map(async (client) => await client.waitForEvents(1)))
})

t.test('ready() rejects with TYPED_SSE_ENGINE_UNAVAILABLE after connectTimeoutMs when nothing answers, naming the address', { skip: REDIS_MISSING }, async (t) => {
  // A server that accepts and never answers (a refused port fails at once: test/redis/redis-errors.test.ts).
  const silent = createServer(() => {})
  const sockets = new Set<Socket>()
  silent.on('connection', (socket) => { sockets.add(socket) })
  silent.listen(0, '127.0.0.1')
  await once(silent, 'listening')
  t.teardown(() => { for (const socket of sockets) socket.destroy(); silent.close() })
  const { port } = silent.address() as AddressInfo
  const startedAt = Date.now()
  const err = await buildApp(t, { sse: { engine: redisEngine({ url: `redis://127.0.0.1:${port}`, connectTimeoutMs: 300 }) } })
    .then(() => undefined, (err: Error & { code?: string }) => err)
  t.equal(err?.code, ENGINE_UNAVAILABLE)
  t.match(err?.message, `redis://127.0.0.1:${port} did not answer within 300 ms`)
  t.ok(Date.now() - startedAt < 5000, 'bounded')
})

t.test('options are checked when the engine is made', async (t) => {
  const client = new Redis({ lazyConnect: true })
  t.equal(thrown(() => redisEngine({ url: 'redis://x', client }))?.code, 'TYPED_SSE_INVALID_OPTION')
  t.equal(thrown(() => redisEngine({ connectTimeoutMs: 0 }))?.code, 'TYPED_SSE_INVALID_OPTION')
  t.equal(thrown(() => redisEngine({ prefix: 1 as unknown as string }))?.code, 'TYPED_SSE_INVALID_OPTION')
  t.equal(thrown(() => redisEngine({ client: {} as unknown as Redis }))?.code, 'TYPED_SSE_INVALID_OPTION')
  client.disconnect()
})
