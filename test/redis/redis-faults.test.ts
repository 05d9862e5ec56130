/**
 * The Redis engine when Redis fails: killed (SIGKILL) while streams are open, then
 * restarted empty on the same port; one instance's subscription cut alone; publishes
 * in flight when Redis dies; closing while Redis is away. Each test has its own
 * redis-server, so killing it touches nothing else.
 */
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { defineEvents, RESYNC_EVENT, Type, type Channel, type SseEngine } from '../../lib/index.js'
import { redisEngine } from '../../lib/redis.js'
import { buildApp, sleep, waitUntil, withTimeout, type LogLine } from '../helpers/app.js'
import { countGaps, killNamed, REDIS_MISSING, startRedis } from '../helpers/redis.js'
import { openTracked, seqs, type RawStream } from '../helpers/client.js'

const scores = defineEvents({ score: Type.Object({ seq: Type.Integer() }) })
type Scores = typeof scores

const ENGINE_UNAVAILABLE = 'TYPED_SSE_ENGINE_UNAVAILABLE'
/** Reconnection backs off up to 2 s (ours) or 5 s (ioredis's default, on a user's client). */
const RECOVERY_MS = 10_000

if (REDIS_MISSING !== undefined) t.comment(REDIS_MISSING)

interface Instance {
  channel: Channel<Scores>
  port: number
  logs: LogLine[]
  close: () => Promise<void>
}

async function instance (t: Test, engine: SseEngine): Promise<Instance> {
  const { app, start, logs } = await buildApp(t, { sse: { heartbeatMs: false, engine } })
  const channel = app.sse.channel('scores', scores, { history: true })
  app.get('/scores', async (_request, reply) => { await channel.subscribe(reply.sse(scores)) })
  await start()
  return { channel, port: (app.server.address() as { port: number }).port, logs, close: async () => await app.close() }
}

function open (t: Test, target: Instance, lastEventId?: string): RawStream {
  return openTracked(t, target.port, '/scores', lastEventId)
}

/** The seq of every `score` event received (control events such as sse:resync left out). */
function scoreSeqs (client: RawStream): number[] {
  return client.parser.events.filter((event) => event.type === 'score').map((event) => (JSON.parse(event.data) as { seq: number }).seq)
}

/** A user's client as an application would make one: default options, its own error listener. */
function userClient (t: Test, url: string, connectionName?: string): Redis {
  const client = new Redis(url, connectionName === undefined ? {} : { connectionName })
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  return client
}

/** Publishes until it succeeds (Redis is coming back), bounded. */
async function publishWhenBack (channel: Channel<Scores>, seq: number): Promise<void> {
  const deadline = Date.now() + RECOVERY_MS
  for (;;) {
    try {
      await channel.publish('score', { seq })
      return
    } catch (err) {
      if ((err as { code?: string }).code !== ENGINE_UNAVAILABLE || Date.now() > deadline) throw err
      await sleep(50)
    }
  }
}

t.test('Redis killed while streams are open: nothing crashes, streams stay open, publish fails at once with a code; restarted: delivery resumes', { skip: REDIS_MISSING }, async (t) => {
  const redis = await startRedis(t)
  const a = await instance(t, redisEngine({ url: redis.url }))
  // B runs on a client of the user's, with ioredis's defaults (an offline queue).
  const engineB = countGaps(redisEngine({ client: userClient(t, redis.url) }))
  const b = await instance(t, engineB)
  const onA = open(t, a)
  const onB = open(t, b)
  await waitUntil(() => a.channel.size === 1 && b.channel.size === 1, 2000, 'both subscribed')
  for (let seq = 0; seq < 3; seq++) await a.channel.publish('score', { seq })
  await Promise.all([onA.waitForEvents(3), onB.waitForEvents(3)])
  const oldId = onB.parser.lastEventId

  await redis.kill('SIGKILL')
  for (const target of [a, b]) {
    const startedAt = Date.now()
    const err = await target.channel.publish('score', { seq: -1 }).then(() => undefined, (err: Error & { code?: string }) => err)
    t.equal(err?.code, ENGINE_UNAVAILABLE, 'publish rejects with the coded error')
    t.ok(Date.now() - startedAt < 1000, 'at once, not after retries')
  }
  const duringOutage = open(t, b, oldId)
  await withTimeout(duringOutage.ended, 2000, 'a replay while Redis is away')
  t.ok(b.logs.some((line) => line.err?.code === ENGINE_UNAVAILABLE), 'the failed replay is logged with its code (the client retries)')
  await sleep(300)
  t.ok(a.channel.size === 1 && b.channel.size === 1, 'the open streams stay subscribed')
  t.notOk(onA.socket.destroyed || onB.socket.destroyed, 'and their connections open')

  await redis.start() // same port, empty: it saves nothing
  await publishWhenBack(a.channel, 100)
  await publishWhenBack(b.channel, 101)
  await waitUntil(() => scoreSeqs(onA).includes(101) && scoreSeqs(onB).includes(101), RECOVERY_MS, 'A and B: 101')
  await sleep(100)
  t.same(scoreSeqs(onA), [0, 1, 2, 100, 101], 'A: delivery resumed on the same connection, nothing twice')
  // B hears 100 only if its subscription was back before A published it; if not, the
  // restarted (empty) Redis cannot give it back, and B must say so.
  const onBSeqs = scoreSeqs(onB)
  t.ok(onBSeqs.join() === '0,1,2,100,101' || (onBSeqs.join() === '0,1,2,101' && engineB.gaps > 0),
    `B: every event once, or the one it missed reported as a gap (${onBSeqs.join()}, ${engineB.gaps} gaps)`)

  // The restarted Redis has a new stream: an id from the old one cannot be replayed.
  const late = open(t, b, oldId)
  const [resync] = await late.waitForEvents(1)
  t.equal(resync.type, RESYNC_EVENT)
  t.equal(JSON.parse(resync.data).reason, 'unknown', 'an id from before the restart is unknown')
})

t.test('an instance whose subscription was cut delivers what others published meanwhile, once, in order', { skip: REDIS_MISSING }, async (t) => {
  const redis = await startRedis(t)
  const a = await instance(t, redisEngine({ url: redis.url }))
  // Its subscriber is a duplicate of this client, so it carries the name too.
  const b = await instance(t, redisEngine({ client: userClient(t, redis.url, 'instance-b') }))
  const admin = userClient(t, redis.url)
  const onB = open(t, b)
  await waitUntil(() => b.channel.size === 1, 2000, 'subscribed on B')

  let seq = 0
  const publishing = (async () => { for (; seq < 400; seq++) await a.channel.publish('score', { seq }) })()
  await waitUntil(() => seq >= 50, 3000, 'publishing under way')
  const list = await admin.client('LIST') as string
  const subscriber = list.split('\n').find((line) => line.includes(' name=instance-b ') && / sub=[1-9]/.test(line))
  const id = /^id=(\d+)/.exec(subscriber ?? '')?.[1]
  t.ok(id, "found B's subscriber connection")
  const killedAt = seq
  t.equal(await admin.client('KILL', 'ID', id as string), 1, "killed B's subscriber connection alone")
  await publishing
  await onB.waitForEvents(400, RECOVERY_MS)
  await sleep(100)
  t.ok(killedAt < 400, `cut at event ${killedAt}, while A published`)
  t.same(seqs(onB), Array.from({ length: 400 }, (_, i) => i), 'all 400 events once, in order: the gap was read back from the stream')
})

t.test('both connections of an instance cut while another publishes: its open streams get every event once, in order, or the engine reports the gap (3 trials)', { skip: REDIS_MISSING }, async (t) => {
  const redis = await startRedis(t)
  const admin = userClient(t, redis.url)
  for (let trial = 0; trial < 3; trial++) {
    const a = await instance(t, redisEngine({ url: redis.url, prefix: `trial${trial}:` }))
    // A template that never connects itself: only the engine's two duplicates carry the name.
    const template = new Redis(redis.url, { connectionName: `trial${trial}-b`, lazyConnect: true })
    const engineB = countGaps(redisEngine({ client: template, prefix: `trial${trial}:` }))
    const b = await instance(t, engineB)
    const streams = [open(t, b), open(t, b)]
    await waitUntil(() => b.channel.size === 2, 2000, 'subscribed on B')
    await b.channel.publish('score', { seq: 0 }) // B is subscribed and has a position
    let seq = 1
    const publishing = (async () => {
      for (; seq < 600; seq++) {
        await a.channel.publish('score', { seq })
        if (seq % 5 === 0) await sleep(10) // about 500 a second
      }
    })()
    await waitUntil(() => seq >= 150, 3000, 'publishing under way')
    const killedAt = seq
    const killed = await killNamed(admin, `trial${trial}-b`)
    await publishing
    t.equal(killed, 2, `trial ${trial}: B's command and subscriber connections killed at event ${killedAt}`)
    await Promise.all(streams.map(async (stream) => await waitUntil(() => scoreSeqs(stream).includes(599), RECOVERY_MS, `trial ${trial}: the last event`)))
    await sleep(100)
    for (const stream of streams) {
      const got = scoreSeqs(stream)
      const isExact = got.length === 600 && got.every((value, i) => value === i)
      t.ok(got.every((value, i) => i === 0 || got[i - 1] < value), `trial ${trial}: in order, nothing twice`)
      t.ok(isExact || engineB.gaps > 0, `trial ${trial}: all 600 events (${got.length}) or a gap reported (${engineB.gaps})`)
    }
  }
})

t.test('publishes in flight when Redis dies settle with the coded error; close() while Redis is away does not hang', { skip: REDIS_MISSING }, async (t) => {
  const redis = await startRedis(t)
  const a = await instance(t, redisEngine({ url: redis.url }))
  const settled = Promise.allSettled(Array.from({ length: 500 }, async (_, seq) => await a.channel.publish('score', { seq })))
  await redis.kill('SIGKILL')
  const results = await withTimeout(settled, 3000, 'in-flight publishes')
  const codes = new Set(results.flatMap((result) => result.status === 'rejected' ? [(result.reason as { code?: string }).code] : []))
  t.ok(codes.size <= 1 && [...codes].every((code) => code === ENGINE_UNAVAILABLE), `every rejection is coded (${[...codes].join()})`)
  const startedAt = Date.now()
  await withTimeout(a.close(), 3000, 'close while Redis is away')
  t.ok(Date.now() - startedAt < 1500, 'close() returned promptly')
})
