/**
 * What the Redis engine leaves in Redis, read back from a real, private redis-server:
 * channel keys and the engine's own keys (admission leases) never meet whatever a
 * request names a room, and every key it writes has a time to live, so rooms named
 * from input leave nothing behind for good.
 */
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { defineEvents, RESYNC_EVENT, Type } from '../../lib/index.js'
import { redisEngine, type RedisEngineOptions } from '../../lib/redis.js'
import { admissionKey, channelKey, channelKeys } from '../../lib/engine/redis/keys.js'
import { defineScripts, MAX_GENERATION, publishLimits } from '../../lib/engine/redis/scripts.js'
import { defineStateScripts } from '../../lib/engine/redis/state.js'
import { buildApp, sleep, waitUntil } from '../helpers/app.js'
import { openStream } from '../helpers/client.js'
import { REDIS_MISSING, startRedis, type RedisServer } from '../helpers/redis.js'

const events = defineEvents({ line: Type.Object({ seq: Type.Integer() }) })
const DAY_MS = 86_400_000

if (REDIS_MISSING !== undefined) t.comment(REDIS_MISSING)
const redis = REDIS_MISSING === undefined ? await startRedis(t) : undefined as unknown as RedisServer

let prefixes = 0
/** A key prefix of its own for each test, so tests sharing the Redis never meet. */
function newPrefix (): string {
  return `keys${++prefixes}:`
}

/** An admin connection, closed in teardown. */
function admin (t: Test): Redis {
  const connection = new Redis(redis.url, { lazyConnect: false })
  t.teardown(() => { connection.disconnect() })
  return connection
}

/** Every key under `prefix`, by SCAN (bounded: a test writes a few hundred at most). */
async function keysUnder (redis: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  for (let round = 0; round < 10_000; round++) {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    keys.push(...batch)
    cursor = next
    if (cursor === '0') break
  }
  return [...new Set(keys)].sort()
}

/**
 * An app on the Redis engine: `GET /rooms/:name` subscribes to the room named by the
 * request (history, idle rooms dropped), streams counted per `x-user` across instances.
 */
async function roomsApp (t: Test, prefix: string, engine: RedisEngineOptions = {}, history: boolean | { maxAgeMs: number } = true) {
  const { app, start } = await buildApp(t, {
    sse: {
      heartbeatMs: false,
      maxStreamsPerKey: 2,
      streamKey: (request) => String(request.headers['x-user']),
      engine: redisEngine({ url: redis.url, prefix, admission: { leaseTtlMs: 1000 }, ...engine })
    }
  })
  const room = (name: string): ReturnType<typeof app.sse.channel<typeof events>> => app.sse.channel(name, events, { history, idleMs: 100 })
  app.get('/rooms/:name', { sse: events }, async (request, reply) => {
    await room((request.params as { name: string }).name).subscribe(reply.sse())
  })
  return { app, room, origin: await start() }
}

t.test('a room named like an engine key (admission:{alice}) never touches alice\'s admission; every key is of its kind', { skip: REDIS_MISSING }, async (t) => {
  const prefix = newPrefix()
  const redisAdmin = admin(t)
  const { room, origin } = await roomsApp(t, prefix)
  // The room is fetched again for each publish: with idleMs 100 it may be dropped
  // between two calls on a busy machine (a dropped channel refuses publish).
  const first = await room('admission:{alice}').publish('line', { seq: 1 })

  const alice = await openStream(t, `${origin}/rooms/${encodeURIComponent('admission:{alice}')}`, { 'x-user': 'alice', 'last-event-id': String(first) })
  t.equal(alice.statusCode, 200, 'alice is admitted')
  const second = await openStream(t, `${origin}/rooms/lobby`, { 'x-user': 'alice' })
  t.equal(second.statusCode, 200, 'and her second stream too')
  await room('admission:{alice}').publish('line', { seq: 2 })
  t.same((await alice.events(1))[0].data, '{"seq":2}', 'the room works as a room')

  t.equal(await redisAdmin.type(admissionKey(prefix, 'alice')), 'zset', 'alice\'s admission key holds her leases')
  t.equal(await redisAdmin.zcard(admissionKey(prefix, 'alice')), 2, 'both of them')
  t.equal(await redisAdmin.type(channelKey(prefix, 'admission:{alice}')), 'stream', 'the room has its own stream')
  for (const key of await keysUnder(redisAdmin, prefix)) {
    const type = await redisAdmin.type(key)
    const kind = key.endsWith(':published') ? 'hash' : key.startsWith(`${prefix}ch:{`) ? 'stream' : key.startsWith(`${prefix}admission:{`) ? 'zset' : 'none'
    t.equal(type, kind, `${key} is a ${type}`)
  }
})

t.test('rooms dropped by idleMs leave no key without a time to live', { skip: REDIS_MISSING }, async (t) => {
  const prefix = newPrefix()
  const redisAdmin = admin(t)
  const { app, room, origin } = await roomsApp(t, prefix)
  const ROOMS = 50
  const clients = []
  for (let i = 0; i < ROOMS; i++) clients.push(await openStream(t, `${origin}/rooms/room-${i}`, { 'x-user': `user-${i}` }))
  for (let i = 0; i < ROOMS; i++) await room(`room-${i}`).publish('line', { seq: i })
  await Promise.all(clients.map(async (client) => await client.events(1, 5000)))
  for (const client of clients) client.destroy()
  await waitUntil(() => Object.keys(app.sse.stats().channels).length === 0, 5000, 'idle rooms dropped')

  const keys = await keysUnder(redisAdmin, prefix)
  t.equal(keys.filter((key) => key.startsWith(`${prefix}ch:`) && key.endsWith('}')).length, ROOMS, 'one history per room, kept for clients that come back')
  t.equal(keys.filter((key) => key.endsWith('}:published')).length, ROOMS, 'and its publish ids beside it')
  for (const key of keys) {
    const ttl = await redisAdmin.pttl(key)
    t.ok(ttl > 0, `${key} expires (PTTL ${ttl})`)
  }
  t.ok((await redisAdmin.pttl(channelKey(prefix, 'room-0'))) > DAY_MS - 60_000, 'a history without maxAgeMs lives a day past its last publish')
})

t.test('historyTtlMs: a history unused that long is deleted, and a client coming back with one of its ids gets sse:resync', { skip: REDIS_MISSING }, async (t) => {
  const prefix = newPrefix()
  const redisAdmin = admin(t)
  const historyTtlMs = 400
  const { room, origin } = await roomsApp(t, prefix, { historyTtlMs })
  const ids = [await room('news').publish('line', { seq: 1 }), await room('news').publish('line', { seq: 2 })]
  const ttl = await redisAdmin.pttl(channelKey(prefix, 'news'))
  t.ok(ttl > 0 && ttl <= historyTtlMs, `PTTL ${ttl} within historyTtlMs`)

  const soon = await openStream(t, `${origin}/rooms/news`, { 'x-user': 'a', 'last-event-id': String(ids[0]) })
  t.same((await soon.events(1))[0].data, '{"seq":2}', 'replayed while the history lives')
  soon.destroy()

  for (let i = 0; i < 100 && await redisAdmin.exists(channelKey(prefix, 'news')) === 1; i++) await sleep(50)
  t.equal(await redisAdmin.exists(channelKey(prefix, 'news')), 0, 'the history expired')
  const late = await openStream(t, `${origin}/rooms/news`, { 'x-user': 'a', 'last-event-id': String(ids[0]) })
  const [event] = await late.events(1)
  t.equal(event.type, RESYNC_EVENT, 'told to resync, never a silent gap')
  t.match(JSON.parse(event.data), { channel: 'news', lastEventId: ids[0] })
})

t.test('by default a history lives a day past its last publish, or its maxAgeMs when longer', { skip: REDIS_MISSING }, async (t) => {
  const prefix = newPrefix()
  const redisAdmin = admin(t)
  const short = await roomsApp(t, prefix, {}, { maxAgeMs: 60_000 })
  await short.room('short').publish('line', { seq: 1 })
  const shortTtl = await redisAdmin.pttl(channelKey(prefix, 'short'))
  t.ok(shortTtl > DAY_MS - 60_000 && shortTtl <= DAY_MS, `PTTL ${shortTtl}: a day`)
  const long = await roomsApp(t, prefix, {}, { maxAgeMs: 2 * DAY_MS })
  await long.room('long').publish('line', { seq: 1 })
  const longTtl = await redisAdmin.pttl(channelKey(prefix, 'long'))
  t.ok(longTtl > 2 * DAY_MS - 60_000 && longTtl <= 2 * DAY_MS, `PTTL ${longTtl}: its maxAgeMs`)
})

t.test('historyTtlMs is checked when the engine is made', async (t) => {
  for (const bad of [0, -1, 1.5, '1000']) {
    t.throws(() => redisEngine({ url: 'redis://127.0.0.1:1', historyTtlMs: bad as number }), { code: 'TYPED_SSE_INVALID_OPTION' }, String(bad))
  }
})

t.test('a publish resent after a failover\'s backlog (300 others appended since) is appended and published once', { skip: REDIS_MISSING }, async (t) => {
  const prefix = newPrefix()
  const redisAdmin = admin(t)
  const listener = admin(t)
  const keys = channelKeys(channelKey(prefix, 'backlog'))
  const key = keys.stream
  const heard: string[] = []
  listener.on('message', (_channel: string, text: string) => heard.push(text.slice(0, text.indexOf(' '))))
  await listener.subscribe(key)
  const scripts = defineScripts(redisAdmin, false)
  const BACKLOG = 300
  // The publisher had seen nothing ('0-0') when it sent each of these: ioredis resends
  // a script whose connection closed before the reply, after the others it queued.
  const first = await scripts.append(keys, 'line', '0', publishLimits(1000, 0, 60_000), 'pub.0', '0-0')
  for (let i = 1; i <= BACKLOG; i++) await scripts.append(keys, 'line', String(i), publishLimits(1000, 0, 60_000), `pub.${i.toString(36)}`, '0-0')
  t.equal(await scripts.append(keys, 'line', '0', publishLimits(1000, 0, 60_000), 'pub.0', '0-0'), first, 'the resend answers with the id of its first run')
  t.equal(await redisAdmin.xlen(key), BACKLOG + 1, 'appended once')
  await waitUntil(() => heard.length >= BACKLOG + 1, 5000, 'every publish heard')
  await sleep(100)
  t.equal(heard.length, BACKLOG + 1, 'published once')
  t.equal(new Set(heard).size, heard.length, 'no id heard twice')

  // A keyed publish (channels with `state`) is the same script with more steps.
  const state = defineStateScripts(redisAdmin, false)
  const keyed = await state.append(keys, keys.state, 'line', '{}', publishLimits(1000, 0, 60_000), 'pub.keyed', '0-0', undefined, 'k', 10)
  for (let i = 1; i <= BACKLOG; i++) await scripts.append(keys, 'line', String(i), publishLimits(1000, 0, 60_000), `pub.more${i.toString(36)}`, '0-0')
  t.equal(await state.append(keys, keys.state, 'line', '{}', publishLimits(1000, 0, 60_000), 'pub.keyed', '0-0', undefined, 'k', 10), keyed, 'a keyed resend answers with its first run too')
  t.equal(await redisAdmin.xlen(key), 2 * BACKLOG + 2, 'appended once')

  // What is remembered is bounded (generations of at most MAX_GENERATION ids) and expires with the stream.
  for (let i = 0; i < 2 * MAX_GENERATION; i++) await scripts.append(keys, 'line', String(i), publishLimits(100_000, 0, 60_000), `pub.last${i.toString(36)}`, '0-0')
  const remembered = await redisAdmin.hlen(keys.published) + await redisAdmin.hlen(keys.publishedBefore)
  t.ok(remembered >= MAX_GENERATION && remembered < 2 * MAX_GENERATION, `${remembered} publish ids remembered`)
  t.equal(await redisAdmin.hexists(keys.published, 'pub.0') + await redisAdmin.hexists(keys.publishedBefore, 'pub.0'), 0, 'the oldest are forgotten')
  for (const name of [keys.published, keys.publishedBefore]) {
    const ttl = await redisAdmin.pttl(name)
    t.ok(ttl > 0 && ttl <= 60_000, `${name} expires (PTTL ${ttl})`)
  }
})
