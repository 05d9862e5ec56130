/**
 * Options (lib/options.ts): defaults, validation at register time (plugin) and at open
 * time (stream, before any header is sent), and the effect of the stream options
 * on a live stream.
 */
import Fastify from 'fastify'
import t from 'tap'
import { DEFAULT_CLOSE_GRACE_MS, DEFAULT_HEARTBEAT_MS, resolvePluginOptions } from '../../lib/http/options.js'
import { DEFAULT_MAX_QUEUE_BYTES } from '../../lib/stream/options.js'
import sse, { defineEvents, Type, type CloseReason, type SsePluginOptions } from '../../lib/index.js'
import { buildApp, Inbox, streamRoute, thrown, waitUntil } from '../helpers/app.js'
import { openStream } from '../helpers/client.js'

const events = defineEvents({ n: Type.Integer() })

t.test('defaults', async (t) => {
  t.equal(DEFAULT_HEARTBEAT_MS, 15_000)
  t.equal(DEFAULT_MAX_QUEUE_BYTES, 1024 * 1024)
  t.equal(DEFAULT_CLOSE_GRACE_MS, 1000)
  const resolved = resolvePluginOptions()
  t.equal(resolved.heartbeatMs, DEFAULT_HEARTBEAT_MS)
  t.equal(resolved.closeGraceMs, DEFAULT_CLOSE_GRACE_MS)
  t.same(resolved.stream, { maxQueueBytes: DEFAULT_MAX_QUEUE_BYTES, queuePolicy: 'close', retryMs: undefined, maxDurationMs: false })
  t.ok(Object.isFrozen(resolved), 'resolved options are frozen')
  t.ok(Object.isFrozen(resolved.stream), 'resolved stream options are frozen')
  t.equal(resolvePluginOptions({ heartbeatMs: false }).heartbeatMs, false, 'heartbeatMs: false disables')
  t.equal(resolvePluginOptions({ retryMs: 0 }).stream.retryMs, 0, 'retryMs 0 is kept')
})

const badPluginOptions: Array<[string, unknown]> = [
  ['heartbeatMs', 0], ['heartbeatMs', -1], ['heartbeatMs', 1.5], ['heartbeatMs', '100'], ['heartbeatMs', true], ['heartbeatMs', NaN],
  ['closeGraceMs', 0], ['closeGraceMs', false],
  ['maxQueueBytes', 0], ['maxQueueBytes', Infinity], ['maxQueueBytes', false],
  ['queuePolicy', 'drop-newest'],
  ['retryMs', -1], ['retryMs', 1.5], ['retryMs', '3000'],
  ['maxDurationMs', 0], ['maxDurationMs', true],
  ['engine', {}], ['engine', null]
]

t.test('bad plugin options fail registration with TYPED_SSE_INVALID_OPTION', async (t) => {
  for (const [name, value] of badPluginOptions) {
    const app = Fastify()
    t.teardown(() => app.close())
    const err = await app.register(sse, { [name]: value } as SsePluginOptions).then(() => undefined, (err: unknown) => err as { code?: string })
    t.equal(err?.code, 'TYPED_SSE_INVALID_OPTION', `${name}: ${String(value)}`)
  }
  t.equal(thrown(() => resolvePluginOptions(null as unknown as SsePluginOptions))?.code, 'TYPED_SSE_INVALID_OPTION', 'null options')
})

t.test('bad stream options get an ordinary error reply, before any stream header', async (t) => {
  const { app, start } = await buildApp(t)
  app.get('/bad', (request, reply) => {
    const query = request.query as { name: string, value: string }
    const value: unknown = JSON.parse(query.value)
    reply.sse(events, { [query.name]: value })
  })
  const origin = await start()
  for (const [name, value] of [['maxQueueBytes', 0], ['queuePolicy', 'x'], ['retryMs', -5], ['maxDurationMs', 1.5], ['endsAt', 'soon']]) {
    const response = await fetch(`${origin}/bad?name=${name}&value=${encodeURIComponent(JSON.stringify(value))}`, { headers: { accept: 'text/event-stream' } })
    t.equal(response.status, 500, `${name}: ${String(value)}`)
    t.match(response.headers.get('content-type'), /^application\/json/, 'Fastify\'s error reply, not a stream')
    t.equal(((await response.json()) as { code: string }).code, 'TYPED_SSE_INVALID_OPTION')
  }
})

t.test('retryMs is sent first on every stream; a stream\'s own value wins', async (t) => {
  const { app, start } = await buildApp(t, { sse: { retryMs: 2500 } })
  streamRoute(app, '/plugin', events)
  const own = streamRoute(app, '/own', events, { retryMs: 0 })
  const origin = await start()
  const a = await openStream(t, `${origin}/plugin`)
  const b = await openStream(t, `${origin}/own`)
  const stream = await own.next()
  stream.send('n', 1)
  await b.events(1)
  t.equal(b.chunks.map(String).join('').indexOf('retry: 0\n\n'), 0, 'retry: 0 first, as its own block')
  t.equal(b.parser.retry, 0)
  await waitUntil(() => a.parser.retry !== undefined, 2000, 'retry on /plugin')
  t.equal(Buffer.concat(a.chunks).toString(), 'retry: 2500\n\n')
})

t.test('maxDurationMs closes the stream with reason duration and a reconnect hint', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  const streams = streamRoute(app, '/s', events, { maxDurationMs: 150 })
  const origin = await start()
  const begin = Date.now()
  const client = await openStream(t, `${origin}/s`)
  const stream = await streams.next()
  const reason = new Promise<CloseReason>((resolve) => stream.onClose(resolve))
  t.equal(await reason, 'duration')
  await client.ended
  const elapsed = Date.now() - begin
  t.ok(elapsed >= 140 && elapsed < 1000, `closed after ${elapsed} ms`)
  t.equal(client.parser.retry, 1000, 'a retry hint (1 s by default) so clients come back soon')
})

t.test('endsAt closes the stream at that time', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, retryMs: 300 } })
  const streams = new Inbox<{ reason: Promise<CloseReason> }>()
  app.get('/s', (_request, reply) => {
    const stream = reply.sse(events, { endsAt: new Date(Date.now() + 100) })
    streams.push({ reason: new Promise((resolve) => stream.onClose(resolve)) })
  })
  const origin = await start()
  const client = await openStream(t, `${origin}/s`)
  const { reason } = await streams.next()
  t.equal(await reason, 'duration')
  await client.ended
  t.same(client.parser.retries, [300, 300], 'the configured retryMs, at open and at the end')
})

t.test('an option the plugin does not know is refused at register, not ignored', async (t) => {
  for (const given of [{ stream: { maxQueueBytes: 10 } }, { heartbeatMS: 1000 }, { maxQueue: 1 }]) {
    const err = thrown(() => resolvePluginOptions(given as SsePluginOptions))
    t.equal(err?.code, 'TYPED_SSE_INVALID_OPTION', JSON.stringify(given))
  }
  // Fastify's own register options come along with the plugin's: they are not refused.
  t.ok(resolvePluginOptions({ prefix: '/x', logLevel: 'info' } as SsePluginOptions), 'prefix and logLevel pass')
  const app = Fastify()
  t.teardown(() => app.close())
  const err = await app.register(sse, { heartbeatMs: 1000, maxQueue: 1 } as SsePluginOptions).then(() => undefined, (error: unknown) => error as { code?: string })
  t.equal(err?.code, 'TYPED_SSE_INVALID_OPTION', 'register fails')
})
