/**
 * The delivery latency histogram across instances: two apps on one real redis-server,
 * a publish on A, a client on B, and B's `GET /metrics` scraped over HTTP. B measures
 * from A's publish (its timestamp travels in the pub/sub message), not from the moment
 * B heard it; a timestamp no publisher wrote (anyone can PUBLISH to Redis) never
 * crashes B nor skews its histogram.
 */
import { Redis } from 'ioredis'
import { Registry } from 'prom-client'
import t, { type Test } from 'tap'
import { defineEvents, Type, type Channel, type SseEngine } from '../../lib/index.js'
import { channelKey } from '../../lib/engine/redis/keys.js'
import { redisEngine } from '../../lib/redis.js'
import { buildApp, sleep, waitUntil } from '../helpers/app.js'
import { openTracked, seqs } from '../helpers/client.js'
import { scrape, valueOf, type Exposition } from '../helpers/exposition.js'
import { REDIS_MISSING, startRedis, type RedisServer } from '../helpers/redis.js'

const scores = defineEvents({ score: Type.Object({ seq: Type.Integer() }) })
type Scores = typeof scores

/** The histogram's largest finite bound (seconds): every real delivery here is far below it. */
const TOP_BUCKET = '10'

if (REDIS_MISSING !== undefined) t.comment(REDIS_MISSING)
const redis = REDIS_MISSING === undefined ? await startRedis(t) : undefined as unknown as RedisServer

interface Instance {
  /** A channel with history (ids, one Lua script per publish). */
  scores: Channel<Scores>
  /** A channel without history (a plain PUBLISH). */
  live: Channel<Scores>
  port: number
  origin: string
  /** Scrapes this instance's `/metrics` over HTTP. */
  scrape: () => Promise<Exposition>
}

let prefixes = 0

/** An app on its own engine with metrics in its own registry, served on `GET /metrics`. */
async function instance (t: Test, engine: SseEngine): Promise<Instance> {
  const registry = new Registry()
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, engine, metrics: { registry } } })
  const channels = { scores: app.sse.channel('scores', scores, { history: true }), live: app.sse.channel('live', scores) }
  for (const [name, channel] of Object.entries(channels)) {
    app.get(`/${name}`, async (_request, reply) => { await channel.subscribe(reply.sse(scores)) })
  }
  app.get('/metrics', async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()))
  const origin = await start()
  return { ...channels, port: (app.server.address() as { port: number }).port, origin, scrape: async () => await scrape(origin, registry.contentType) }
}

/** Two instances on two engines, same Redis, a prefix of their own; and a plain client to forge messages. */
async function pair (t: Test): Promise<{ a: Instance, b: Instance, prefix: string, admin: Redis }> {
  const prefix = `metrics${++prefixes}:`
  const a = await instance(t, redisEngine({ url: redis.url, prefix }))
  const b = await instance(t, redisEngine({ url: redis.url, prefix }))
  const admin = new Redis(redis.url)
  t.teardown(() => admin.quit())
  return { a, b, prefix, admin }
}

const count = (scraped: Exposition): number => valueOf(scraped, 'sse_publish_delivery_seconds_count')
const bucket = (scraped: Exposition, le: string): number => valueOf(scraped, 'sse_publish_delivery_seconds_bucket', { le })
const sum = (scraped: Exposition): number => valueOf(scraped, 'sse_publish_delivery_seconds_sum')

t.test('publishes on A are counted by B, which delivered them, with a lag from A\'s publish: bounded, not negative', { skip: REDIS_MISSING }, async (t) => {
  const { a, b, prefix, admin } = await pair(t)
  const onScores = openTracked(t, b.port, '/scores')
  const onLive = openTracked(t, b.port, '/live')
  await waitUntil(() => b.scores.size === 1 && b.live.size === 1, 2000, 'both clients subscribed on B')

  for (let seq = 0; seq < 10; seq++) {
    await a.scores.publish('score', { seq })
    await a.live.publish('score', { seq })
  }
  await Promise.all([onScores.waitForEvents(10, 5000), onLive.waitForEvents(10, 5000)])
  let scraped = await b.scrape()
  t.equal(count(scraped), 20, 'one observation per message B wrote, with history and without')
  t.equal(bucket(scraped, TOP_BUCKET), 20, `each lag under ${TOP_BUCKET} s`)
  t.ok(sum(scraped) >= 0 && sum(scraped) < 20 * Number(TOP_BUCKET), `the sum is of 20 plausible lags (${sum(scraped)} s)`)
  t.equal(count(await a.scrape()), 0, 'A, which has no subscriber, wrote nothing and counted nothing')

  // A message published 30 s ago (as a lagging publisher's would be): B counts that lag,
  // which only the timestamp in the message can tell it.
  await admin.publish(channelKey(prefix, 'live'), `\n${Date.now() - 30_000}\nscore\n{"seq":10}`)
  await onLive.waitForEvents(11, 5000)
  scraped = await b.scrape()
  t.equal(count(scraped), 21)
  t.equal(bucket(scraped, TOP_BUCKET), 20, 'the old message is above every finite bucket')
  t.ok(sum(scraped) >= 30, 'its 30 s are in the sum')
  t.same(seqs(onLive), Array.from({ length: 11 }, (_, i) => i))
})

t.test('timestamps no publisher wrote: malformed drops the message, absurd is delivered but not counted, nothing crashes', { skip: REDIS_MISSING }, async (t) => {
  const { a, b, prefix, admin } = await pair(t)
  const onLive = openTracked(t, b.port, '/live')
  const onScores = openTracked(t, b.port, '/scores')
  await waitUntil(() => b.live.size === 1 && b.scores.size === 1, 2000, 'both clients subscribed on B')
  const now = Date.now()
  const hour = 60 * 60 * 1000
  const forged: Array<[timestamp: string, isDelivered: boolean]> = [
    ['', true], // none: delivered, not timed
    ['0', true], // 1970
    [String(now - 2 * hour), true], // older than any live message
    [String(now + 2 * hour), true], // from a clock two hours ahead
    ['99999999999999', true], // the year 5138
    ['abc', false],
    ['-5', false],
    ['1e12', false],
    ['1.5', false],
    [' 12', false],
    ['0012', false],
    ['9'.repeat(16), false], // past 2^53
    [`${now}\r`, false]
  ]
  for (const [i, [timestamp]] of forged.entries()) await admin.publish(channelKey(prefix, 'live'), `\n${timestamp}\nscore\n{"seq":${i}}`)
  // With history the id must be a stream id too; a bad timestamp beside a good id is dropped as well.
  await admin.publish(channelKey(prefix, 'scores'), `1-1\nabc\nscore\n{"seq":-1}`)
  await a.live.publish('score', { seq: forged.length })
  await a.scores.publish('score', { seq: 0 })

  const expected = [...forged.flatMap(([, isDelivered], i) => isDelivered ? [i] : []), forged.length]
  await Promise.all([onLive.waitForEvents(expected.length, 5000), onScores.waitForEvents(1, 5000)])
  await sleep(100) // a dropped message that got through would arrive now
  t.same(seqs(onLive), expected, 'well-formed messages delivered in order, malformed ones dropped')
  t.same(seqs(onScores), [0], 'the forged message on the channel with history was dropped')
  const scraped = await b.scrape()
  t.equal(count(scraped), 2, 'only the two real publishes are counted')
  t.equal(bucket(scraped, TOP_BUCKET), 2)
  t.ok(sum(scraped) >= 0 && sum(scraped) < 2 * Number(TOP_BUCKET), `the sum is untouched by the absurd timestamps (${sum(scraped)} s)`)
})
