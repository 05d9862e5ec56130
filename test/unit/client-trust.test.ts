/**
 * The fetch transport (Node's fetch) against hostile and odd servers: a `retry: 0`
 * that would make it storm, `retry:` honoured as the first wait, ids outside Latin-1,
 * redirects to another origin, a connection that goes silent, close() from a status
 * listener, a broken gzip body, a flood of tiny events, and misspelt options.
 * The servers are plain node:http ones so they can misbehave exactly.
 */
import { spawn } from 'node:child_process'
import http from 'node:http'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { EventSource } from 'eventsource'
import { createClient, type SseClient, type SseClientError } from '../../lib/client.js'
import { backoffDelayMs, MAX_RECONNECT_DELAY_MS, retryAfterMs } from '../../lib/client/backoff.js'
import type { FetchFunction } from '../../lib/client/fetch-options.js'
import { sharingKey } from '../../lib/client/shared.js'
import { defineEvents, Type } from '../../lib/index.js'
import { buildApp, Inbox, sleep, waitUntil, withTimeout, thrown, type Teardown } from '../helpers/app.js'

const feed = defineEvents({ tick: Type.Object({ n: Type.Integer() }) })

interface Seen {
  readonly method: string
  readonly url: string
  readonly headers: http.IncomingHttpHeaders
  readonly body: string
  readonly at: number
}

/** A node:http server on 127.0.0.1, port 0, closed (connections too) at teardown; `requests` records each request. */
async function serve (t: Teardown, handler: (request: http.IncomingMessage, response: http.ServerResponse, seen: Seen) => void): Promise<{ origin: string, requests: Seen[] }> {
  const requests: Seen[] = []
  const server = http.createServer((request, response) => {
    const parts: Buffer[] = []
    request.on('data', (part: Buffer) => parts.push(part))
    request.on('end', () => {
      const seen = { method: request.method ?? '', url: request.url ?? '', headers: request.headers, body: Buffer.concat(parts).toString('utf8'), at: Date.now() }
      requests.push(seen)
      handler(request, response, seen)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  const { port } = server.address() as { port: number }
  return { origin: `http://127.0.0.1:${port}`, requests }
}

function streamHead (response: http.ServerResponse, extra: http.OutgoingHttpHeaders = {}): void {
  response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', ...extra })
}

function open<C extends SseClient<any>> (t: Teardown, client: C): C {
  t.teardown(() => { client.close() })
  return client
}

function errorInbox (): { onError: (error: SseClientError) => void, errors: Inbox<SseClientError> } {
  const errors = new Inbox<SseClientError>()
  return { onError: (error) => errors.push(error), errors }
}

t.test('no reconnect storm: retry: 0, Retry-After: 0 and an onUnauthorized that keeps saying yes get at most 20 requests in 3 s', async (t) => {
  const { origin, requests } = await serve(t, (request, response) => {
    // Every path first opens a stream that sets retry: 0 and ends; then it misbehaves its own way.
    if (requests.filter((seen) => seen.url === request.url).length === 1) {
      streamHead(response)
      response.end('retry: 0\ndata: 1\n\n')
      return
    }
    switch (request.url) {
      case '/ends': // retry: 0, then the stream ends at once, every time
        streamHead(response)
        response.end('retry: 0\n\n')
        break
      case '/ends-after-event': // the same, after one event each time
        streamHead(response)
        response.end(`retry: 0\nid: ${Date.now()}\ndata: 1\n\n`)
        break
      case '/503':
        response.writeHead(503, { 'retry-after': '0' }).end()
        break
      case '/429':
        response.writeHead(429, { 'retry-after': '0' }).end()
        break
      default:
        response.writeHead(401).end()
    }
  })
  const paths = ['/ends', '/ends-after-event', '/503', '/429', '/401']
  const started = Date.now()
  for (const path of paths) {
    open(t, createClient(`${origin}${path}`, { transport: 'fetch', onUnauthorized: () => true, onError: () => {} }))
  }
  await sleep(3000)
  const within = requests.filter((request) => request.at - started <= 3000)
  for (const path of paths) {
    const count = within.filter((request) => request.url === path).length
    t.ok(count >= 2 && count <= 20, `${path}: ${count} requests in 3 s (at most 20, and it does reconnect)`)
  }
})

t.test("retry: is the first wait: a server asking for 1500 ms gets each reconnect 1500 to 1875 ms later (jitter on top, at most a quarter)", async (t) => {
  const ended: number[] = []
  const { origin, requests } = await serve(t, (_request, response) => {
    streamHead(response)
    response.end('retry: 1500\ndata: 1\n\n', () => ended.push(Date.now()))
  })
  open(t, createClient(`${origin}/slow`, { transport: 'fetch', onError: () => {} }))
  await waitUntil(() => requests.length >= 4, 15_000, '4 connections', 20)
  const waits = requests.slice(1, 4).map((request, i) => request.at - ended[i])
  // The lower bound is exact (a timer never fires early); the upper one leaves room for a busy machine.
  t.ok(waits.every((wait) => wait >= 1500 - 5), `never before retry: ${waits.join(', ')} ms`)
  t.ok(waits.every((wait) => wait <= 1875 + 1500), `within retry + a quarter (+ slack): ${waits.join(', ')} ms`)
})

t.test('an id outside Latin-1 (€1 🎉) goes back as Last-Event-ID in UTF-8: the server reads the exact id', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, retryMs: 20 }, fastify: { forceCloseConnections: true } })
  const lastEventIds = new Inbox<string | undefined>()
  let connections = 0
  app.get('/uni', (_request, reply) => {
    const stream = reply.sse(feed)
    lastEventIds.push(stream.lastEventId)
    if (++connections === 1) {
      stream.send('tick', { n: 1 }, { id: '€1 🎉' })
      stream.close()
    }
  })
  const origin = await start()
  const { onError, errors } = errorInbox()
  const client = open(t, createClient(`${origin}/uni`, { catalog: feed, transport: 'fetch', onError }))
  const ids = new Inbox<string | undefined>()
  client.on('tick', (_tick, meta) => ids.push(meta.id))
  t.equal(await ids.next(), '€1 🎉', 'the client saw the id')
  t.equal(await lastEventIds.next(), undefined)
  t.equal(await lastEventIds.next(5000), '€1 🎉', 'and the server read it back exactly')
  await t.rejects(errors.next(100), 'no error')
})

t.test('a redirect to another origin never carries the headers or the body', async (t) => {
  const other = await serve(t, (_request, response) => {
    streamHead(response)
    response.write('data: {"n":7}\nevent: tick\n\n')
  })
  const home = await serve(t, (request, response, seen) => {
    const code = Number(request.url?.slice(2))
    if (request.url === '/same') {
      streamHead(response)
      response.write(`event: tick\ndata: {"n":${seen.headers['x-api-key'] === 'k' && seen.body === 'prompt' ? 1 : 0}}\n\n`)
      return
    }
    const target = request.url?.startsWith('/s') === true ? '/same' : `${other.origin}/steal`
    response.writeHead(code, { location: target }).end()
  })
  const options = { catalog: feed, headers: { 'x-api-key': 'k' }, body: 'prompt', method: 'POST' } as const
  for (const code of [301, 302, 307, 308]) {
    const { onError, errors } = errorInbox()
    const client = open(t, createClient(`${home.origin}/r${code}`, { ...options, onError }))
    const error = await errors.next(5000)
    t.equal(error.code, 'TYPED_SSE_CLIENT_REDIRECT', `${code} to another origin: refused with a code`)
    t.equal(client.status, 'closed', `${code}: closed, no reconnect`)
  }
  t.equal(other.requests.length, 0, 'nothing reached the other origin')

  for (const code of [301, 302, 307, 308]) {
    const client = open(t, createClient(`${home.origin}/r${code}`, { ...options, crossOriginRedirect: 'follow', onError: () => {} }))
    const ticks = new Inbox<number>()
    client.on('tick', (tick) => ticks.push(tick.n))
    t.equal(await ticks.next(5000), 7, `${code}, opted in: the other origin's stream is read`)
    client.close()
  }
  t.equal(other.requests.length, 4)
  for (const seen of other.requests) {
    t.same([seen.method, seen.headers['x-api-key'], seen.body], ['GET', undefined, ''], 'followed as a GET without the headers or the body')
  }

  const client = open(t, createClient(`${home.origin}/s307`, { ...options, onError: () => {} }))
  const ticks = new Inbox<number>()
  client.on('tick', (tick) => ticks.push(tick.n))
  t.equal(await ticks.next(5000), 1, 'a same-origin 307 keeps the headers and the body')
})

t.test('a silent connection (one event, then nothing, never closed) is dropped after heartbeatTimeoutMs and resumed with Last-Event-ID', async (t) => {
  const { origin, requests } = await serve(t, (_request, response) => {
    streamHead(response)
    response.write(`id: s${requests.length}\ndata: {"n":${requests.length}}\nevent: tick\n\n`)
  })
  const { onError, errors } = errorInbox()
  const client = open(t, createClient(`${origin}/silent`, { catalog: feed, heartbeatTimeoutMs: 500, onError }))
  const ticks = new Inbox<number>()
  client.on('tick', (tick) => ticks.push(tick.n))
  t.equal(await ticks.next(5000), 1)
  t.equal(await ticks.next(10_000), 2, 'reconnected after the silence')
  t.equal(requests[1].headers['last-event-id'], 's1', 'with the last id')
  t.equal((await errors.next()).code, 'TYPED_SSE_CLIENT_TIMEOUT', 'the silence is reported')
  t.doesNotThrow(() => createClient(`${origin}/silent`, { catalog: feed, heartbeatTimeoutMs: false }).close(), 'false disables it')
})

/** Runs test/helpers/client-child.ts on `url` in `mode` and waits, at most `timeoutMs`, for it to exit by itself. */
async function runClientChild (t: Teardown, url: string, mode: 'close-on-connecting' | 'end', timeoutMs: number): Promise<{ output: string, code: unknown }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../helpers/client-child.ts', import.meta.url)), url, mode], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { if (child.exitCode === null) child.kill() })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const code = await withTimeout(new Promise((resolve) => child.once('exit', resolve)), timeoutMs, 'the child to exit')
  return { output, code }
}

t.test('close() from an onStatus("connecting") listener leaves no reconnect timer: the process exits', async (t) => {
  const { origin } = await serve(t, (_request, response) => {
    streamHead(response)
    response.end('data: 1\n\n')
  })
  const { output, code } = await runClientChild(t, `${origin}/once`, 'close-on-connecting', 20_000)
  t.equal(output, 'closed\n')
  t.equal(code, 0)
})

t.test('a Node process whose stream ended (sse:end) exits at once: no liveness timer nor read left behind', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false }, fastify: { forceCloseConnections: true } })
  app.get('/finite', { sse: feed }, async function * () {
    yield { event: 'tick', data: { n: 1 } }
  })
  const origin = await start()
  // The default heartbeatTimeoutMs is 45 s: a process held by it would still be alive at 30 s.
  const { output, code } = await runClientChild(t, `${origin}/finite`, 'end', 30_000)
  t.equal(output, 'ended\n')
  t.equal(code, 0)
})

t.test('a server that cannot be reached is reported to onError once per outage, and the client keeps trying', async (t) => {
  // A port nothing listens on: taken from the system, then freed.
  const probe = http.createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const port = (probe.address() as { port: number }).port
  await new Promise((resolve) => probe.close(resolve))
  const { onError, errors } = errorInbox()
  open(t, createClient(`http://127.0.0.1:${port}/down`, { transport: 'fetch', onError, reconnectDelayMs: 50, maxReconnectDelayMs: 400 }))
  const error = await errors.next(5000)
  t.equal(error.code, 'TYPED_SSE_CLIENT_NETWORK_ERROR')
  t.match(error.message, `127.0.0.1:${port}`, 'the message names where')
  // Several more attempts fail (at most 400 ms apart): still the one report.
  await sleep(2000)
  t.equal(errors.size, 0, 'one report for the outage, not one per attempt')
  // The server comes up on that port: the client connects; a later outage is reported again.
  const sockets = new Set<import('node:net').Socket>()
  const server = http.createServer((_request, response) => {
    streamHead(response)
    response.write('data: 1\n\n')
    setTimeout(() => { response.destroy() }, 100)
  })
  server.on('connection', (socket) => sockets.add(socket))
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  await sleep(1000)
  server.close()
  for (const socket of sockets) socket.destroy()
  const again = await errors.next(5000)
  t.ok(['TYPED_SSE_CLIENT_NETWORK_ERROR', 'TYPED_SSE_CLIENT_READ_FAILED'].includes(again.code), `the next outage is reported (${again.code})`)
})

t.test('a 200 whose gzip body is garbage is reported to onError, and the client reconnects', async (t) => {
  const { origin, requests } = await serve(t, (_request, response) => {
    streamHead(response, { 'content-encoding': 'gzip' })
    response.end(randomBytes(64))
  })
  const { onError, errors } = errorInbox()
  open(t, createClient(`${origin}/gz`, { transport: 'fetch', onError, reconnectDelayMs: 50 }))
  t.equal((await errors.next(5000)).code, 'TYPED_SSE_CLIENT_READ_FAILED')
  await waitUntil(() => requests.length >= 2, 5000, 'a reconnect')
})

t.test('a flood of tiny events does not hold the event loop: the client yields between batches', async (t) => {
  const COUNT = 100_000
  const { origin } = await serve(t, (_request, response) => {
    streamHead(response)
    response.write('event: tick\ndata: {"n":1}\n\n'.repeat(COUNT))
  })
  // Count event-loop turns with a chain of setImmediate: the events dispatched within one turn ran without a break.
  let turn = 0
  let isFlooding = true
  const spin = (): void => {
    turn++
    if (isFlooding) setImmediate(spin)
  }
  setImmediate(spin)
  const perTurn = new Map<number, number>()
  let received = 0
  const client = open(t, createClient(`${origin}/flood`, { catalog: feed }))
  client.on('tick', () => {
    received++
    perTurn.set(turn, (perTurn.get(turn) ?? 0) + 1)
  })
  await waitUntil(() => received === COUNT, 60_000, `${COUNT} events`, 20)
  isFlooding = false
  const longest = Math.max(...perTurn.values())
  t.ok(longest <= 2000, `at most 2000 events between two turns of the event loop (${longest}, over ${perTurn.size} turns)`)
})

t.test('options: an unknown key is refused with TYPED_SSE_CLIENT_BAD_OPTION, as the plugin refuses its own', async (t) => {
  const misspelt = [{ reconectDelayMs: 5 }, { heartbeatTimeout: 5 }, { Shared: true }, { crossOriginRedirect: 'sometimes' }, { minReconnectDelayMs: -1 }, { minReconnectDelayMs: 500, maxReconnectDelayMs: 100 }, { heartbeatTimeoutMs: 'never' }]
  for (const options of misspelt) {
    t.equal(thrown(() => createClient('http://127.0.0.1:1/x', options as never))?.code, 'TYPED_SSE_CLIENT_BAD_OPTION', JSON.stringify(options))
  }
  t.equal(thrown(() => createClient('http://127.0.0.1:1/x', { transport: 'fetch', minReconnectDelayMs: 10, heartbeatTimeoutMs: false, crossOriginRedirect: 'refuse' }).close()), undefined, 'the known ones pass')
})

t.test('review: sharing never crosses identities carried by a fetch wrapper or a Headers / Map instance', async (t) => {
  const request = { method: 'GET', url: 'http://127.0.0.1:1/inbox', body: undefined, credentials: 'same-origin' as const }
  const asUser = (user: string): FetchFunction => async (url, init) => {
    const headers = new Headers(init.headers)
    headers.set('authorization', user)
    return await fetch(url, { ...init, headers })
  }
  t.equal(thrown(() => sharingKey({ ...request, headers: undefined }, true, asUser('alice')))?.code, 'TYPED_SSE_CLIENT_BAD_OPTION', 'a fetch function without a key is refused')
  t.not(sharingKey({ ...request, headers: undefined }, { key: 'alice' }, asUser('alice')), sharingKey({ ...request, headers: undefined }, { key: 'bob' }, asUser('bob')), 'with a key, the keys tell them apart')
  const refusal = thrown(() => createClient('http://127.0.0.1:1/inbox', { shared: true, fetch: asUser('alice') }))
  t.same([refusal?.code, /a fetch function needs shared: \{ key \}/.test(refusal?.message ?? '')], ['TYPED_SSE_CLIENT_BAD_OPTION', true], 'createClient refuses it, saying why')
  for (const make of [(user: string) => new Headers({ 'x-user': user }), (user: string) => new Map([['x-user', user]])]) {
    const alice = sharingKey({ ...request, headers: make('alice') as never }, true, undefined)
    const bob = sharingKey({ ...request, headers: make('bob') as never }, true, undefined)
    t.not(alice, bob, `${make('a').constructor.name}: alice and bob get different connections`)
    t.equal(alice, sharingKey({ ...request, headers: { 'X-User': 'alice' } }, true, undefined), 'and the same one as the same headers given as an object')
  }
})

t.test('review: reconnect options select the fetch transport, so retry: 0 cannot storm past minReconnectDelayMs with an EventSource around', async (t) => {
  const { origin, requests } = await serve(t, (_request, response) => {
    streamHead(response)
    response.end('retry: 0\ndata: 1\n\n')
  })
  const started = Date.now()
  const client = open(t, createClient(`${origin}/storm`, { EventSource, minReconnectDelayMs: 1000, onError: () => {} }))
  await sleep(3000)
  client.close()
  const count = requests.filter((seen) => seen.at - started <= 3000).length
  t.ok(count >= 2 && count <= 5, `${count} requests in 3 s with a 1000 ms floor`)
  for (const name of ['reconnectDelayMs', 'minReconnectDelayMs', 'maxReconnectDelayMs', 'responseTimeoutMs', 'maxEventBytes']) {
    t.equal(thrown(() => createClient(`${origin}/storm`, { transport: 'eventsource', EventSource, [name]: 5000 }))?.code, 'TYPED_SSE_CLIENT_BAD_OPTION', `${name} with transport: 'eventsource' is refused`)
  }
})

t.test('review: minReconnectDelayMs, responseTimeoutMs and maxEventBytes of 0 are refused', async (t) => {
  for (const options of [{ minReconnectDelayMs: 0 }, { minReconnectDelayMs: 0, maxReconnectDelayMs: 0 }, { responseTimeoutMs: 0 }, { maxEventBytes: 0 }]) {
    t.equal(thrown(() => createClient('http://127.0.0.1:1/x', { transport: 'fetch', ...options }))?.code, 'TYPED_SSE_CLIENT_BAD_OPTION', JSON.stringify(options))
  }
  t.equal(thrown(() => createClient('http://127.0.0.1:1/x', { transport: 'fetch', reconnectDelayMs: 0 }).close()), undefined, 'reconnectDelayMs: 0 is fine: the floor applies')
})

t.test('review: an id that cannot travel as Last-Event-ID exactly (a control character, edge whitespace) closes the client once with TYPED_SSE_CLIENT_UNSENDABLE_ID', async (t) => {
  for (const id of ['order\u00011', ' 42', '42\t', 'a\u007fb']) {
    const { origin, requests } = await serve(t, (_request, response) => {
      streamHead(response)
      response.end(`id: ${id}\nevent: tick\ndata: {"n":1}\n\n`)
    })
    const { onError, errors } = errorInbox()
    const client = open(t, createClient(`${origin}/ids`, { catalog: feed, transport: 'fetch', reconnectDelayMs: 10, onError }))
    const ids = new Inbox<string | undefined>()
    client.on('tick', (_tick, meta) => ids.push(meta.id))
    t.equal(await ids.next(5000), id, `${JSON.stringify(id)} delivered as sent`)
    const error = await errors.next(5000)
    t.equal(error.code, 'TYPED_SSE_CLIENT_UNSENDABLE_ID', `${JSON.stringify(id)}: reported with a code`)
    await waitUntil(() => client.status === 'closed', 5000, 'closed')
    await t.rejects(errors.next(300), 'reported once')
    t.equal(requests.length, 1, 'no reconnect that would resume from the wrong place')
  }
  const { origin } = await serve(t, (_request, response) => {
    streamHead(response)
    response.end('id: caf\u00e9 \u20ac1\ndata: 1\n\n')
  })
  const { onError, errors } = errorInbox()
  const client = open(t, createClient(`${origin}/fine`, { transport: 'fetch', onError }))
  await sleep(1500)
  t.not(client.status, 'closed', 'an id with inner spaces and non-ASCII is sendable')
  await t.rejects(errors.next(10), 'no error')
})

t.test('review: headers that are not valid header values are not reported as "the headers function threw"', async (t) => {
  const { origin, requests } = await serve(t, (_request, response) => {
    streamHead(response)
    response.end('data: 1\n\n')
  })
  for (const headers of [{ 'x-name': 'Zo\u00eb \u20ac' }, () => ({ 'x-name': 'line\nbreak' })]) {
    const { onError, errors } = errorInbox()
    const client = open(t, createClient(`${origin}/h`, { headers, onError }))
    const error = await errors.next(5000)
    t.equal(error.code, 'TYPED_SSE_CLIENT_BAD_OPTION', `${typeof headers}: a bad header value is a bad option`)
    t.notMatch(error.message, /threw/, 'not said to have thrown')
    await waitUntil(() => client.status === 'closed', 5000, 'closed')
  }
  const { onError, errors } = errorInbox()
  open(t, createClient(`${origin}/h`, { headers: () => { throw new Error('token server down') }, reconnectDelayMs: 10, onError }))
  const error = await errors.next(5000)
  t.same([error.code, /headers function threw/.test(error.message)], ['TYPED_SSE_CLIENT_HANDLER_FAILED', true], 'a throwing function is still reported as such')
  t.equal(requests.length, 0)
})

t.test('review: a retry: or Retry-After too large for a double still gives a finite wait, capped at MAX_RECONNECT_DELAY_MS', async (t) => {
  const huge = '9'.repeat(400)
  for (const retryMs of [Number.parseInt(huge, 10), 2 ** 40, MAX_RECONNECT_DELAY_MS]) {
    const delay = backoffDelayMs(3, retryMs, { minMs: 250, maxMs: 30_000 })
    t.ok(Number.isFinite(delay) && delay <= MAX_RECONNECT_DELAY_MS, `retry ${retryMs}: ${delay} ms`)
  }
  t.equal(MAX_RECONNECT_DELAY_MS, 2 ** 31 - 1, 'the timer limit: what one setTimeout can wait')
  const asked = retryAfterMs(huge)
  t.ok(asked !== undefined && Number.isFinite(asked) && asked <= MAX_RECONNECT_DELAY_MS, `Retry-After: 400 digits gives ${String(asked)} ms`)
})

t.test('review: a server alternating 401 and a one-event stream with retry: 0 gets no more than the backoff formula allows', async (t) => {
  let count = 0
  const { origin } = await serve(t, (_request, response) => {
    if (++count % 2 === 0) {
      response.writeHead(401).end()
      return
    }
    streamHead(response)
    response.end('retry: 0\ndata: 1\n\n')
  })
  const attempts: number[] = []
  const client = open(t, createClient(`${origin}/alt`, { transport: 'fetch', onUnauthorized: ({ attempt }) => attempts.push(attempt) > 0, onError: () => {} }))
  await sleep(3000)
  client.close()
  // One wait of 250 to 312 ms (the floor, jitter on top) per request, and one request at once for fresh credentials.
  t.ok(count >= 4 && count <= 14, `${count} requests in 3 s (at most 3000 / 250 + 2)`)
})

t.test("review: crossOriginRedirect: 'follow' never follows a redirect to a data: URL (or any scheme but http and https)", async (t) => {
  const { origin } = await serve(t, (_request, response) => {
    response.writeHead(302, { location: 'data:text/event-stream,event:%20tick%0Adata:%20%7B%22n%22%3A6%7D%0A%0A' }).end()
  })
  const { onError, errors } = errorInbox()
  const client = open(t, createClient(`${origin}/to-data`, { catalog: feed, transport: 'fetch', crossOriginRedirect: 'follow', onError }))
  const ticks = new Inbox<number>()
  client.on('tick', (tick) => ticks.push(tick.n))
  t.equal((await errors.next(5000)).code, 'TYPED_SSE_CLIENT_REDIRECT', 'refused with a code')
  await t.rejects(ticks.next(300), 'nothing read from the data: URL')
})
