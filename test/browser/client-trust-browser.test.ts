/**
 * The typed client against hostile and odd servers in real Chromium, loaded as the
 * example page loads it (plain ES modules): sharing never crosses identities while one
 * identity's tabs still share one connection, forged or malformed messages on the
 * shared channel are ignored, `retry:` is honoured and `retry: 0` cannot make it storm, a Unicode id round-trips,
 * a redirect to another origin carries nothing there, and a silent connection is
 * dropped and resumed.
 */
import { randomBytes } from 'node:crypto'
import t from 'tap'
import type { BrowserContext, Page } from 'playwright-core'
import { registerClientModule } from '../../example/client-module.js'
import { defineEvents, Type, type Channel } from '../../lib/index.js'
import { buildApp, Inbox, sleep, waitUntil, type Teardown, type TestApp } from '../helpers/app.js'
import { launchChromium, skipWithoutChromium } from '../helpers/chromium.js'

const feed = defineEvents({ tick: Type.Object({ n: Type.Integer(), user: Type.String() }) })

/**
 * A page that exposes `createClient` and a log; the BroadcastChannel constructor is
 * wrapped (before the client loads) to record the names the client opens, so a test can
 * post on the client's channel without knowing how the name is made.
 */
const PAGE = `<!doctype html>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<title>client trust</title>
<script>
  window.channelNames = []
  const Native = BroadcastChannel
  window.BroadcastChannel = class extends Native {
    constructor (name) { super(name); window.channelNames.push(name) }
  }
</script>
<script type="module">
  import { createClient } from '/client/client.js'
  window.log = { ticks: [], statuses: [], errors: [] }
  window.open = (url, options) => {
    const client = window.client = createClient(url, { ...options, onError: (error) => window.log.errors.push(error.code) })
    client.onStatus((status) => window.log.statuses.push(status))
    client.on('tick', (tick, meta) => window.log.ticks.push([tick.n, tick.user, meta.id ?? null]))
    return client.status
  }
  window.createClient = createClient
  window.ready = true
</script>`

interface PageLog {
  ticks: Array<[number, string, string | null]>
  statuses: string[]
  errors: string[]
}

type Global = typeof globalThis & {
  log: PageLog
  channelNames: string[]
  ready: boolean
  open: (url: string, options: Record<string, unknown>) => string
  client: { status: string, isLeader: boolean, close: () => void }
}

const skip = skipWithoutChromium()
const browser = skip === false ? await launchChromium(t) : undefined

/** The page's server: `routes` declares the test's routes before it listens. */
async function serve (t: Teardown, routes: (server: TestApp['app']) => void): Promise<string> {
  const built = await buildApp(t, { sse: { heartbeatMs: false }, fastify: { forceCloseConnections: true } })
  registerClientModule(built.app)
  built.app.get('/', (_request, reply) => reply.type('text/html').send(PAGE))
  routes(built.app)
  return await built.start()
}

async function newPage (t: Teardown, context: BrowserContext, origin: string, errors: string[]): Promise<Page> {
  const page = await context.newPage()
  t.teardown(() => page.close())
  page.on('pageerror', (err) => errors.push(err.message))
  await page.goto(`${origin}/`, { timeout: 30_000 })
  await page.waitForFunction(() => (globalThis as Global).ready, null, { timeout: 30_000 })
  return page
}

const readLog = (page: Page): Promise<PageLog> => page.evaluate(() => (globalThis as Global).log)
const waitTicks = (page: Page, count: number): Promise<unknown> =>
  page.waitForFunction((count) => (globalThis as Global).log.ticks.length >= count, count, { timeout: 10_000 })

t.test('Chromium: alice and bob never see each other\'s events; 8 tabs of one identity share 1 connection', { skip }, async (t) => {
  type User = 'alice' | 'bob' | 'carol' | 'dave'
  const USERS: readonly User[] = ['alice', 'bob', 'carol', 'dave']
  const connections: string[] = []
  const channels = new Map<User, Channel<typeof feed>>()
  const origin = await serve(t, (server) => {
    for (const user of USERS) channels.set(user, server.sse.channel(`inbox:${user}`, feed, { history: true }))
    server.get('/inbox', async (request, reply) => {
      const user = request.headers['x-user'] as User
      connections.push(user)
      await channels.get(user)?.subscribe(reply.sse(feed))
    })
  })
  const pageErrors: string[] = []
  const tabs: Array<{ user: User, page: Page }> = []
  for (const user of ['alice', 'bob', 'alice', 'carol', 'alice', 'bob', 'dave', 'alice', 'alice', 'carol', 'alice', 'alice', 'alice'] as const) {
    const page = await newPage(t, browser as BrowserContext, origin, pageErrors)
    await page.evaluate((user) => {
      // alice and bob: a headers function (a token that could be refreshed), and the key says
      // whose stream it is; carol and dave: headers as an object, compared by value.
      const options = user === 'alice' || user === 'bob'
        ? { shared: { key: user }, headers: () => ({ 'x-user': user }) }
        : { shared: true, headers: { 'x-user': user } }
      return (globalThis as Global).open('/inbox', options)
    }, user)
    tabs.push({ user, page })
  }
  t.equal(tabs.filter((tab) => tab.user === 'alice').length, 8)
  await waitUntil(() => USERS.every((user) => channels.get(user)?.size === 1), 15_000, 'one leader per identity subscribed')
  for (let n = 1; n <= 3; n++) {
    for (const user of USERS) await channels.get(user)?.publish('tick', { n, user })
  }
  for (const { user, page } of tabs) {
    await waitTicks(page, 3)
    await sleep(50)
    const log = await readLog(page)
    t.same(log.ticks.map(([n, owner]) => [n, owner]), [[1, user], [2, user], [3, user]], `a tab of ${user} sees ${user}'s events only`)
  }
  t.same(connections.sort(), USERS, 'one connection per identity: 8 alice tabs share one')
  t.same(pageErrors, [])

  // A headers function without a key cannot be shared: nothing could tell the identities apart.
  const page = tabs[0].page
  const codes = await page.evaluate(() => {
    const attempt = (options: Record<string, unknown>): string => {
      try {
        return (globalThis as Global).open('/inbox', options)
      } catch (error) {
        return (error as { code: string }).code
      }
    }
    return [
      attempt({ shared: true, headers: () => ({ 'x-user': 'mallory' }) }),
      attempt({ shared: { key: 'alice', scope: 'all' } }),
      attempt({ shared: { key: '' } })
    ]
  })
  t.same(codes, ['TYPED_SSE_CLIENT_BAD_OPTION', 'TYPED_SSE_CLIENT_BAD_OPTION', 'TYPED_SSE_CLIENT_BAD_OPTION'], 'shared: true with a headers function, an unknown key, an empty key')
})

/** Two tabs sharing `/ticks` of `origin`: the leader (subscribed to `ticks`), then a follower, both open. */
async function sharedPair (t: Teardown, origin: string, ticks: Channel<typeof feed>): Promise<{ leader: Page, follower: Page, pageErrors: string[] }> {
  const pageErrors: string[] = []
  const leader = await newPage(t, browser as BrowserContext, origin, pageErrors)
  await leader.evaluate(() => (globalThis as Global).open('/ticks', { shared: true }))
  await waitUntil(() => ticks.size === 1, 10_000, 'the leader subscribed')
  const follower = await newPage(t, browser as BrowserContext, origin, pageErrors)
  await follower.evaluate(() => (globalThis as Global).open('/ticks', { shared: true }))
  await follower.waitForFunction(() => (globalThis as Global).client.status === 'open', null, { timeout: 10_000 })
  return { leader, follower, pageErrors }
}

t.test('Chromium: forged and malformed messages on the shared channel are ignored by followers', { skip }, async (t) => {
  let channel: Channel<typeof feed> | undefined
  const origin = await serve(t, (server) => {
    channel = server.sse.channel('ticks', feed, { history: true })
    server.get('/ticks', async (_request, reply) => { await (channel as Channel<typeof feed>).subscribe(reply.sse(feed)) })
  })
  const ticks = channel as Channel<typeof feed>
  const { follower, pageErrors } = await sharedPair(t, origin, ticks)
  t.equal(await follower.evaluate(() => (globalThis as Global).client.isLeader), false)

  // Any script of the origin can post on the channel: here, the follower's own page.
  await follower.evaluate(() => {
    const channel = new BroadcastChannel((globalThis as Global).channelNames[0])
    for (const message of [
      'garbage', null, 42, [], { kind: 'nope' },
      { kind: 'event' }, { kind: 'event', event: null }, { kind: 'event', event: { type: 'tick', data: 5, lastEventId: '' } },
      { kind: 'event', event: { type: 'tick', data: '{"n":666,"user":"x"}', lastEventId: 7 } },
      { kind: 'status' }, { kind: 'status', status: 'closed' }, { kind: 'status', status: { toString: null } },
      { kind: 'stop', error: 'boom' }, { kind: 'stop', error: null }, { kind: 'stop', error: { code: 5 } },
      { kind: 'stop', error: { code: 'EVIL', message: 'x' } }, { kind: 'stop', error: { code: 'TYPED_SSE_CLIENT_TIMEOUT', message: 'x', statusCode: 'x' } }
    ]) channel.postMessage(message)
    channel.close()
  })
  await sleep(300)
  await ticks.publish('tick', { n: 1, user: 'all' })
  await waitTicks(follower, 1)
  const log = await readLog(follower)
  t.same(log.ticks.map(([n]) => n), [1], 'only the real event arrived')
  t.equal(await follower.evaluate(() => (globalThis as Global).client.status), 'open', 'still open: no forged stop or status took')
  t.same(log.errors, [])
  t.same(pageErrors, [], 'nothing threw in any tab')
})

/**
 * Requests in 3 s from one page's client, opened with `options` against a server that
 * answers `retry: 0` and ends every stream.
 */
async function stormRequests (t: Teardown, options: Record<string, unknown>): Promise<number> {
  const at: number[] = []
  const origin = await serve(t, (server) => {
    server.get('/storm', (_request, reply) => {
      at.push(Date.now())
      return reply.type('text/event-stream').send('retry: 0\ndata: 1\n\n')
    })
  })
  const page = await newPage(t, browser as BrowserContext, origin, [])
  const started = Date.now()
  await page.evaluate((options) => (globalThis as Global).open('/storm', options), options)
  await sleep(3000)
  await page.evaluate(() => { (globalThis as Global).client.close() })
  return at.filter((time) => time - started <= 3000).length
}

t.test('Chromium: a server that answers retry: 0 and ends every time gets at most 20 requests in 3 s', { skip }, async (t) => {
  const count = await stormRequests(t, { transport: 'fetch' })
  t.ok(count >= 2 && count <= 20, `${count} requests in 3 s (at most 20, and it does reconnect)`)
})

t.test("Chromium: retry: is the first wait: a server asking for 1000 ms gets each reconnect 1000 to 1250 ms later", { skip }, async (t) => {
  const at: number[] = []
  const origin = await serve(t, (server) => {
    server.get('/retry', (_request, reply) => {
      at.push(Date.now())
      return reply.type('text/event-stream').send('retry: 1000\ndata: 1\n\n')
    })
  })
  const page = await newPage(t, browser as BrowserContext, origin, [])
  await page.evaluate(() => (globalThis as Global).open('/retry', { transport: 'fetch' }))
  await waitUntil(() => at.length >= 4, 15_000, '4 connections', 20)
  await page.evaluate(() => { (globalThis as Global).client.close() })
  // From one request to the next: the wait plus the (loopback) response; timers never fire early.
  const gaps = at.slice(1, 4).map((time, i) => time - at[i])
  t.ok(gaps.every((gap) => gap >= 1000 - 5), `never before retry: ${gaps.join(', ')} ms`)
  t.ok(gaps.every((gap) => gap <= 1250 + 1500), `within retry + a quarter (+ slack): ${gaps.join(', ')} ms`)
})

t.test('Chromium: an id outside Latin-1 (€1 🎉) goes back as Last-Event-ID in UTF-8', { skip }, async (t) => {
  const lastEventIds = new Inbox<string | undefined>()
  let connections = 0
  const origin = await serve(t, (server) => {
    server.get('/uni', (_request, reply) => {
      const stream = reply.sse(feed)
      lastEventIds.push(stream.lastEventId)
      if (++connections === 1) {
        stream.send('tick', { n: 1, user: 'u' }, { id: '€1 🎉' })
        stream.close()
      }
    })
  })
  const page = await newPage(t, browser as BrowserContext, origin, [])
  await page.evaluate(() => (globalThis as Global).open('/uni', { transport: 'fetch', reconnectDelayMs: 20 }))
  t.equal(await lastEventIds.next(10_000), undefined)
  t.equal(await lastEventIds.next(10_000), '€1 🎉', 'the server read back the exact id')
  const log = await readLog(page)
  t.same(log.ticks, [[1, 'u', '€1 🎉']])
  t.same(log.errors, [])
})

t.test('Chromium: a redirect to another origin carries neither the headers nor the body there; a same-origin one works', { skip }, async (t) => {
  // The other origin says yes to any CORS preflight, as an attacker's server would.
  const other = await buildApp(t, { fastify: { forceCloseConnections: true } })
  const reached: string[] = []
  other.app.addHook('onRequest', async (request, reply) => {
    reached.push(`${request.method} ${String(request.headers['x-api-key'] ?? request.headers['access-control-request-headers'] ?? '')}`)
    reply.header('access-control-allow-origin', request.headers.origin ?? '*').header('access-control-allow-headers', '*').header('access-control-allow-methods', '*')
    if (request.method === 'OPTIONS') return await reply.code(204).send()
    return await reply.type('text/event-stream').send('event: tick\ndata: {"n":7,"user":"other"}\n\n')
  })
  const otherOrigin = await other.start()
  const origin = await serve(t, (server) => {
    server.post('/r307', (_request, reply) => reply.redirect(`${otherOrigin}/steal`, 307))
    server.post('/s307', (_request, reply) => reply.redirect('/same', 307))
    server.post('/same', (request, reply) => {
      const ok = request.headers['x-api-key'] === 'k' && request.body === 'prompt'
      return reply.type('text/event-stream').send(`event: tick\ndata: {"n":${ok ? 1 : 0},"user":"home"}\n\n`)
    })
  })

  const page = await newPage(t, browser as BrowserContext, origin, [])
  await page.evaluate(() => (globalThis as Global).open('/r307', { body: 'prompt', headers: { 'x-api-key': 'k', 'content-type': 'text/plain' } }))
  // The browser fails the hop itself (mode 'same-origin') and does not say why: to the client, a network error.
  await sleep(2000)
  t.equal(await page.evaluate(() => (globalThis as Global).client.status), 'connecting', 'never open: retrying with backoff')
  t.same((await readLog(page)).ticks, [], 'nothing read from the other origin')
  t.same(reached, [], 'nothing reached the other origin, not even a preflight')

  const again = await newPage(t, browser as BrowserContext, origin, [])
  await again.evaluate(() => (globalThis as Global).open('/s307', { body: 'prompt', headers: { 'x-api-key': 'k', 'content-type': 'text/plain' } }))
  await waitTicks(again, 1)
  t.same((await readLog(again)).ticks[0].slice(0, 2), [1, 'home'], 'a same-origin 307 keeps the headers and the body')
})

t.test('Chromium: a silent connection is dropped after heartbeatTimeoutMs and resumed with Last-Event-ID', { skip }, async (t) => {
  const lastEventIds: Array<string | undefined> = []
  const origin = await serve(t, (server) => {
    server.get('/silent', (_request, reply) => {
      const stream = reply.sse(feed)
      lastEventIds.push(stream.lastEventId)
      stream.send('tick', { n: lastEventIds.length, user: 'u' }, { id: `s${lastEventIds.length}` })
    })
  })
  const page = await newPage(t, browser as BrowserContext, origin, [])
  await page.evaluate(() => (globalThis as Global).open('/silent', { transport: 'fetch', heartbeatTimeoutMs: 1000 }))
  await waitTicks(page, 2)
  t.same(lastEventIds.slice(0, 2), [undefined, 's1'], 'reconnected with the last id')
  t.same((await readLog(page)).errors.slice(0, 1), ['TYPED_SSE_CLIENT_TIMEOUT'])
})

t.test('Chromium: a flood of tiny events does not hold the page: the client yields between batches', { skip }, async (t) => {
  const COUNT = 100_000
  const origin = await serve(t, (server) => {
    server.get('/flood', (_request, reply) => {
      reply.hijack()
      reply.raw.writeHead(200, { 'content-type': 'text/event-stream' })
      reply.raw.write('data:1\n\n'.repeat(COUNT))
    })
  })
  const page = await newPage(t, browser as BrowserContext, origin, [])
  // Turns of the page's event loop are counted by a message bouncing between two ports (a
  // task each time, as input or painting would need); events within one turn ran without a break.
  const result = await page.evaluate(async (count) => {
    const page = globalThis as Global & { createClient: (url: string, options: unknown) => { on: (event: string, handler: () => void) => void, close: () => void } }
    let turn = 0
    let isFlooding = true
    const channel = new MessageChannel()
    channel.port1.onmessage = () => {
      turn++
      if (isFlooding) channel.port2.postMessage(null)
    }
    channel.port2.postMessage(null)
    const perTurn = new Map<number, number>()
    let received = 0
    await new Promise<void>((resolve) => {
      const client = page.createClient('/flood', { transport: 'fetch', text: { message: true } })
      client.on('message', () => {
        perTurn.set(turn, (perTurn.get(turn) ?? 0) + 1)
        if (++received === count) {
          client.close()
          resolve()
        }
      })
    })
    isFlooding = false
    return { received, longest: Math.max(...perTurn.values()), turns: perTurn.size }
  }, COUNT)
  t.equal(result.received, COUNT)
  t.ok(result.longest <= 2000, `at most 2000 events between two turns of the page's event loop (${result.longest}, over ${result.turns} turns)`)
})

t.test('Chromium: a 200 whose gzip body is garbage is reported to onError, and the client reconnects', { skip }, async (t) => {
  let requests = 0
  const origin = await serve(t, (server) => {
    server.get('/gz', (_request, reply) => {
      requests++
      reply.hijack()
      reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'content-encoding': 'gzip' })
      reply.raw.end(randomBytes(64))
    })
  })
  const page = await newPage(t, browser as BrowserContext, origin, [])
  await page.evaluate(() => (globalThis as Global).open('/gz', { transport: 'fetch', reconnectDelayMs: 50 }))
  await page.waitForFunction(() => (globalThis as Global).log.errors.length > 0, null, { timeout: 10_000 })
  t.equal((await readLog(page)).errors[0], 'TYPED_SSE_CLIENT_READ_FAILED')
  await waitUntil(() => requests >= 2, 10_000, 'a reconnect')
})

t.test('Chromium: POST /jobs answering 303 to /events runs the POST handler once per connection', { skip }, async (t) => {
  const jobs: string[] = []
  const streams: string[] = []
  const origin = await serve(t, (server) => {
    server.post('/jobs', (request, reply) => {
      jobs.push(String(request.body))
      return reply.redirect(`/events?job=${jobs.length}`, 303)
    })
    server.get('/events', (request, reply) => {
      streams.push(request.url)
      return reply.type('text/event-stream').send(`event: tick\ndata: {"n":${streams.length},"user":"job"}\n\n`)
    })
  })
  for (const crossOriginRedirect of ['refuse', 'follow']) {
    jobs.length = 0
    streams.length = 0
    const page = await newPage(t, browser as BrowserContext, origin, [])
    await page.evaluate((crossOriginRedirect) => (globalThis as Global).open('/jobs', { body: 'a poem', headers: { 'content-type': 'text/plain' }, crossOriginRedirect }), crossOriginRedirect)
    await waitTicks(page, 2)
    await page.evaluate(() => { (globalThis as Global).client.close() })
    await sleep(300)
    t.ok(streams.length >= 2, `${crossOriginRedirect}: ${streams.length} connections`)
    t.equal(jobs.length, streams.length, `${crossOriginRedirect}: one POST per connection (${jobs.length} POSTs)`)
    t.same(streams.slice(0, 2), ['/events?job=1', '/events?job=2'], 'each connection reads the stream its own POST made')
    t.same((await readLog(page)).errors, [])
  }
})

t.test('Chromium: a network error after a same-origin redirect is retried with backoff, not refused', { skip }, async (t) => {
  let hits = 0
  let firstHitAt: number | undefined
  const origin = await serve(t, (server) => {
    // A fresh connection for /flaky: Chromium itself resends a request whose reused connection dies.
    server.get('/moved', (_request, reply) => reply.header('connection', 'close').redirect('/flaky', 302))
    server.get('/flaky', (request, reply) => {
      hits++
      firstHitAt ??= Date.now()
      if (Date.now() - firstHitAt < 200) {
        // Connections die before any response head for 200 ms: a network error, whichever
        // resend Chromium makes itself (it resends once when a reused connection dies).
        reply.hijack()
        request.raw.socket.destroy()
        return
      }
      return reply.type('text/event-stream').send('event: tick\ndata: {"n":1,"user":"u"}\n\n')
    })
  })
  const page = await newPage(t, browser as BrowserContext, origin, [])
  await page.evaluate(() => (globalThis as Global).open('/moved', { transport: 'fetch' }))
  await waitTicks(page, 1)
  t.ok(hits >= 2, `reconnected after the network error (${hits} requests)`)
  // A network error is reported (once); a redirect refusal would have closed the client.
  t.same((await readLog(page)).errors.filter((error: string) => error.includes('REDIRECT')), [], 'no redirect refusal')
})

t.test('Chromium: a forged event whose id is not a stream id (a line break) never becomes the next leader\'s Last-Event-ID', { skip }, async (t) => {
  let channel: Channel<typeof feed> | undefined
  const lastEventIds: Array<string | undefined> = []
  const origin = await serve(t, (server) => {
    channel = server.sse.channel('ticks', feed, { history: true })
    server.get('/ticks', async (request, reply) => {
      lastEventIds.push(request.headers['last-event-id'] as string | undefined)
      await (channel as Channel<typeof feed>).subscribe(reply.sse(feed))
    })
  })
  const ticks = channel as Channel<typeof feed>
  const { leader, follower, pageErrors } = await sharedPair(t, origin, ticks)
  await ticks.publish('tick', { n: 1, user: 'all' })
  await waitTicks(follower, 1)
  const realId = (await readLog(follower)).ticks[0][2]
  await follower.evaluate(() => {
    const channel = new BroadcastChannel((globalThis as Global).channelNames[0])
    for (const lastEventId of ['a\nb', 'a\rb', 'a\u0000b', 'x'.repeat(100_000)]) {
      channel.postMessage({ kind: 'event', event: { type: 'tick', data: '{"n":666,"user":"x"}', lastEventId } })
    }
    channel.close()
  })
  await sleep(300)
  await leader.evaluate(() => { (globalThis as Global).client.close() })
  await follower.waitForFunction(() => (globalThis as Global).client.isLeader, null, { timeout: 10_000 })
  await waitUntil(() => ticks.size === 1 && lastEventIds.length === 2, 10_000, 'the new leader subscribed')
  t.equal(lastEventIds[1], realId ?? undefined, 'it resumed from the last real id')
  await ticks.publish('tick', { n: 2, user: 'all' })
  await waitTicks(follower, 2)
  const log = await readLog(follower)
  t.same(log.ticks.map(([n]) => n), [1, 2], 'the forged events were ignored, the stream goes on')
  t.same(log.errors, [])
  t.same(pageErrors, [])
})

t.test('Chromium: minReconnectDelayMs alone selects the fetch transport, so retry: 0 cannot storm past it', { skip }, async (t) => {
  const count = await stormRequests(t, { minReconnectDelayMs: 1000 })
  t.ok(count >= 2 && count <= 5, `${count} requests in 3 s with a 1000 ms floor`)
})
