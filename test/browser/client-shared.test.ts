/**
 * `shared: true` in real Chromium over HTTP/1.1: eight tabs of one origin open the
 * same stream; the server sees one connection and every tab gets every event. The
 * leader tab closes; another takes over with Last-Event-ID and, with the channel's
 * history, every remaining tab gets every later event once, in order: no gap, no
 * duplicate.
 */
import t from 'tap'
import type { Page } from 'playwright-core'
import { registerClientModule } from '../../example/client-module.js'
import { defineEvents, Type } from '../../lib/index.js'
import { buildApp, waitUntil } from '../helpers/app.js'
import { launchChromium, skipWithoutChromium } from '../helpers/chromium.js'

const feed = defineEvents({ tick: Type.Object({ n: Type.Integer() }) })

const TABS = 8

const PAGE = `<!doctype html>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<title>shared stream</title>
<script type="module">
  import { createClient } from '/client/client.js'
  const log = window.log = { ticks: [], statuses: [], errors: [] }
  const client = window.client = createClient('/ticks', { shared: true, onError: (error) => log.errors.push(error.code) })
  client.onStatus((status) => log.statuses.push(status))
  client.on('tick', (tick, meta) => log.ticks.push([tick.n, meta.id]))
</script>`

interface PageLog {
  ticks: Array<[number, string]>
  statuses: string[]
  errors: string[]
}

const readLog = (page: Page): Promise<PageLog> => page.evaluate(() => (globalThis as unknown as { log: PageLog }).log)
const isLeader = (page: Page): Promise<boolean> => page.evaluate(() => (globalThis as unknown as { client: { isLeader: boolean } }).client.isLeader)

t.test(`Chromium, HTTP/1.1: ${TABS} tabs share one connection; the leader closes, another resumes with no gap and no duplicate`, { skip: skipWithoutChromium() }, async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false }, fastify: { forceCloseConnections: true } })
  registerClientModule(app)
  app.get('/', (_request, reply) => reply.type('text/html').send(PAGE))
  const ticks = app.sse.channel('ticks', feed, { history: true })
  const connections: Array<string | undefined> = []
  app.get('/ticks', async (request, reply) => {
    connections.push(request.headers['last-event-id'] as string | undefined)
    await ticks.subscribe(reply.sse(feed))
  })
  const origin = await start()

  const browser = await launchChromium(t)
  const pages: Page[] = []
  const pageErrors: string[] = []
  for (let i = 0; i < TABS; i++) {
    const page = await browser.newPage()
    page.on('pageerror', (err) => pageErrors.push(err.message))
    // The first load is slow on a busy machine: a cold browser, and the client compiled from source.
    await page.goto(`${origin}/`, { timeout: 30_000 })
    pages.push(page)
  }
  await waitUntil(() => ticks.size === 1, 10_000, 'the leader subscribed')
  // Every tab knows the stream is open (followers ask the leader when they start).
  for (const page of pages) await page.waitForFunction(() => (globalThis as unknown as { client: { status: string } }).client.status === 'open', null, { timeout: 10_000 })

  const ids: string[] = []
  const publish = async (n: number): Promise<void> => { ids.push(await ticks.publish('tick', { n }) as string) }
  for (let n = 1; n <= 5; n++) await publish(n)
  const expected = (count: number): Array<[number, string]> => ids.slice(0, count).map((id, i) => [i + 1, id])
  for (const page of pages) {
    await page.waitForFunction((count) => (globalThis as unknown as { log: PageLog }).log.ticks.length >= count, 5, { timeout: 10_000 })
  }
  for (const [i, page] of pages.entries()) t.same((await readLog(page)).ticks, expected(5), `tab ${i + 1}: every event once`)
  t.equal(connections.length, 1, `${TABS} tabs, one connection`)
  t.equal(app.sse.stats().openStreams, 1)

  const roles = await Promise.all(pages.map(isLeader))
  t.equal(roles.filter(Boolean).length, 1, 'exactly one leader')
  const leader = pages[roles.indexOf(true)]
  await leader.close()
  const rest = pages.filter((page) => page !== leader)
  // Published while the new leader may not be connected yet: the channel's history keeps them.
  for (let n = 6; n <= 10; n++) await publish(n)
  for (const page of rest) {
    await page.waitForFunction((count) => (globalThis as unknown as { log: PageLog }).log.ticks.length >= count, 10, { timeout: 10_000 })
  }
  await waitUntil(() => connections.length === 2, 5000, 'the takeover connection')
  for (const [i, page] of rest.entries()) {
    const log = await readLog(page)
    t.same(log.ticks, expected(10), `remaining tab ${i + 1}: all ten, once each, in order`)
    t.same(log.errors, [])
  }
  t.same(connections, [undefined, ids[4]], 'the new leader resumed from the last forwarded id')
  t.equal((await Promise.all(rest.map(isLeader))).filter(Boolean).length, 1, 'one new leader')
  await waitUntil(() => app.sse.stats().openStreams === 1, 5000, 'one connection again')
  t.same(pageErrors, [])
})
