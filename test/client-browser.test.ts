/**
 * The typed client in real Chromium, loaded the way the example page loads it: a
 * plain ES module from a static path, no bundler. The page gets parsed JSON and
 * Text() data, rejects what its validator refuses, reconnects with Last-Event-ID,
 * and close() ends the stream on the server.
 */
import t from 'tap'
import { defineEvents, Text, Type, type SseStream } from '../lib/index.js'
import { buildApp, Inbox, withTimeout } from './helpers/app.js'
import { launchChromium, skipWithoutChromium } from './helpers/chromium.js'
import { compileClientModule, moduleImports } from './helpers/client-module.js'

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

t.test('the client module has no run-time import', async (t) => {
  const source = await compileClientModule()
  t.same(moduleImports(source), [], 'a browser can load it alone, and it pulls in no server code')
  t.match(source, /^export function createClient\(/m, 'an ES module')
})

t.test('Chromium: typed events, validation, reconnect with Last-Event-ID, close()', { skip: skipWithoutChromium() }, async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, retryMs: 20 }, fastify: { forceCloseConnections: true } })
  const requested: string[] = []
  app.addHook('onRequest', async (request) => { requested.push(request.url) })
  app.get('/', (_request, reply) => reply.type('text/html').send(PAGE))
  app.get('/client/client.js', async (_request, reply) => await reply.type('text/javascript').send(await compileClientModule()))
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
  await page.goto(`${origin}/`, { timeout: 10_000 })
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
  t.same(requested.filter((url) => url.startsWith('/client/')), ['/client/client.js'], 'the module loaded nothing else')

  const stream = await streams.next()
  const left = new Promise((resolve) => stream.onClose(resolve))
  await page.evaluate(() => { (globalThis as unknown as { client: { close: () => void } }).client.close() })
  t.equal(await withTimeout(left, 3000, 'server side close'), 'client', 'close() ended the stream on the server')
  t.same(await page.evaluate(() => (globalThis as unknown as { log: PageLog }).log.statuses.at(-1)), 'closed')
  t.same(pageErrors, [], 'no page error')
})
