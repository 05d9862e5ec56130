/**
 * The fetch transport in Node (Node's own fetch) against real servers: headers (a
 * function called again on every reconnect), POST bodies, Last-Event-ID, the end of a
 * finite stream, 204, 401 then 200 with onUnauthorized, 503 with Retry-After, 5xx,
 * garbage, a server that stalls, an endless line, and the AbortSignal.
 */
import { EventSource } from 'eventsource'
import t from 'tap'
import { createClient, END_EVENT, type ClientStatus, type SseClient, type SseClientError } from '../../lib/client.js'
import { backoffDelayMs, retryAfterMs } from '../../lib/client/backoff.js'
import { defineEvents, Text, Type, type SsePluginOptions } from '../../lib/index.js'
import { buildApp, Inbox, sleep, waitUntil, withTimeout, type Teardown, type TestApp } from '../helpers/app.js'

const feed = defineEvents({
  tick: Type.Object({ n: Type.Integer() }),
  token: Text()
})

/** `retryMs: 20` keeps reconnects quick; `forceCloseConnections` ends stalled responses at teardown. */
function build (t: Teardown, sse: SsePluginOptions = {}): Promise<TestApp> {
  return buildApp(t, { sse: { heartbeatMs: false, retryMs: 20, ...sse }, fastify: { forceCloseConnections: true } })
}

function open<C extends SseClient<any>> (t: Teardown, client: C): C {
  t.teardown(() => { client.close() })
  return client
}

function statuses (client: SseClient<any>): ClientStatus[] {
  const seen: ClientStatus[] = []
  client.onStatus((status) => seen.push(status))
  return seen
}

function errorInbox (): { onError: (error: SseClientError) => void, errors: Inbox<SseClientError> } {
  const errors = new Inbox<SseClientError>()
  return { onError: (error) => errors.push(error), errors }
}

t.test('headers (a function, called again on reconnect), POST body, Last-Event-ID on every reconnect', async (t) => {
  const { app, start } = await build(t)
  const requests: Array<{ method: string, auth: string | undefined, lastEventId: string | undefined, body: unknown }> = []
  app.post('/chat', (request, reply) => {
    requests.push({
      method: request.method,
      auth: request.headers.authorization,
      lastEventId: request.headers['last-event-id'] as string | undefined,
      body: request.body
    })
    const stream = reply.sse(feed)
    stream.send('tick', { n: requests.length }, { id: `c${requests.length}` })
    if (requests.length < 3) stream.close() // a drop: the client resumes
  })
  const origin = await start()
  let token = 0
  const client = open(t, createClient(`${origin}/chat`, {
    catalog: feed,
    headers: () => ({ authorization: `Bearer t${++token}`, 'content-type': 'application/json' }),
    body: JSON.stringify({ prompt: 'hi' })
  }))
  const ticks = new Inbox<number>()
  client.on('tick', (tick) => ticks.push(tick.n))
  t.same([await ticks.next(), await ticks.next(), await ticks.next()], [1, 2, 3])
  t.same(requests, [
    { method: 'POST', auth: 'Bearer t1', lastEventId: undefined, body: { prompt: 'hi' } },
    { method: 'POST', auth: 'Bearer t2', lastEventId: 'c1', body: { prompt: 'hi' } },
    { method: 'POST', auth: 'Bearer t3', lastEventId: 'c2', body: { prompt: 'hi' } }
  ], 'same method and body each time, fresh headers, the last id')
})

for (const transport of ['fetch', 'eventsource'] as const) {
  t.test(`${transport}: sse:end closes the client for good and calls onEnd`, async (t) => {
    const { app, start } = await build(t)
    let requests = 0
    app.get('/finite', (_request, reply) => {
      requests++
      const stream = reply.sse(feed)
      stream.send('tick', { n: 1 }, { id: '1' })
      stream.end()
    })
    const origin = await start()
    const client = open(t, createClient(`${origin}/finite`, { catalog: feed, ...(transport === 'fetch' ? {} : { EventSource, transport }) }))
    const seen = statuses(client)
    const ticks: number[] = []
    client.on('tick', (tick) => ticks.push(tick.n))
    const ended = new Promise<void>((resolve) => { client.onEnd(resolve) })
    await withTimeout(ended, 3000, 'onEnd')
    t.equal(client.status, 'closed')
    t.same(seen, ['open', 'closed'])
    t.same(ticks, [1], 'the events before the end were delivered')
    await sleep(200) // ten retry periods: a reconnect would have happened
    t.equal(requests, 1, 'never reconnected')
    t.equal(END_EVENT, 'sse:end')
  })
}

t.test('204 stops the client: closed, onEnd, no reconnect', async (t) => {
  const { app, start } = await build(t)
  let requests = 0
  app.get('/gone', (_request, reply) => { requests++; reply.code(204).send() })
  const origin = await start()
  const { onError, errors } = errorInbox()
  const client = open(t, createClient(`${origin}/gone`, { transport: 'fetch', onError }))
  const ended = new Promise<void>((resolve) => { client.onEnd(resolve) })
  await withTimeout(ended, 3000, 'onEnd')
  t.equal(client.status, 'closed')
  await sleep(100)
  t.equal(requests, 1)
  await t.rejects(errors.next(50), 'no error: the server said there is no more')
})

t.test('401 then 200: onUnauthorized refreshes the token and the client retries at once', async (t) => {
  const { app, start } = await build(t)
  const seen: Array<string | undefined> = []
  app.get('/private', (request, reply) => {
    seen.push(request.headers.authorization)
    if (request.headers.authorization !== 'Bearer fresh') return reply.code(401).send({ error: 'expired' })
    reply.sse(feed).send('tick', { n: 1 })
  })
  const origin = await start()
  let token = 'stale'
  const refusals: unknown[] = []
  const client = open(t, createClient(`${origin}/private`, {
    catalog: feed,
    headers: () => ({ authorization: `Bearer ${token}` }),
    onUnauthorized: async (info) => {
      refusals.push(info)
      token = 'fresh'
      return true
    }
  }))
  const ticks = new Inbox<number>()
  client.on('tick', (tick) => ticks.push(tick.n))
  t.equal(await ticks.next(), 1)
  t.same(seen, ['Bearer stale', 'Bearer fresh'])
  t.same(refusals, [{ statusCode: 401, attempt: 1 }])
})

t.test('401 without onUnauthorized, or when it says no: TYPED_SSE_CLIENT_UNAUTHORIZED, closed', async (t) => {
  const { app, start } = await build(t)
  let requests = 0
  app.get('/private', (_request, reply) => { requests++; return reply.code(403).send() })
  const origin = await start()
  for (const onUnauthorized of [undefined, () => false]) {
    const { onError, errors } = errorInbox()
    const client = open(t, createClient(`${origin}/private`, { transport: 'fetch', onError, onUnauthorized }))
    const error = await errors.next(3000)
    t.equal(error.code, 'TYPED_SSE_CLIENT_UNAUTHORIZED')
    t.equal(error.statusCode, 403)
    t.equal(client.status, 'closed')
  }
  await sleep(100)
  t.equal(requests, 2, 'one request each, no retry')
})

t.test('503 with Retry-After is honoured; 500 and 429 are retried; then the stream opens', async (t) => {
  const { app, start } = await build(t)
  const at: number[] = []
  app.get('/busy', (_request, reply) => {
    at.push(Date.now())
    if (at.length === 1) return reply.code(503).header('retry-after', '1').send()
    if (at.length === 2) return reply.code(500).send()
    if (at.length === 3) return reply.code(429).send()
    reply.sse(feed).send('tick', { n: at.length })
  })
  const origin = await start()
  const client = open(t, createClient(`${origin}/busy`, { catalog: feed, transport: 'fetch', reconnectDelayMs: 20 }))
  const seen = statuses(client)
  const ticks = new Inbox<number>()
  client.on('tick', (tick) => ticks.push(tick.n))
  t.equal(await ticks.next(5000), 4)
  t.ok(at[1] - at[0] >= 950, `waited the Retry-After second (${at[1] - at[0]} ms)`)
  t.same(seen, ['open'], 'connecting throughout the retries, then open')
})

t.test('a 200 that is not an event stream, or a 404: TYPED_SSE_CLIENT_CONNECTION_FAILED, closed, no retry', async (t) => {
  const { app, start } = await build(t)
  let requests = 0
  app.get('/json', (_request, reply) => { requests++; return reply.send({ not: 'a stream' }) })
  const origin = await start()
  for (const path of ['/json', '/missing']) {
    const { onError, errors } = errorInbox()
    const client = open(t, createClient(`${origin}${path}`, { transport: 'fetch', onError }))
    const error = await errors.next(3000)
    t.equal(error.code, 'TYPED_SSE_CLIENT_CONNECTION_FAILED')
    t.equal(error.statusCode, path === '/json' ? 200 : 404)
    t.equal(client.status, 'closed')
  }
  await sleep(100)
  t.equal(requests, 1)
})

t.test('garbage on the stream is skipped as the spec says; the valid events around it arrive', async (t) => {
  const { app, start } = await build(t)
  app.get('/garbage', (_request, reply) => {
    reply.hijack()
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream' })
    reply.raw.write(Buffer.from([0xff, 0xfe, 0x00, 0x80]))
    reply.raw.write('garbage:::\r\n\0\0\nevent\n: comment\ndata: {"n":1}\nevent: tick\n\n')
    reply.raw.write('event: tick\ndata: {broken json\n\nevent: tick\r\ndata: {"n":2}\r\n\r\n')
  })
  const origin = await start()
  const { onError, errors } = errorInbox()
  const client = open(t, createClient(`${origin}/garbage`, { catalog: feed, transport: 'fetch', onError }))
  const ticks = new Inbox<number>()
  client.on('tick', (tick) => ticks.push(tick.n))
  t.same([await ticks.next(), await ticks.next()], [1, 2])
  t.equal((await errors.next()).code, 'TYPED_SSE_CLIENT_INVALID_JSON', 'the broken event reported, not delivered')
  t.equal(client.status, 'open')
})

t.test('a server that stalls before the response head: TYPED_SSE_CLIENT_TIMEOUT, then a reconnect', async (t) => {
  const { app, start } = await build(t)
  let requests = 0
  app.get('/stall', (_request, reply) => {
    requests++
    if (requests === 1) {
      reply.hijack() // never answers
      return
    }
    reply.sse(feed).send('tick', { n: 2 })
  })
  const origin = await start()
  const { onError, errors } = errorInbox()
  const client = open(t, createClient(`${origin}/stall`, { catalog: feed, transport: 'fetch', onError, responseTimeoutMs: 300, reconnectDelayMs: 20 }))
  const ticks = new Inbox<number>()
  client.on('tick', (tick) => ticks.push(tick.n))
  t.equal((await errors.next(5000)).code, 'TYPED_SSE_CLIENT_TIMEOUT')
  t.equal(await ticks.next(5000), 2)
})

t.test('one endless line (a hostile server): dropped past maxEventBytes with a code, memory bounded, reconnects', async (t) => {
  const { app, start } = await build(t)
  const CHUNK = Buffer.alloc(64 * 1024, 'x')
  const LIMIT_BYTES = 200 * 1024 * 1024
  const written = new Inbox<number>()
  let requests = 0
  app.get('/flood', (_request, reply) => {
    requests++
    reply.hijack()
    const raw = reply.raw
    raw.writeHead(200, { 'content-type': 'text/event-stream' })
    if (requests > 1) {
      raw.write('event: tick\ndata: {"n":2}\n\n')
      return
    }
    raw.write('data: ')
    let total = 0
    const pump = (): void => {
      while (!raw.destroyed && total < LIMIT_BYTES) {
        total += CHUNK.length
        if (!raw.write(CHUNK)) {
          raw.once('drain', pump)
          return
        }
      }
      written.push(total)
    }
    raw.on('close', () => written.push(total))
    pump()
  })
  const origin = await start()
  const { onError, errors } = errorInbox()
  const client = open(t, createClient(`${origin}/flood`, { catalog: feed, transport: 'fetch', onError, reconnectDelayMs: 20 }))
  const ticks = new Inbox<number>()
  client.on('tick', (tick) => ticks.push(tick.n))
  t.equal((await errors.next(10_000)).code, 'TYPED_SSE_CLIENT_EVENT_TOO_LARGE')
  const total = await written.next(10_000)
  t.ok(total < 32 * 1024 * 1024, `the client hung up after ${(total / 1048576).toFixed(1)} MiB of the 200 MiB line (1 MiB bound + socket buffers)`)
  t.equal(await ticks.next(5000), 2, 'and reconnected')
})

t.test('the AbortSignal closes the client and the connection', async (t) => {
  const { app, start } = await build(t)
  const closed = new Inbox<string>()
  app.get('/feed', (_request, reply) => {
    const stream = reply.sse(feed)
    stream.onClose((reason) => closed.push(reason))
    stream.send('tick', { n: 1 })
  })
  const origin = await start()
  const controller = new AbortController()
  const client = open(t, createClient(`${origin}/feed`, { catalog: feed, signal: controller.signal }))
  const ticks = new Inbox<number>()
  client.on('tick', (tick) => ticks.push(tick.n))
  t.equal(await ticks.next(), 1)
  controller.abort()
  t.equal(client.status, 'closed')
  t.equal(await closed.next(), 'client', 'the server saw the client leave')
  await waitUntil(() => app.sse.stats().openStreams === 0, 2000, 'no reconnect')
  const early = createClient(`${origin}/feed`, { catalog: feed, signal: AbortSignal.abort() })
  t.equal(early.status, 'closed', 'an already aborted signal: closed from the start')
})

t.test('backoff: retry first, doubling from the floor, capped, jitter on top at most a quarter; Retry-After as seconds or a date', async (t) => {
  const bounds = { minMs: 250, maxMs: 1000 }
  t.same([0, 1, 2, 3, 10].map((streak) => backoffDelayMs(streak, 100, bounds, () => 0)), [250, 500, 1000, 1000, 1000], 'retry below the floor: growth from the floor')
  t.same([0, 1, 2].map((streak) => backoffDelayMs(streak, 0, bounds, () => 0.999999)), [312, 624, 1249], 'jitter adds less than a quarter')
  t.same([0, 1].map((streak) => backoffDelayMs(streak, 3000, bounds, () => 0)), [3000, 3000], 'a retry: above the cap is still waited')
  t.equal(backoffDelayMs(1e9, 100, { minMs: 250, maxMs: 30_000 }, () => 0.5), 33_750, 'endless retries stay finite')
  t.equal(retryAfterMs('3'), 3000)
  t.equal(retryAfterMs(new Date(10_000).toUTCString(), 4000), 6000)
  t.equal(retryAfterMs('soon'), undefined)
  t.equal(retryAfterMs(null), undefined)
})

t.test('reconnects keep coming under a server that fails every time, each wait within the cap', async (t) => {
  const { app, start } = await build(t)
  const at: number[] = []
  app.get('/down', (_request, reply) => {
    at.push(Date.now())
    return reply.code(502).send()
  })
  const origin = await start()
  open(t, createClient(`${origin}/down`, { transport: 'fetch', reconnectDelayMs: 10, minReconnectDelayMs: 10, maxReconnectDelayMs: 100 }))
  await waitUntil(() => at.length >= 12, 10_000, '12 attempts')
  const gaps = at.slice(1).map((time, i) => time - at[i])
  t.ok(gaps.every((gap) => gap < 125 + 500), `every gap is the capped delay (plus a quarter) plus request time: ${gaps.join(', ')} ms`)
})

t.test('a stream that delivered events and then dropped is retried at the first delay again: the backoff restarts after events', async (t) => {
  const { app, start } = await build(t)
  const at: number[] = []
  app.get('/brief', (_request, reply) => {
    at.push(Date.now())
    const stream = reply.sse(feed)
    stream.send('tick', { n: at.length })
    stream.close()
  })
  const origin = await start()
  const ticks: number[] = []
  const client = open(t, createClient(`${origin}/brief`, { catalog: feed, transport: 'fetch', minReconnectDelayMs: 50, maxReconnectDelayMs: 30_000 }))
  client.on('tick', (data) => ticks.push(data.n))
  // Restarted each time: about 50-62 ms apart. Doubling instead, ten connections would
  // take 50 * (2^9 - 1) ms, over 25 s.
  await waitUntil(() => ticks.length >= 10, 8000, 'ten connections, each with its event')
  const gaps = at.slice(1, 10).map((time, i) => time - at[i])
  t.ok(gaps.every((gap) => gap < 2000), `no wait grew: ${gaps.join(', ')} ms`)
})

t.test('pauseWhenHidden: hidden drops the connection (paused), shown resumes with Last-Event-ID', async (t) => {
  // Headless Chromium cannot hide a page, so the page's `document` is stood in for by an
  // EventTarget with the same two members the transport reads; server, network and client are real.
  const page = Object.assign(new EventTarget(), { visibilityState: 'visible' })
  Object.defineProperty(globalThis, 'document', { value: page, configurable: true })
  t.teardown(() => { Reflect.deleteProperty(globalThis, 'document') })
  const setVisibility = (state: 'visible' | 'hidden'): void => {
    page.visibilityState = state
    page.dispatchEvent(new Event('visibilitychange'))
  }

  const { app, start } = await build(t)
  const ticks = app.sse.channel('ticks', feed, { history: true })
  const lastEventIds: Array<string | undefined> = []
  const closes = new Inbox<string>()
  app.get('/ticks', async (request, reply) => {
    lastEventIds.push(request.headers['last-event-id'] as string | undefined)
    const stream = reply.sse(feed)
    stream.onClose((reason) => closes.push(reason))
    await ticks.subscribe(stream)
  })
  const origin = await start()
  const client = open(t, createClient(`${origin}/ticks`, { catalog: feed, pauseWhenHidden: true }))
  const seen = statuses(client)
  const received = new Inbox<number>()
  client.on('tick', (tick) => received.push(tick.n))
  await waitUntil(() => ticks.size === 1, 2000, 'subscribed')
  const first = await ticks.publish('tick', { n: 1 })
  t.equal(await received.next(), 1)

  setVisibility('hidden')
  t.equal(client.status, 'paused')
  t.equal(await closes.next(), 'client', 'the connection was dropped while hidden')
  await ticks.publish('tick', { n: 2 })
  await sleep(100)
  t.equal(lastEventIds.length, 1, 'no reconnect while hidden')

  setVisibility('visible')
  t.equal(await received.next(), 2, 'the event published while hidden, replayed')
  t.same(lastEventIds, [undefined, first], 'resumed with Last-Event-ID')
  t.same(seen, ['open', 'paused', 'connecting', 'open'])
})

t.test('a headers function that throws: TYPED_SSE_CLIENT_HANDLER_FAILED, and a later attempt succeeds', async (t) => {
  const { app, start } = await build(t)
  app.get('/feed', (request, reply) => { reply.sse(feed).send('tick', { n: Number(request.headers['x-attempt']) }) })
  const origin = await start()
  const { onError, errors } = errorInbox()
  let calls = 0
  const client = open(t, createClient(`${origin}/feed`, {
    catalog: feed,
    onError,
    reconnectDelayMs: 20,
    headers: () => {
      if (++calls === 1) throw new Error('token service down')
      return { 'x-attempt': String(calls) }
    }
  }))
  const ticks = new Inbox<number>()
  client.on('tick', (tick) => ticks.push(tick.n))
  const error = await errors.next()
  t.equal(error.code, 'TYPED_SSE_CLIENT_HANDLER_FAILED')
  t.equal((error.cause as Error).message, 'token service down')
  t.equal(await ticks.next(), 2)
})
