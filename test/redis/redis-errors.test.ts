/**
 * A Redis engine that cannot connect says where and why, against a real redis-server:
 * the address (never the password) and the cause (a refused port, refused credentials,
 * a host that does not resolve), at once rather than after the connect timeout; and
 * options a user gets wrong (an http:// URL, `url: undefined` from an unset variable, a
 * misspelt key) are refused when the engine is created.
 */
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import t from 'tap'
import sse from '../../lib/index.js'
import { redisEngine } from '../../lib/redis.js'
import { connectionFailure } from '../../lib/engine/redis/connections.js'
import { redact, resolveRedisOptions } from '../../lib/engine/redis/options.js'
import { freePort, REDIS_MISSING, RedisServer } from '../helpers/redis.js'

if (REDIS_MISSING !== undefined) t.comment(REDIS_MISSING)

/**
 * Far longer than any failure here may take: a failure seen at once must not wait for
 * it (before, a refused connection waited the whole timeout, then said only that).
 */
const CONNECT_TIMEOUT_MS = 60_000
/**
 * A refused connection is seen in milliseconds: this is 100 times that, for a busy 2-core
 * machine, and far below the connect timeout (before, ready() waited 10 s and more).
 */
const FAST_MS = 5000
t.setTimeout(120_000)

interface Failure { code?: string, message: string, elapsedMs: number }

/** Registers the plugin with a Redis engine for `url` and returns how `ready()` failed. */
async function readyFailure (url: string): Promise<Failure | undefined> {
  const app = Fastify()
  const started = Date.now()
  try {
    await app.register(sse, { engine: redisEngine({ url, connectTimeoutMs: CONNECT_TIMEOUT_MS }) })
    await app.ready()
    return undefined
  } catch (err) {
    return { code: (err as { code?: string }).code, message: (err as Error).message, elapsedMs: Date.now() - started }
  } finally {
    await app.close().catch(() => {})
  }
}

t.test('a refused connection fails ready() at once, naming the address and ECONNREFUSED', { skip: REDIS_MISSING }, async (t) => {
  // A port nobody listens on, as a wrong REDIS_URL or a Redis not started gives.
  const port = await freePort()
  const failure = await readyFailure(`redis://127.0.0.1:${port}`)
  t.equal(failure?.code, 'TYPED_SSE_ENGINE_UNAVAILABLE')
  t.match(failure?.message, `redis://127.0.0.1:${port}`, 'the address')
  t.match(failure?.message, 'ECONNREFUSED', 'the cause')
  t.ok(failure !== undefined && failure.elapsedMs < FAST_MS, `at once (${failure?.elapsedMs} ms, not the ${CONNECT_TIMEOUT_MS} ms timeout)`)
})

t.test('refused credentials fail ready() at once, with the address but never the password', { skip: REDIS_MISSING }, async (t) => {
  const server = new RedisServer(await freePort(), ['--requirepass', 'the-right-one'])
  t.teardown(async () => await server.kill())
  await server.start()
  for (const url of [`redis://:wrong-secret@127.0.0.1:${server.port}`, `redis://app:wrong-secret@127.0.0.1:${server.port}/0`]) {
    const failure = await readyFailure(url)
    t.equal(failure?.code, 'TYPED_SSE_ENGINE_UNAVAILABLE', url)
    t.match(failure?.message, `127.0.0.1:${server.port}`, 'the address')
    t.match(failure?.message, /WRONGPASS/, 'the cause: Redis refused the credentials')
    t.notMatch(failure?.message, 'wrong-secret', 'never the password')
    t.ok(failure !== undefined && failure.elapsedMs < FAST_MS, `at once (${failure?.elapsedMs} ms)`)
  }
  t.equal(await readyFailure(`redis://:the-right-one@127.0.0.1:${server.port}`), undefined, 'the right password connects')
})

t.test('a host name that does not resolve fails ready(), naming it', { skip: REDIS_MISSING }, async (t) => {
  // .invalid never resolves (RFC 2606).
  const failure = await readyFailure('redis://:secret@nohost.invalid:6379')
  t.equal(failure?.code, 'TYPED_SSE_ENGINE_UNAVAILABLE')
  t.match(failure?.message, 'nohost.invalid', 'the host')
  t.match(failure?.message, /ENOTFOUND|EAI_AGAIN/, 'the cause')
  t.notMatch(failure?.message, 'secret', 'never the password')
})

t.test('an http:// URL is refused when the engine is created, before anything connects', { skip: REDIS_MISSING }, async (t) => {
  const server = new RedisServer(await freePort())
  t.teardown(async () => await server.kill())
  await server.start()
  for (const url of [`http://127.0.0.1:${server.port}`, `https://user:secret@127.0.0.1:${server.port}`, '127.0.0.1:6379']) {
    const err = thrown(() => redisEngine({ url }))
    t.equal(err?.code, 'TYPED_SSE_INVALID_OPTION', url)
    t.match(err?.message, /redis:\/\//, 'says which scheme to use')
    t.notMatch(err?.message, 'secret', 'never the password')
  }
  t.same(await server.clients(), [], 'no connection was opened')
})

t.test('url: undefined (an unset environment variable) is an error, not 127.0.0.1:6379', async (t) => {
  const err = thrown(() => redisEngine({ url: undefined }))
  t.equal(err?.code, 'TYPED_SSE_INVALID_OPTION')
  t.match(err?.message, 'url')
})

t.test('a misspelt engine or admission option is refused, naming it and the known ones', async (t) => {
  const untyped = redisEngine as (options: Record<string, unknown>) => unknown
  for (const [options, key] of [
    [{ url: 'redis://127.0.0.1:6379', prfix: 'app:' }, 'prfix'],
    [{ url: 'redis://127.0.0.1:6379', connectTimeout: 1000 }, 'connectTimeout'],
    [{ url: 'redis://127.0.0.1:6379', admission: { leaseTTLMs: 1000 } }, 'admission.leaseTTLMs']
  ] as Array<[Record<string, unknown>, string]>) {
    const err = thrown(() => untyped(options))
    t.equal(err?.code, 'TYPED_SSE_INVALID_OPTION', key)
    t.match(err?.message, `"${key}"`, 'names the key')
    t.match(err?.message, 'known:', 'lists the known keys')
  }
})

function thrown (fn: () => unknown): (Error & { code?: string }) | undefined {
  try {
    fn()
  } catch (err) {
    return err as Error & { code?: string }
  }
  return undefined
}

t.test('the address in messages: URL without its password, a cluster by its nodes, a client by its host', async (t) => {
  t.equal(resolveRedisOptions({ url: 'redis://app:secret@cache.internal:6380/2' }).address, 'redis://app@cache.internal:6380/2')
  t.equal(resolveRedisOptions({}).address, 'redis://127.0.0.1:6379', 'the default')
  t.equal(resolveRedisOptions({ url: '/run/redis.sock' }).address, '/run/redis.sock', 'a Unix socket')
  t.equal(resolveRedisOptions({ cluster: { nodes: [{ host: '10.0.0.1', port: 7000 }, 7001, 'redis://:secret@10.0.0.3:7002'] } }).address,
    'cluster 10.0.0.1:7000, 127.0.0.1:7001, redis://10.0.0.3:7002')
  const client = new Redis({ host: '10.0.0.9', port: 6390, password: 'secret', lazyConnect: true })
  t.teardown(() => client.disconnect())
  t.equal(resolveRedisOptions({ client }).address, 'redis://10.0.0.9:6390')
  t.equal(redact('not a url //user:secret@host'), 'not a url //host', 'text that is no URL loses its credentials too')
})

t.test('causes: which end the wait at once, and what each message says', async (t) => {
  const address = 'redis://cache:6379'
  const cases: Array<[unknown, boolean, RegExp]> = [
    [Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), true, /refused the connection \(ECONNREFUSED\)/],
    [Object.assign(new Error('getaddrinfo ENOTFOUND cache'), { code: 'ENOTFOUND', hostname: 'cache' }), true, /host name cache .* does not resolve/],
    // A DNS server that did not answer may answer the next time: wait for the deadline.
    [Object.assign(new Error('getaddrinfo EAI_AGAIN cache'), { code: 'EAI_AGAIN', hostname: 'cache' }), false, /EAI_AGAIN/],
    [new Error('WRONGPASS invalid username-password pair or user is disabled.'), true, /refused the credentials \(WRONGPASS/],
    // A cluster's error carries its last node's.
    [Object.assign(new Error('Failed to refresh slots cache.'), { lastNodeError: Object.assign(new Error('x'), { code: 'ECONNREFUSED' }) }), true, /ECONNREFUSED/],
    [Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), false, /failed: ECONNRESET/]
  ]
  for (const [err, isFinal, message] of cases) {
    const failure = connectionFailure(address, err)
    t.equal(failure.isFinal, isFinal, (err as Error).message)
    t.match(failure.message, message)
    t.match(failure.message, address, 'names the address')
  }
})
