/**
 * `maxStreamsPerKey` across instances with the Redis engine: two app instances (one of
 * them a child process, to be killed with streams open) share one private Redis; real
 * HTTP clients open the streams. The refusal is the one of the local limit (503,
 * Retry-After, TYPED_SSE_TOO_MANY_STREAMS, counted as max_streams_per_key), a closed
 * stream frees its slot everywhere, a killed instance's slots expire, and while Redis
 * is away a new stream is refused with TYPED_SSE_ENGINE_UNAVAILABLE (or admitted by
 * the local count, when asked).
 */
import { spawn } from 'node:child_process'
import { get } from 'node:http'
import type { FastifyInstance } from 'fastify'
import { fileURLToPath } from 'node:url'
import { Registry } from 'prom-client'
import t from 'tap'
import { defineEvents, Type, type SsePluginOptions } from '../../lib/index.js'
import { redisEngine, type RedisAdmissionOptions } from '../../lib/redis.js'
import { buildApp, childOrigin, sleep, thrown, waitUntil, withTimeout, type Teardown } from '../helpers/app.js'
import { openStream, rawConnect, type StreamClient } from '../helpers/client.js'
import { delayProxy } from '../helpers/delay-proxy.js'
import { rawCommand, REDIS_MISSING, startRedis, type RedisServer } from '../helpers/redis.js'

const events = defineEvents({ ready: Type.Boolean() })
const LIMIT = 2

/** An app instance on the shared Redis: `{ sse }` route `/s`, keyed by `x-user`, metrics in a registry of its own. */
async function instance (t: Teardown, url: string, admission: RedisAdmissionOptions | false, routes?: (app: FastifyInstance) => void, sse: SsePluginOptions = {}) {
  const registry = new Registry()
  const built = await buildApp(t, {
    sse: {
      heartbeatMs: false,
      maxStreamsPerKey: LIMIT,
      streamKey: (request) => String(request.headers['x-user']),
      engine: redisEngine({ url, admission }),
      metrics: { registry },
      ...sse
    }
  })
  built.app.get('/s', { sse: events }, (_request, reply) => {
    reply.sse().send('ready', true)
  })
  routes?.(built.app)
  return { ...built, registry, origin: await built.start() }
}

/** Opens `/s` as `user`; an admitted stream has sent its first event. */
async function open (t: Teardown, origin: string, user: string, path = '/s'): Promise<StreamClient> {
  const client = await openStream(t, `${origin}${path}`, { 'x-user': user })
  if (client.statusCode === 200) await client.events(1, 5000)
  return client
}

/** The error code of a refused request (its JSON body). */
async function codeOf (client: StreamClient): Promise<string> {
  await withTimeout(client.ended, 3000, 'error body')
  return (JSON.parse(Buffer.concat(client.chunks).toString()) as { code: string }).code
}

/** Leases of `user` in Redis now (expired ones too, until a count or the key's own expiry drops them). */
async function leases (redis: RedisServer, user: string): Promise<number> {
  return Number(/^:(\d+)/.exec(await rawCommand(redis.port, `ZCARD sse:admission:{${user}}`))?.[1])
}

async function rejectedPerKey (registry: Registry): Promise<number | undefined> {
  const metric = registry.getSingleMetric('sse_streams_rejected_total')
  const { values } = await (metric as NonNullable<typeof metric>).get()
  return values.find((value) => value.labels.reason === 'max_streams_per_key')?.value
}

t.test('two instances share the limit per key: the third stream is refused on either, as the local limit refuses it; a close frees a slot everywhere; keys are independent', { skip: REDIS_MISSING }, async (t) => {
  const redis = await startRedis(t)
  const leaseTtlMs = 1000
  const a = await instance(t, redis.url, { leaseTtlMs })
  const b = await instance(t, redis.url, { leaseTtlMs })
  t.equal((await open(t, a.origin, 'u1')).statusCode, 200)
  const onB = await open(t, b.origin, 'u1')
  t.equal(onB.statusCode, 200, 'one stream of u1 on each instance')

  for (const { origin, app, registry } of [a, b]) {
    const refused = await open(t, origin, 'u1')
    t.equal(refused.statusCode, 503, 'a third stream of u1 is refused')
    t.equal(refused.headers['retry-after'], '5', 'with Retry-After, as the local limit sends it')
    t.equal(await codeOf(refused), 'TYPED_SSE_TOO_MANY_STREAMS')
    t.equal(app.sse.stats().rejected.max_streams_per_key, 1, 'counted by the hub as max_streams_per_key')
    t.equal(await rejectedPerKey(registry), 1, 'and by sse_streams_rejected_total{reason="max_streams_per_key"}')
    t.equal(app.sse.stats().streamKeys, 1, 'the refused request holds no slot here')
  }

  t.equal((await open(t, a.origin, 'u2')).statusCode, 200, 'another key is independent')
  t.equal((await open(t, b.origin, 'u2')).statusCode, 200)
  t.equal((await open(t, b.origin, 'u2')).statusCode, 503, 'and has its own limit')

  // Past three times the lease time to live, the leases of open streams are still held (renewed).
  await sleep(3 * leaseTtlMs)
  t.equal(await leases(redis, 'u1'), LIMIT, 'renewed leases did not expire')
  t.equal((await open(t, a.origin, 'u1')).statusCode, 503, 'u1 is still at its limit')

  onB.destroy()
  await waitUntil(() => b.app.sse.stats().openStreams === 1, 3000, 'the stream on B closed')
  // The release is sent when the stream closes; poll Redis for it, bounded.
  const deadline = Date.now() + 5000
  while (await leases(redis, 'u1') !== 1) {
    if (Date.now() > deadline) t.fail('the closed stream\'s lease was not released within 5 s')
    if (Date.now() > deadline) break
    await sleep(20)
  }
  t.equal((await open(t, a.origin, 'u1')).statusCode, 200, 'the slot freed on B is taken on A')
  t.equal((await open(t, b.origin, 'u1')).statusCode, 503, 'and the limit holds again everywhere')
})

t.test('an instance killed (SIGKILL) with streams open: its slots are refused until its leases expire, then free', { skip: REDIS_MISSING }, async (t) => {
  const redis = await startRedis(t)
  const leaseTtlMs = 1500
  const a = await instance(t, redis.url, { leaseTtlMs })
  // tsx (esbuild) loads the child's TypeScript in a few seconds, where tap's loader takes far longer on a busy machine.
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../helpers/admission-child.ts', import.meta.url)), redis.url, String(LIMIT), String(leaseTtlMs)], {
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)))
  const origin = await childOrigin(child)

  await open(t, origin, 'u1')
  await open(t, origin, 'u1')
  t.equal(await leases(redis, 'u1'), LIMIT, 'the child holds both slots of u1')
  t.equal((await open(t, a.origin, 'u1')).statusCode, 503, 'so A refuses u1')

  child.kill('SIGKILL')
  t.equal(await withTimeout(exited, 5000, 'child exit'), 'SIGKILL')
  const killedAt = Date.now()
  // Bounded by the time to live plus a margin for a busy machine; polled, not slept.
  const deadline = killedAt + leaseTtlMs + 10_000
  let admitted: StreamClient | undefined
  let refusals = 0
  while (admitted === undefined && Date.now() < deadline) {
    const client = await open(t, a.origin, 'u1')
    if (client.statusCode === 200) admitted = client
    else refusals++
    if (admitted === undefined) await sleep(100)
  }
  const elapsed = Date.now() - killedAt
  t.ok(admitted !== undefined, `u1 admitted on A after the child's leases expired (${elapsed} ms after the kill, lease TTL ${leaseTtlMs} ms)`)
  t.ok(refusals > 0, `refused while the dead instance's leases were valid (${refusals} refusals)`)
  t.ok(elapsed <= leaseTtlMs + 10_000, 'within the lease time to live plus margin')
})

t.test('Redis unreachable at admission: refused with 503 + Retry-After and TYPED_SSE_ENGINE_UNAVAILABLE; with whenUnavailable: \'admit\' the local count decides, and the leases are counted again when Redis is back', { skip: REDIS_MISSING }, async (t) => {
  const redis = await startRedis(t)
  const leaseTtlMs = 1000
  const strict = await instance(t, redis.url, { leaseTtlMs })
  const lenient = await instance(t, redis.url, { leaseTtlMs, whenUnavailable: 'admit' })
  t.equal((await open(t, strict.origin, 'u1')).statusCode, 200)

  await redis.kill()
  await waitUntil(() => strict.app.sse.health() !== 'connected' && lenient.app.sse.health() !== 'connected', 5000, 'both engines see Redis gone')
  const refused = await open(t, strict.origin, 'u3')
  t.equal(refused.statusCode, 503, 'fail closed: the shared count cannot be read')
  t.equal(refused.headers['retry-after'], '5')
  t.equal(await codeOf(refused), 'TYPED_SSE_ENGINE_UNAVAILABLE')
  t.equal(strict.app.sse.stats().streamKeys, 1, 'the refused request left no local slot behind')
  t.equal(strict.app.sse.stats().rejected.max_streams_per_key, 0, 'not counted as a limit reached')
  t.equal(strict.app.sse.stats().rejected.admission_unavailable, 1, 'counted as admission_unavailable')

  t.equal((await open(t, lenient.origin, 'u1')).statusCode, 200, "whenUnavailable: 'admit': admitted by the local count")
  t.equal((await open(t, lenient.origin, 'u1')).statusCode, 200)
  const overLocal = await open(t, lenient.origin, 'u1')
  t.equal(overLocal.statusCode, 503, 'the local limit still holds')
  t.equal(await codeOf(overLocal), 'TYPED_SSE_TOO_MANY_STREAMS')

  await redis.start()
  // Renewals add back every open stream's lease (Redis restarted empty): 1 of strict + 2 of lenient.
  const deadline = Date.now() + 15_000
  while (await leases(redis, 'u1').catch(() => 0) !== 3) {
    if (Date.now() > deadline) break
    await sleep(50)
  }
  t.equal(await leases(redis, 'u1'), 3, 'every open stream of u1 is counted again once Redis is back')
  await waitUntil(() => strict.app.sse.health() === 'connected', 10_000, 'strict reconnected')
  const again = await open(t, strict.origin, 'u1')
  t.equal(again.statusCode, 503, 'u1 is over the limit cluster-wide, although strict holds 1')
  t.equal(await codeOf(again), 'TYPED_SSE_TOO_MANY_STREAMS')
})

t.test('slots taken before the handler are given back when it answers without a stream; streams of routes without { sse } count everywhere', { skip: REDIS_MISSING }, async (t) => {
  const redis = await startRedis(t)
  const a = await instance(t, redis.url, { leaseTtlMs: 5000 }, (app) => {
    app.get<{ Reply: { snapshot: boolean } }>('/json', { sse: events }, async () => ({ snapshot: true }))
    app.get('/fails', { sse: events }, async () => { throw new Error('handler failed') })
    app.get('/manual', (_request, reply) => { reply.sse(events).send('ready', true) })
  })
  const b = await instance(t, redis.url, { leaseTtlMs: 5000 })
  for (let i = 0; i < 3; i++) {
    const json = await openStream(t, `${a.origin}/json`, { 'x-user': 'u4' })
    t.equal(json.statusCode, 200)
    await withTimeout(json.ended, 3000, 'json body')
    t.same(JSON.parse(Buffer.concat(json.chunks).toString()), { snapshot: true })
    const failed = await openStream(t, `${a.origin}/fails`, { 'x-user': 'u4' })
    t.equal(failed.statusCode, 500, `answer ${i + 1} of each: no slot kept (the limit is ${LIMIT})`)
  }
  await waitUntil(() => a.app.sse.stats().streamKeys === 0, 3000, 'no local slot held')
  const deadline = Date.now() + 5000
  while (await leases(redis, 'u4') !== 0 && Date.now() < deadline) await sleep(20)
  t.equal(await leases(redis, 'u4'), 0, 'no lease held in Redis')

  // A client that leaves while its slot is being counted (Redis frozen for a moment,
  // less than commandTimeoutMs): the slot taken after it left is given back.
  redis.signal('SIGSTOP')
  const leaving = await rawConnect(t, Number(new URL(a.origin).port), '/json', { headers: 'x-user: u6\r\n' })
  await waitUntil(() => a.app.sse.stats().streamKeys === 1, 1000, 'the request waits for Redis, its local slot taken')
  leaving.socket.destroy()
  await sleep(100)
  redis.signal('SIGCONT')
  const gone = Date.now() + 5000
  while ((a.app.sse.stats().streamKeys !== 0 || await leases(redis, 'u6') !== 0) && Date.now() < gone) await sleep(20)
  t.equal(a.app.sse.stats().streamKeys, 0, 'no local slot kept for a client that left')
  t.equal(await leases(redis, 'u6'), 0, 'no lease kept in Redis')

  // reply.sse(catalog) outside a { sse } route cannot wait for Redis: the local count
  // refuses there, and its streams are counted cluster-wide for the { sse } routes.
  t.equal((await open(t, a.origin, 'u5', '/manual')).statusCode, 200)
  t.equal((await open(t, a.origin, 'u5', '/manual')).statusCode, 200)
  t.equal((await open(t, a.origin, 'u5', '/manual')).statusCode, 503, 'refused by the local count')
  const until = Date.now() + 5000
  while (await leases(redis, 'u5') !== LIMIT && Date.now() < until) await sleep(20)
  t.equal(await leases(redis, 'u5'), LIMIT, 'counted in Redis')
  t.equal((await open(t, b.origin, 'u5')).statusCode, 503, 'so another instance refuses u5')
})

t.test('admission: false counts per instance, as the in-memory engine does', { skip: REDIS_MISSING }, async (t) => {
  const redis = await startRedis(t)
  const a = await instance(t, redis.url, false)
  const b = await instance(t, redis.url, false)
  for (const { origin } of [a, b]) {
    t.equal((await open(t, origin, 'u1')).statusCode, 200)
    t.equal((await open(t, origin, 'u1')).statusCode, 200)
  }
  t.equal((await open(t, a.origin, 'u1')).statusCode, 503, 'the limit holds per instance')
  t.equal(await leases(redis, 'u1'), 0, 'nothing is kept in Redis')
})

t.test('bad admission options are refused with a coded error before anything connects', async (t) => {
  const cases: Array<[unknown, ErrorConstructor]> = [
    ['yes', TypeError],
    [null, TypeError],
    [{ leaseTtlMs: 0 }, RangeError],
    [{ leaseTtlMs: 99 }, RangeError],
    [{ leaseTtlMs: 1.5e3 + 0.5 }, RangeError],
    [{ leaseTtlMs: '15000' }, TypeError],
    [{ whenUnavailable: 'sometimes' }, TypeError],
    [{ leaseTTL: 1000 }, TypeError]
  ]
  for (const [admission, kind] of cases) {
    const err = thrown(() => redisEngine({ url: 'redis://127.0.0.1:1', admission: admission as RedisAdmissionOptions }))
    t.equal(err?.code, 'TYPED_SSE_INVALID_OPTION', JSON.stringify(admission))
    t.ok(err instanceof kind, `${JSON.stringify(admission)}: a ${kind.name}`)
  }
})

t.test('a client that left before the shared count was asked (a slow preHandler) leaves no slot behind', { skip: REDIS_MISSING }, async (t) => {
  const redis = await startRedis(t)
  const a = await instance(t, redis.url, { leaseTtlMs: 1000 }, (app) => {
    app.get('/slow', {
      sse: events,
      preHandler: async () => { await sleep(300) }
    }, async () => {
      throw Object.assign(new Error('not signed in'), { statusCode: 401 })
    })
  })
  for (let i = 0; i < LIMIT + 1; i++) {
    const request = get(`${a.origin}/slow`, { agent: false, headers: { accept: 'text/event-stream', 'x-user': 'u1' } })
    request.on('error', () => {})
    await sleep(50)
    request.destroy()
  }
  await sleep(600) // every preHandler and handler has run by now
  t.equal(a.app.sse.stats().streamKeys, 0, 'no slot kept on this instance')
  t.equal(await leases(redis, 'u1'), 0, 'no lease kept in Redis')
  t.equal((await open(t, a.origin, 'u1')).statusCode, 200, 'the key is not locked out')
})

t.test('maxStreams holds on { sse } routes while the shared count is asked: a burst does not pass it', { skip: REDIS_MISSING }, async (t) => {
  const redis = await startRedis(t)
  // Every round trip to Redis takes 200 ms more, so the burst's reservations all overlap.
  const slowLink = await delayProxy(t, redis.port, 100)
  const a = await instance(t, `redis://127.0.0.1:${slowLink}`, { leaseTtlMs: 5000 }, undefined, { maxStreams: 2, maxStreamsPerKey: 10 })
  const clients = await Promise.all(Array.from({ length: 6 }, async (_, i) => await openStream(t, `${a.origin}/s`, { 'x-user': `u${i}` })))
  const statuses = clients.map((client) => client.statusCode).sort()
  t.same(statuses, [200, 200, 503, 503, 503, 503], 'two streams, four refused')
  t.equal(a.app.sse.stats().openStreams, 2)
  await waitUntil(() => a.app.sse.stats().streamKeys === 2, 5000, 'refused requests keep no slot')
  t.pass('only the two open streams hold a slot')
})

t.test('with negotiate: false, a request that does not ask for text/event-stream is still counted across instances', { skip: REDIS_MISSING }, async (t) => {
  const redis = await startRedis(t)
  const a = await instance(t, redis.url, { leaseTtlMs: 1000 }, undefined, { negotiate: false })
  const b = await instance(t, redis.url, { leaseTtlMs: 1000 }, undefined, { negotiate: false })
  t.equal((await open(t, a.origin, 'u1')).statusCode, 200)
  t.equal((await open(t, a.origin, 'u1')).statusCode, 200)
  const other = await openStream(t, `${b.origin}/s`, { 'x-user': 'u1', accept: 'application/json' })
  t.equal(other.statusCode, 503, 'the key is full across instances, whatever Accept says')
})
