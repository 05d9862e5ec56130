/**
 * Prometheus metrics: real traffic on a real server (streams closed for every reason,
 * a slow client, replays, rejections, channel publishes), then `GET /metrics` scraped
 * over HTTP and the exposition text parsed here, from the format's description
 * (https://prometheus.io/docs/instrumenting/exposition_formats/), value by value.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { register as defaultRegistry, Registry } from 'prom-client'
import t from 'tap'
import { buildExample } from '../../example/app.js'
import { defineEvents, memoryEngine, Text, type EngineHealth, type SseEngine, type SsePluginOptions, type SseStream } from '../../lib/index.js'
import { DELIVERY_BUCKETS_SECONDS, loadMetrics, resolveMetricsOptions, type ResolvedMetricsOptions } from '../../lib/http/metrics.js'
import { buildApp, sleep, streamRoute, waitUntil, withTimeout, type Teardown } from '../helpers/app.js'
import { dechunk, openStream, rawConnect, splitHead } from '../helpers/client.js'
import { labelValues, parseExposition, scrape as scrapeAt, valueOf, type Exposition } from '../helpers/exposition.js'
import { parseAll } from '../helpers/parser.js'

const events = defineEvents({ token: Text() })
const DATA = 'y'.repeat(4 * 1024)
const MAX_QUEUE_BYTES = 64 * 1024


// --- the app under test ------------------------------------------------------------

/** GETs `/metrics` over HTTP and parses it (the registry's content type checked). */
async function scrape (origin: string, registry: Registry): Promise<Exposition> {
  return await scrapeAt(origin, registry.contentType)
}

/** An app with metrics in a registry of its own, served on `GET /metrics`. */
async function metricsApp (t: Teardown, sse: SsePluginOptions = {}, fastify = {}): Promise<Awaited<ReturnType<typeof buildApp>> & { registry: Registry }> {
  const registry = new Registry()
  const built = await buildApp(t, { sse: { ...sse, metrics: { registry, ...(typeof sse.metrics === 'object' ? sse.metrics : {}) } }, fastify })
  built.app.get('/metrics', async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()))
  return { ...built, registry }
}

function closed (stream: SseStream<any>): Promise<unknown> {
  return withTimeout(new Promise((resolve) => stream.onClose(resolve)), 3000, 'stream close')
}

t.test('streams opened and closed for every reason, a slow client dropped, by route: scraped values match the traffic', async (t) => {
  const { app, start, registry } = await metricsApp(t, { heartbeatMs: false, maxQueueBytes: MAX_QUEUE_BYTES }, { return503OnClosing: false })
  const streams = streamRoute(app, '/s', events)
  const drops = streamRoute(app, '/drop', events, { queuePolicy: 'drop-oldest' })
  const rooms = streamRoute(app, '/rooms/:id', events)
  app.get('/short', (_request, reply) => { reply.sse(events, { maxDurationMs: 50 }) })
  app.get('/fail', { sse: events }, async function * () {
    yield { event: 'token' as const, data: 'first' }
    throw new Error('the producer failed')
  })
  // Runs after the plugin's own preClose (which ended every stream), while the server
  // still listens: the last scrape sees the shutdown.
  let atShutdown: Exposition | undefined
  app.addHook('preClose', async () => { atShutdown = await scrape(origin, registry) })
  const origin = await start()
  const port = Number(new URL(origin).port)

  const client = await openStream(t, `${origin}/s`)
  const byClient = await streams.next()
  client.destroy()
  t.equal(await closed(byClient), 'client')

  await openStream(t, `${origin}/s`)
  const byServer = await streams.next()
  byServer.close()
  t.equal(await closed(byServer), 'server')

  const short = await openStream(t, `${origin}/short`)
  await withTimeout(short.ended, 3000, 'duration end')

  const failing = await openStream(t, `${origin}/fail`)
  await withTimeout(failing.ended, 3000, 'producer failure end')

  // A client that never reads: the socket fills, then the queue, then the 'close' policy ends it.
  await rawConnect(t, port, '/s', { read: false })
  const byPolicy = await streams.next()
  for (let sent = 0; sent < 20_000 && byPolicy.isOpen; sent++) byPolicy.send('token', DATA)
  t.equal(byPolicy.closeReason, 'policy')

  // A slow client under 'drop-oldest' stays open and loses the oldest events.
  const slow = await rawConnect(t, port, '/drop', { read: false })
  const dropping = await drops.next()
  for (let sent = 0; sent < 20_000 && app.sse.stats().droppedEvents < 5; sent++) dropping.send('token', DATA)
  const dropped = app.sse.stats().droppedEvents
  t.equal(dropped, 5, 'events were dropped')

  await openStream(t, `${origin}/rooms/1`)
  await openStream(t, `${origin}/rooms/2`)
  await rooms.next()
  await rooms.next()

  const scraped = await scrape(origin, registry)
  t.equal(valueOf(scraped, 'sse_streams_open', { route: '/rooms/:id' }), 2, 'labelled by the declared route, never the URL')
  t.equal(valueOf(scraped, 'sse_streams_open', { route: '/drop' }), 1)
  t.equal(valueOf(scraped, 'sse_streams_open', { route: '/s' }), 0)
  t.same(labelValues(scraped, 'sse_streams_open', 'route'), ['/drop', '/fail', '/rooms/:id', '/s', '/short'])
  t.equal(valueOf(scraped, 'sse_streams_opened_total'), 8)
  const closedBy = (reason: string): number => valueOf(scraped, 'sse_streams_closed_total', { reason })
  t.same(['client', 'server', 'policy', 'duration', 'error', 'stalled', 'shutdown'].map(closedBy), [1, 1, 1, 1, 1, 0, 0])
  t.equal(valueOf(scraped, 'sse_events_dropped_total', { reason: 'drop_oldest' }), dropped)
  const stats = app.sse.stats()
  t.equal(valueOf(scraped, 'sse_events_sent_total'), stats.eventsSent)
  t.equal(valueOf(scraped, 'sse_bytes_written_total'), stats.bytesWritten)
  t.equal(valueOf(scraped, 'sse_queue_bytes'), stats.queuedBytes)
  t.ok(stats.queuedBytes <= MAX_QUEUE_BYTES, 'the slow client holds a bounded queue')
  t.equal(scraped.types.get('sse_streams_closed_total'), 'counter')
  t.equal(scraped.types.get('sse_streams_open'), 'gauge')

  // The slow client reads again: the count it is told equals the one scraped.
  slow.socket.resume()
  const missedOf = (bytes: Buffer): string | undefined =>
    parseAll(dechunk(splitHead(bytes)?.body ?? Buffer.alloc(0)).payload).events.find((event) => event.type === 'sse:missed')?.data
  const missed = missedOf(await slow.until((received) => missedOf(received) !== undefined, 5000))
  t.same(JSON.parse(missed as string), { dropped }, 'sse:missed reports the dropped count the metric shows')

  await app.close()
  if (atShutdown === undefined) throw new Error('no scrape at shutdown')
  t.equal(valueOf(atShutdown, 'sse_streams_closed_total', { reason: 'shutdown' }), 3, 'the slow client and the two rooms')
  t.equal(valueOf(atShutdown, 'sse_streams_open', { route: '/rooms/:id' }), 0)
  t.equal(valueOf(atShutdown, 'sse_queue_bytes'), 0)
  t.equal(registry.getMetricsAsArray().length, 0, 'the metrics left the registry with the instance')
})

t.test('a client that accepts nothing for two heartbeat periods is counted as stalled', async (t) => {
  const { app, start, registry } = await metricsApp(t, { heartbeatMs: 100, maxQueueBytes: MAX_QUEUE_BYTES })
  const streams = streamRoute(app, '/s', events)
  const origin = await start()
  await rawConnect(t, Number(new URL(origin).port), '/s', { read: false })
  const stream = await streams.next()
  // Fill the socket until a write stays queued (a full kernel buffer), within maxQueueBytes.
  for (let sent = 0; sent < 20_000 && stream.queuedBytes === 0; sent++) {
    if (!stream.send('token', DATA) && await Promise.race([stream.drained().then(() => false), sleep(100).then(() => true)])) break
  }
  stream.send('token', 'queued')
  t.equal(await closed(stream), 'stalled')
  const scraped = await scrape(origin, registry)
  t.equal(valueOf(scraped, 'sse_streams_closed_total', { reason: 'stalled' }), 1)
  t.equal(valueOf(scraped, 'sse_streams_closed_total', { reason: 'policy' }), 0)
  t.equal(valueOf(scraped, 'sse_streams_open', { route: '/s' }), 0)
  t.equal(valueOf(scraped, 'sse_queue_bytes'), 0)
})

t.test('requests refused: 406 and both stream limits, counted by reason', async (t) => {
  const { app, start, registry } = await metricsApp(t, {
    maxStreams: 2, maxStreamsPerKey: 1, streamKey: (request) => String(request.headers['x-user'])
  })
  streamRoute(app, '/s', events)
  const origin = await start()
  t.equal((await openStream(t, `${origin}/s`, { accept: 'application/json' })).statusCode, 406)
  t.equal((await openStream(t, `${origin}/s`, { 'x-user': 'a' })).statusCode, 200)
  t.equal((await openStream(t, `${origin}/s`, { 'x-user': 'a' })).statusCode, 503, 'a second stream of user a')
  t.equal((await openStream(t, `${origin}/s`, { 'x-user': 'b' })).statusCode, 200)
  t.equal((await openStream(t, `${origin}/s`, { 'x-user': 'c' })).statusCode, 503, 'a third stream on the instance')
  t.equal((await openStream(t, `${origin}/s`, { 'x-user': 'd' })).statusCode, 503)
  const scraped = await scrape(origin, registry)
  t.equal(valueOf(scraped, 'sse_streams_rejected_total', { reason: 'not_acceptable' }), 1)
  t.equal(valueOf(scraped, 'sse_streams_rejected_total', { reason: 'max_streams_per_key' }), 1)
  t.equal(valueOf(scraped, 'sse_streams_rejected_total', { reason: 'max_streams' }), 2)
  t.equal(valueOf(scraped, 'sse_streams_opened_total'), 2)
  t.equal(valueOf(scraped, 'sse_streams_open', { route: '/s' }), 2)
})

t.test('channels: subscribers and publishes by channel, replays served and resynced, delivery latency; request-named channels bounded by channelLabel', async (t) => {
  const { app, start, registry } = await metricsApp(t, {
    metrics: { channelLabel: (name) => name.startsWith('room:') ? 'room:*' : name }
  })
  const scores = app.sse.channel('scores', events, { history: true })
  app.get('/scores', { sse: events }, async (_request, reply) => { await scores.subscribe(reply.sse()) })
  app.get('/rooms/:id', { sse: events }, async (request, reply) => {
    const room = app.sse.channel(`room:${(request.params as { id: string }).id}`, events, { idleMs: 100 })
    await room.subscribe(reply.sse())
  })
  const origin = await start()
  const watchers = [await openStream(t, `${origin}/scores`), await openStream(t, `${origin}/scores`)]
  await waitUntil(() => scores.size === 2, 2000, 'two subscribers')
  const ids = []
  for (const data of ['1', '2', '3']) ids.push(await scores.publish('token', data))
  await Promise.all(watchers.map(async (watcher) => await watcher.events(3)))

  const replayed = await openStream(t, `${origin}/scores`, { 'last-event-id': String(ids[0]) })
  t.same((await replayed.events(2)).map((event) => event.data), ['2', '3'], 'replayed after its id')
  // A second replay: served and resync counts differ, so a swap of the two shows.
  const replayedAgain = await openStream(t, `${origin}/scores`, { 'last-event-id': String(ids[1]) })
  t.same((await replayedAgain.events(1)).map((event) => event.data), ['3'], 'replayed after its id')
  const lost = await openStream(t, `${origin}/scores`, { 'last-event-id': 'unknown-id' })
  t.equal((await lost.events(1))[0].type, 'sse:resync')

  const inRooms = [await openStream(t, `${origin}/rooms/1`), await openStream(t, `${origin}/rooms/2`)]
  await waitUntil(() => app.sse.stats().channels['room:2']?.subscribers === 1, 2000, 'room subscribers')
  await app.sse.channel('room:1', events, { idleMs: 100 }).publish('token', 'a')
  await app.sse.channel('room:2', events, { idleMs: 100 }).publish('token', 'b')
  await Promise.all(inRooms.map(async (client) => await client.events(1)))

  let scraped = await scrape(origin, registry)
  t.equal(valueOf(scraped, 'sse_channel_subscribers', { channel: 'scores' }), 5)
  t.equal(valueOf(scraped, 'sse_channel_subscribers', { channel: 'room:*' }), 2, 'rooms added up under one label')
  t.same(labelValues(scraped, 'sse_channel_subscribers', 'channel'), ['room:*', 'scores'], 'no label per room')
  t.equal(valueOf(scraped, 'sse_events_published_total', { channel: 'scores' }), 3)
  t.equal(valueOf(scraped, 'sse_events_published_total', { channel: 'room:*' }), 2)
  t.equal(valueOf(scraped, 'sse_replays_total', { result: 'served' }), 2)
  t.equal(valueOf(scraped, 'sse_replays_total', { result: 'resync' }), 1)
  t.equal(valueOf(scraped, 'sse_publish_delivery_seconds_count'), 5, 'one observation per message delivered here')
  t.equal(valueOf(scraped, 'sse_publish_delivery_seconds_bucket', { le: '+Inf' }), 5)
  t.equal(valueOf(scraped, 'sse_engine_up'), 1)

  // The room clients leave; their channels go idle and are dropped: the counter stays.
  for (const client of inRooms) client.destroy()
  await waitUntil(() => app.sse.stats().channels['room:1'] === undefined && app.sse.stats().channels['room:2'] === undefined, 3000, 'idle rooms dropped')
  scraped = await scrape(origin, registry)
  t.equal(valueOf(scraped, 'sse_events_published_total', { channel: 'room:*' }), 2, 'a counter never goes down when its channels go')
  t.same(labelValues(scraped, 'sse_channel_subscribers', 'channel'), ['scores'])
})

t.test('publish_delivery_seconds: a delivery exactly at a bucket bound is counted in that bucket (le means at most)', async (t) => {
  const registry = new Registry()
  const metrics = await loadMetrics(resolveMetricsOptions({ registry }) as ResolvedMetricsOptions)
  const { app } = await buildApp(t)
  metrics.register(app, app.sse)
  // The latency is read from the clock at delivery: held still, each lag is exact.
  const now = Date.now()
  const realNow = Date.now
  Date.now = () => now
  try {
    for (const bound of DELIVERY_BUCKETS_SECONDS) metrics.delivered(now - Number((bound * 1000).toPrecision(12)))
  } finally {
    Date.now = realNow
  }
  const metric = registry.getSingleMetric('sse_publish_delivery_seconds') as unknown as { get: () => Promise<{ values: Array<{ metricName: string, labels: { le?: number | string }, value: number }> }> }
  const buckets = (await metric.get()).values.filter((sample) => sample.metricName.endsWith('_bucket'))
  t.same(buckets.map((sample) => [sample.labels.le, sample.value]),
    [...DELIVERY_BUCKETS_SECONDS.map((bound, i) => [bound, i + 1]), ['+Inf', DELIVERY_BUCKETS_SECONDS.length]],
    'bucket le=b counts every delivery of at most b seconds')
})

t.test('a channel named __proto__ (or constructor) is in stats() and the metrics like any other', async (t) => {
  const { app, start, registry } = await metricsApp(t)
  const names = ['__proto__', 'constructor', 'toString']
  for (const name of names) {
    const channel = app.sse.channel(name, events)
    await channel.publish('token', 'x')
  }
  const origin = await start()
  const stats = app.sse.stats()
  for (const name of names) {
    t.ok(Object.hasOwn(stats.channels, name), `stats() lists "${name}"`)
    t.equal(stats.channels[name]?.published, 1, `"${name}" published once`)
  }
  t.same(Object.keys(stats.channels).sort(), [...names].sort(), 'exactly the channels made')
  t.equal(stats.eventsPublished, 3)
  const scraped = await scrape(origin, registry)
  for (const name of names) t.equal(valueOf(scraped, 'sse_events_published_total', { channel: name }), 1, `the counter of "${name}"`)
})

/**
 * The in-memory engine behind a link that takes `delayMs` to deliver and whose health
 * the test sets: an engine as an application could write one.
 */
function slowEngine (delayMs: number): SseEngine & { state: EngineHealth } {
  const inner = memoryEngine()
  const engine = {
    state: 'connected' as EngineHealth,
    channel: (name: string, history: Parameters<SseEngine['channel']>[1], listener: Parameters<SseEngine['channel']>[2]) => inner.channel(name, history, {
      deliver: (message) => { setTimeout(() => listener.deliver(message), delayMs) },
      gap: () => listener.gap()
    }),
    compareIds: (a: string, b: string) => inner.compareIds(a, b),
    health: () => engine.state,
    close: async () => await inner.close()
  }
  return engine
}

t.test('the example: /metrics shows the delivery lag of a slow engine; /healthz and sse_engine_up follow the engine', async (t) => {
  const engine = slowEngine(80)
  const app = await buildExample({ sse: { engine } })
  t.teardown(() => app.close())
  const origin = await app.listen({ port: 0, host: '127.0.0.1' })
  const exampleScrape = async (): Promise<Exposition> => {
    const response = await fetch(`${origin}/metrics`, { signal: AbortSignal.timeout(5000) })
    t.match(response.headers.get('content-type'), /^text\/plain; version=0\.0\.4/)
    return parseExposition(await response.text())
  }
  const page = await openStream(t, `${origin}/scores`)
  await waitUntil(() => app.sse.stats().channels.scores?.subscribers === 1, 2000, 'subscribed')
  for (const home of [1, 2]) {
    const posted = await fetch(`${origin}/score`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ match: 'AUS-NZL', home, away: 0 }), signal: AbortSignal.timeout(5000)
    })
    t.equal(posted.status, 201)
  }
  await page.events(2, 3000)
  let scraped = await exampleScrape()
  t.equal(valueOf(scraped, 'sse_publish_delivery_seconds_count'), 2)
  t.equal(valueOf(scraped, 'sse_publish_delivery_seconds_bucket', { le: '0.05' }), 0, 'no message arrived within 50 ms of an 80 ms link')
  t.equal(valueOf(scraped, 'sse_publish_delivery_seconds_bucket', { le: '+Inf' }), 2)
  t.ok(valueOf(scraped, 'sse_publish_delivery_seconds_sum') >= 0.15, 'the sum holds two lags of at least 80 ms')
  t.equal(valueOf(scraped, 'sse_engine_up'), 1)
  let health = await fetch(`${origin}/healthz`, { signal: AbortSignal.timeout(5000) })
  t.equal(health.status, 200)
  t.same(await health.json(), { engine: 'connected' })

  engine.state = 'reconnecting'
  scraped = await exampleScrape()
  t.equal(valueOf(scraped, 'sse_engine_up'), 0)
  health = await fetch(`${origin}/healthz`, { signal: AbortSignal.timeout(5000) })
  t.equal(health.status, 503, 'not ready while the engine reconnects')
  t.same(await health.json(), { engine: 'reconnecting' })
})

t.test('registries: two instances with their own do not collide; one registry twice is a coded error; closing frees the names', async (t) => {
  const a = await metricsApp(t)
  const b = await metricsApp(t)
  streamRoute(a.app, '/s', events)
  streamRoute(b.app, '/s', events)
  const [originA, originB] = [await a.start(), await b.start()]
  await openStream(t, `${originA}/s`)
  await openStream(t, `${originA}/s`)
  await openStream(t, `${originB}/s`)
  t.equal(valueOf(await scrape(originA, a.registry), 'sse_streams_open', { route: '/s' }), 2)
  t.equal(valueOf(await scrape(originB, b.registry), 'sse_streams_open', { route: '/s' }), 1)

  const shared = new Registry()
  const first = await buildApp(t, { sse: { metrics: { registry: shared } } })
  await t.rejects(buildApp(t, { sse: { metrics: { registry: shared } } }), { code: 'TYPED_SSE_METRICS_CONFLICT' })
  const prefixed = await buildApp(t, { sse: { metrics: { registry: shared, prefix: 'other_' } } })
  t.ok(shared.getSingleMetric('other_streams_open') !== undefined && shared.getSingleMetric('sse_streams_open') !== undefined, 'another prefix registers beside')
  await first.app.close()
  await prefixed.app.close()
  t.equal(shared.getMetricsAsArray().length, 0)
  await buildApp(t, { sse: { metrics: { registry: shared } } })
  t.ok(shared.getSingleMetric('sse_streams_open') !== undefined, 'registered again once the first instance closed')

  const global = await buildApp(t, { sse: { metrics: true } })
  t.ok(defaultRegistry.getSingleMetric('sse_engine_up') !== undefined, 'metrics: true uses prom-client\'s default registry')
  await global.app.close()
  t.equal(defaultRegistry.getSingleMetric('sse_engine_up'), undefined)
})

t.test('invalid metrics options fail at register time with TYPED_SSE_INVALID_OPTION', async (t) => {
  const invalid: unknown[] = ['yes', null, { prefix: '9lives' }, { prefix: 'a-b' }, { registry: {} }, { channelLabel: 'room' }]
  for (const metrics of invalid) {
    await t.rejects(buildApp(t, { sse: { metrics } as SsePluginOptions }), { code: 'TYPED_SSE_INVALID_OPTION' }, JSON.stringify(metrics))
  }
  // channelLabel is the application's code, run at scrape time: a wrong result fails the scrape, loudly.
  const registry = new Registry()
  const labelled = await buildApp(t, { sse: { metrics: { registry, channelLabel: () => 42 as unknown as string } } })
  labelled.app.sse.channel('scores', events)
  await t.rejects(registry.metrics(), { code: 'TYPED_SSE_INVALID_OPTION' }, 'a channelLabel that returns no string')
  const { app } = await buildApp(t, { sse: { metrics: false } })
  t.equal(defaultRegistry.getSingleMetric('sse_streams_open'), undefined, 'metrics: false registers nothing')
  t.ok(app.sse, 'the plugin works without metrics')
})

t.test('without prom-client installed: metrics fail with TYPED_SSE_METRICS_UNAVAILABLE, the plugin works without them', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sse-no-prom-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  // A resolve hook that makes prom-client missing, as in an application that never installed it.
  await writeFile(join(dir, 'hooks.mjs'), `export async function resolve (specifier, context, next) {
  if (specifier === 'prom-client') throw Object.assign(new Error("Cannot find package 'prom-client'"), { code: 'ERR_MODULE_NOT_FOUND' })
  return next(specifier, context)
}\n`)
  await writeFile(join(dir, 'register.mjs'), "import { register } from 'node:module'\nregister('./hooks.mjs', import.meta.url)\n")
  const lib = pathToFileURL(fileURLToPath(new URL('../../lib/index.ts', import.meta.url))).href
  // Absolute URLs: the script lives outside the project, where packages are not found.
  await writeFile(join(dir, 'child.mts'), `import Fastify from '${import.meta.resolve('fastify')}'
import sse from '${lib}'
const results = []
for (const metrics of [true, false]) {
  const app = Fastify()
  try {
    await app.register(sse, { metrics })
    await app.ready()
    results.push('ok')
  } catch (err) {
    results.push(err.code)
  }
  await app.close()
}
let loaded = 'not loaded'
try { await import('prom-client'); loaded = 'loaded' } catch {}
process.stdout.write(JSON.stringify({ results, loaded }))
`)
  const env = { ...process.env }
  // tap's own loader must not stack on tsx in the child.
  delete env.NODE_OPTIONS
  const child = spawn(process.execPath, ['--import', 'tsx', '--import', pathToFileURL(join(dir, 'register.mjs')).href, join(dir, 'child.mts')], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)), env, stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const [code] = await withTimeout(once(child, 'exit'), 20_000, 'child exit') as [number | null]
  t.equal(code, 0, stderr)
  t.same(JSON.parse(stdout), { results: ['TYPED_SSE_METRICS_UNAVAILABLE', 'ok'], loaded: 'not loaded' }, stderr)
})
