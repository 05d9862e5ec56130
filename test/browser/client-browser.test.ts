/**
 * The typed client in real Chromium, loaded the way the example page loads it: plain
 * ES modules from static paths, no bundler. Over the EventSource, the page gets
 * parsed JSON and Text() data, rejects what its validator refuses, reconnects with
 * Last-Event-ID, and close() ends the stream on the server. Over fetch, it streams a
 * POST with a header refreshed after a 401, resumes after a drop and stops at the end.
 */
import { gzipSync } from 'node:zlib'
import t from 'tap'
import { registerClientModule } from '../../example/client-module.js'
import { defineEvents, Text, Type, type SseStream } from '../../lib/index.js'
import { buildApp, Inbox, sleep, withTimeout } from '../helpers/app.js'
import { launchChromium, skipWithoutChromium } from '../helpers/chromium.js'
import { bundleClient, clientModules, compileClientModule, moduleImports } from '../helpers/client-module.js'

const feed = defineEvents({
  tick: Type.Object({ now: Type.String(), epochMs: Type.Integer() }),
  token: Text()
})

/** What the page records, read back with `page.evaluate`. */
interface PageLog {
  events: Array<{ event: string, data: unknown, id: string | undefined }>
  statuses: string[]
  errors: Array<{ code: string, event: string | undefined }>
}

/**
 * Plain JavaScript, as a page without a build step would have it. The validator is a
 * plain function: the page cannot load TypeBox.
 */
const PAGE = `<!doctype html>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<title>typed client</title>
<script type="module">
  import { createClient } from '/client/client.js'
  const log = window.log = { events: [], statuses: [], errors: [] }
  const client = window.client = createClient('/feed', {
    text: { token: true },
    validate: (event, data) => event !== 'tick' || data.epochMs >= 0 || 'epochMs is negative',
    onError: (error) => log.errors.push({ code: error.code, event: error.event })
  })
  client.onStatus((status) => log.statuses.push(status))
  const record = (data, meta) => log.events.push({ event: meta.event, data, id: meta.id })
  client.on('tick', record)
  client.on('token', record)
</script>`

t.test('the client modules import nothing but each other', async (t) => {
  const modules = clientModules()
  const seen = new Set<string>()
  const queue = ['client']
  while (queue.length > 0) {
    const module = queue.shift() as string
    if (seen.has(module)) continue
    seen.add(module)
    const source = await compileClientModule(module)
    for (const specifier of new Set(moduleImports(source))) {
      // Relative to the importing file, as the browser resolves it.
      const target = new URL(specifier, `file:///lib/${module}.js`).pathname.replace(/^\/lib\//, '').replace(/\.js$/, '')
      t.ok(specifier.startsWith('./') && modules.includes(target), `${module} imports ${specifier}: one of the client's own files`)
      queue.push(target)
    }
  }
  t.ok(seen.has('client/parser') && seen.has('client/fetch-transport'), 'the graph was walked')
  t.match(await compileClientModule(), /^export function createClient\(/m, 'an ES module')
})

t.test('the example serves the client modules, and nothing else under /client/', async (t) => {
  const { app, start } = await buildApp(t)
  registerClientModule(app)
  const origin = await start()
  for (const module of clientModules()) {
    const response = await fetch(`${origin}/client/${module}.js`, { signal: AbortSignal.timeout(10_000) })
    t.equal(response.status, 200, module)
    t.match(response.headers.get('content-type'), /^text\/javascript/)
    t.equal(await response.text(), await compileClientModule(module))
  }
  for (const path of ['/client/client/nope.js', '/client/client/..%2Fplugin.js', '/client/client/parser.ts', '/client/client/..%2F..%2Fpackage.json']) {
    const response = await fetch(`${origin}${path}`, { signal: AbortSignal.timeout(10_000) })
    t.equal(response.status, 404, path)
  }
})

t.test('the browser build, bundled, minified and gzipped, stays small', async (t) => {
  const minified = await bundleClient()
  const gzipped = gzipSync(minified, { level: 9 }).length
  t.comment(`client: ${minified.length} bytes minified, ${gzipped} bytes gzipped`)
  // 8 KiB until 0.2.0's live state (client.state(), presence(), onState(): about 280 B
  // gzipped, 8304 B in all then); raised by 512 B for them.
  t.ok(gzipped < 8.5 * 1024, `under 8.5 KiB gzipped (${gzipped} bytes)`)
  t.same(moduleImports(minified), [], 'the bundle has no import left')
})

t.test('Chromium: typed events, validation, reconnect with Last-Event-ID, close()', { skip: skipWithoutChromium() }, async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, retryMs: 20 }, fastify: { forceCloseConnections: true } })
  const requested: string[] = []
  app.addHook('onRequest', async (request) => { requested.push(request.url) })
  app.get('/', (_request, reply) => reply.type('text/html').send(PAGE))
  registerClientModule(app)
  const lastEventIds: Array<string | undefined> = []
  const streams = new Inbox<SseStream<typeof feed>>()
  app.get('/feed', (_request, reply) => {
    const stream = reply.sse(feed)
    lastEventIds.push(stream.lastEventId)
    if (lastEventIds.length === 1) {
      stream.send('tick', { now: 'first', epochMs: 1 }, { id: 'b1' })
      stream.send('token', 'line one\nline two', { id: 'b2' })
      stream.send('tick', { now: 'refused', epochMs: -1 }, { id: 'b3' })
      stream.close()
    } else {
      stream.send('tick', { now: 'again', epochMs: 2 }, { id: 'b4' })
      streams.push(stream)
    }
  })
  const origin = await start()

  const browser = await launchChromium(t)
  const page = await browser.newPage()
  const pageErrors: string[] = []
  page.on('pageerror', (err) => pageErrors.push(err.message))
  page.on('console', (message) => { if (message.type() === 'error') pageErrors.push(message.text()) })
  await page.goto(`${origin}/`, { timeout: 30_000 })
  await page.waitForFunction(() => (globalThis as unknown as { log?: PageLog }).log?.events.length === 3, null, { timeout: 5000 })
  const log = await page.evaluate(() => (globalThis as unknown as { log: PageLog }).log)

  t.same(log.events, [
    { event: 'tick', data: { now: 'first', epochMs: 1 }, id: 'b1' },
    { event: 'token', data: 'line one\nline two', id: 'b2' },
    { event: 'tick', data: { now: 'again', epochMs: 2 }, id: 'b4' }
  ], 'JSON parsed, text raw, the refused event left out, the second connection read')
  t.same(log.errors, [{ code: 'TYPED_SSE_CLIENT_INVALID_DATA', event: 'tick' }])
  t.same(log.statuses, ['open', 'connecting', 'open'])
  t.same(lastEventIds, [undefined, 'b3'], 'the browser reconnected with the last id it received')
  const served = new Set(clientModules().map((module) => `/client/${module}.js`))
  const loaded = requested.filter((url) => url.startsWith('/client/'))
  t.ok(loaded.includes('/client/client.js') && loaded.every((url) => served.has(url)), `the page loaded the client's own modules only: ${loaded.join(' ')}`)

  const stream = await streams.next()
  const left = new Promise((resolve) => stream.onClose(resolve))
  await page.evaluate(() => { (globalThis as unknown as { client: { close: () => void } }).client.close() })
  t.equal(await withTimeout(left, 3000, 'server side close'), 'client', 'close() ended the stream on the server')
  t.same(await page.evaluate(() => (globalThis as unknown as { log: PageLog }).log.statuses.at(-1)), 'closed')
  t.same(pageErrors, [], 'no page error')
})

/** The fetch-transport page: a POST stream with a token refreshed on 401. */
const FETCH_PAGE = `<!doctype html>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<title>typed client over fetch</title>
<script type="module">
  import { createClient } from '/client/client.js'
  const log = window.log = { tokens: [], statuses: [], errors: [], ended: false, refusals: 0 }
  let token = 'stale'
  const client = window.client = createClient('/chat', {
    text: { token: true },
    body: JSON.stringify({ prompt: 'hi' }),
    headers: () => ({ authorization: 'Bearer ' + token, 'content-type': 'application/json' }),
    onUnauthorized: async () => { log.refusals++; token = 'fresh'; return true },
    onError: (error) => log.errors.push(error.code)
  })
  client.onStatus((status) => log.statuses.push(status))
  client.on('token', (text, meta) => log.tokens.push([text, meta.id]))
  client.onEnd(() => { log.ended = true })
</script>`

interface FetchPageLog {
  tokens: Array<[string, string]>
  statuses: string[]
  errors: string[]
  ended: boolean
  refusals: number
}

t.test('Chromium, fetch: POST with headers, 401 then 200, a drop resumed with Last-Event-ID, the end', { skip: skipWithoutChromium() }, async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, retryMs: 20 }, fastify: { forceCloseConnections: true } })
  registerClientModule(app)
  app.get('/', (_request, reply) => reply.type('text/html').send(FETCH_PAGE))
  const TOKENS = ['Hel', 'lo', ' wor', 'ld']
  const requests: Array<{ method: string, auth: string | undefined, lastEventId: string | undefined, prompt: unknown }> = []
  app.post('/chat', (request, reply) => {
    const lastEventId = request.headers['last-event-id'] as string | undefined
    requests.push({ method: request.method, auth: request.headers.authorization, lastEventId, prompt: (request.body as { prompt?: unknown }).prompt })
    if (request.headers.authorization !== 'Bearer fresh') return reply.code(401).send()
    const stream = reply.sse(feed)
    const from = lastEventId === undefined ? 0 : Number(lastEventId) + 1
    // The first connection drops after two tokens; the second sends the rest, then the end.
    const to = from === 0 ? 2 : TOKENS.length
    for (let i = from; i < to; i++) stream.send('token', TOKENS[i], { id: String(i) })
    if (to === TOKENS.length) stream.end()
    else stream.close()
  })
  const origin = await start()

  const browser = await launchChromium(t)
  const page = await browser.newPage()
  const pageErrors: string[] = []
  page.on('pageerror', (err) => pageErrors.push(err.message))
  await page.goto(`${origin}/`, { timeout: 30_000 })
  await page.waitForFunction(() => (globalThis as unknown as { log?: FetchPageLog }).log?.ended === true, null, { timeout: 10_000 })
  await sleep(200) // ten retry periods: a reconnect after the end would show here
  const log = await page.evaluate(() => (globalThis as unknown as { log: FetchPageLog }).log)

  t.same(log.tokens, [['Hel', '0'], ['lo', '1'], [' wor', '2'], ['ld', '3']], 'every token once, in order')
  t.same(log.statuses, ['open', 'connecting', 'open', 'closed'])
  t.same(log.errors, [])
  t.equal(log.refusals, 1)
  t.same(requests, [
    { method: 'POST', auth: 'Bearer stale', lastEventId: undefined, prompt: 'hi' },
    { method: 'POST', auth: 'Bearer fresh', lastEventId: undefined, prompt: 'hi' },
    { method: 'POST', auth: 'Bearer fresh', lastEventId: '1', prompt: 'hi' }
  ], 'the 401, the stream, the resume with the same POST; nothing after the end')
  t.same(pageErrors, [])
})

/** A page whose client meets a server that fails in every way a real one does. */
const FAULTS_PAGE = `<!doctype html>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<title>typed client against faults</title>
<script type="module">
  import { createClient } from '/client/client.js'
  const log = window.log = { ticks: [], statuses: [], errors: [], ended: false }
  const client = createClient('/faulty', {
    transport: 'fetch',
    reconnectDelayMs: 20,
    responseTimeoutMs: 1000,
    onError: (error) => log.errors.push(error.code)
  })
  client.onStatus((status) => log.statuses.push(status))
  client.on('tick', (tick, meta) => log.ticks.push([tick.now, meta.id]))
  client.onEnd(() => { log.ended = true })
</script>`

interface FaultsPageLog {
  ticks: Array<[string, string]>
  statuses: string[]
  errors: string[]
  ended: boolean
}

t.test('Chromium, fetch: 503 with Retry-After, a stalled head, garbage, then 204: waits, retries, parses, stops', { skip: skipWithoutChromium() }, async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false }, fastify: { forceCloseConnections: true } })
  registerClientModule(app)
  app.get('/', (_request, reply) => reply.type('text/html').send(FAULTS_PAGE))
  const requests: Array<{ at: number, lastEventId: string | undefined }> = []
  app.get('/faulty', (request, reply) => {
    requests.push({ at: Date.now(), lastEventId: request.headers['last-event-id'] as string | undefined })
    switch (requests.length) {
      case 1:
        return reply.code(503).header('retry-after', '1').send()
      case 2:
        reply.hijack() // stalls: no head ever
        return
      case 3:
        reply.hijack()
        reply.raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' })
        reply.raw.write(Buffer.from([0xff, 0x00, 0xfe]))
        reply.raw.end('\r\n\r\nnonsense\n: note\r\nevent: tick\rid: g1\r\ndata: {"now":"after garbage","epochMs":1}\n\n')
        return
      default:
        return reply.code(204).send()
    }
  })
  const origin = await start()
  const browser = await launchChromium(t)
  const page = await browser.newPage()
  const pageErrors: string[] = []
  page.on('pageerror', (err) => pageErrors.push(err.message))
  await page.goto(`${origin}/`, { timeout: 30_000 })
  await page.waitForFunction(() => (globalThis as unknown as { log?: FaultsPageLog }).log?.ended === true, null, { timeout: 15_000 })
  const log = await page.evaluate(() => (globalThis as unknown as { log: FaultsPageLog }).log)

  t.ok(requests[1].at - requests[0].at >= 950, `waited the Retry-After second (${requests[1].at - requests[0].at} ms)`)
  t.same(log.errors, ['TYPED_SSE_CLIENT_TIMEOUT'], 'the stalled head timed out; nothing else was an error')
  t.same(log.ticks, [['after garbage', 'g1']], 'the valid event after the garbage')
  t.equal(requests.length, 4, '503, stall, garbage, 204: nothing after')
  t.equal(requests[3].lastEventId, 'g1', 'the reconnect after the stream carried its id')
  t.same(log.statuses, ['open', 'connecting', 'closed'])
  t.same(pageErrors, [])
})

t.test("Chromium, the browser's EventSource: sse:end closes the client, no reconnect", { skip: skipWithoutChromium() }, async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, retryMs: 20 }, fastify: { forceCloseConnections: true } })
  registerClientModule(app)
  app.get('/', (_request, reply) => reply.type('text/html').send(`<!doctype html>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<script type="module">
  import { createClient } from '/client/client.js'
  const log = window.log = { ticks: [], statuses: [], ended: false }
  const client = createClient('/finite', { text: { token: true } })
  client.onStatus((status) => log.statuses.push(status))
  client.on('tick', (tick) => log.ticks.push(tick.epochMs))
  client.onEnd(() => { log.ended = true })
</script>`))
  let requests = 0
  app.get('/finite', (_request, reply) => {
    requests++
    const stream = reply.sse(feed)
    stream.send('tick', { now: 'x', epochMs: 1 }, { id: '1' })
    stream.end()
  })
  const origin = await start()
  const browser = await launchChromium(t)
  const page = await browser.newPage()
  await page.goto(`${origin}/`, { timeout: 30_000 })
  await page.waitForFunction(() => (globalThis as unknown as { log?: { ended: boolean } }).log?.ended === true, null, { timeout: 10_000 })
  await sleep(300) // fifteen retry periods: the EventSource would have reconnected by now
  const log = await page.evaluate(() => (globalThis as unknown as { log: { ticks: number[], statuses: string[] } }).log)
  t.same(log.ticks, [1])
  t.same(log.statuses, ['open', 'closed'])
  t.equal(requests, 1, 'the EventSource was closed on sse:end')
})
