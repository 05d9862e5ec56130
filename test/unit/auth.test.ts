/**
 * The authentication and authorization recipes of the README, proven with real
 * clients: a failing `preHandler` (cookie session or `?token=`) answers 401 before
 * any stream opens and the `eventsource` client then stops for good; a user cannot
 * subscribe to another user's channel (403); a stream given `endsAt` (the token's
 * expiry) closes then with a `retry:` hint; CORS with credentials reaches the stream.
 */
import cors from '@fastify/cors'
import { EventSource, type ErrorEvent } from 'eventsource'
import type { FastifyReply, FastifyRequest } from 'fastify'
import t from 'tap'
import { defineEvents, Type, type CloseReason, type SseStream } from '../../lib/index.js'
import { buildApp, Inbox, sleep, waitUntil, withTimeout, type Teardown } from '../helpers/app.js'
import { dechunk, openStream, rawConnect, splitHead } from '../helpers/client.js'
import { EventStreamParser } from '../helpers/parser.js'

const notes = defineEvents({ note: Type.Object({ user: Type.String(), text: Type.String() }) })
type Notes = typeof notes

/** `EventSource.CLOSED`: the source gave up and will not reconnect. */
const CLOSED = 2

/** Reads one cookie from the request (the recipe uses @fastify/cookie; this keeps the test dependency-free). */
function cookie (request: FastifyRequest, name: string): string | undefined {
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=')
    if (key === name) return value.join('=')
  }
  return undefined
}

/** An EventSource whose requests carry `cookieHeader` (what a browser does with `withCredentials`). */
function eventSource (t: Teardown, url: string, cookieHeader?: string): EventSource {
  const source = new EventSource(url, {
    fetch: (input, init) => fetch(input, {
      ...init,
      headers: cookieHeader === undefined ? init.headers : { ...init.headers, cookie: cookieHeader }
    })
  })
  t.teardown(() => { source.close() })
  return source
}

function nextError (source: EventSource, timeoutMs = 3000): Promise<ErrorEvent> {
  return withTimeout(new Promise<ErrorEvent>((resolve) => source.addEventListener('error', resolve, { once: true })), timeoutMs, 'EventSource error')
}

function nextOpen (source: EventSource, timeoutMs = 3000): Promise<void> {
  return withTimeout(new Promise<void>((resolve) => source.addEventListener('open', () => resolve(), { once: true })), timeoutMs, 'EventSource open')
}

t.test('cookie session: a preHandler that fails answers 401 before the stream opens, and EventSource stops reconnecting', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, retryMs: 50 } })
  const sessions = new Map([['s-alice', 'alice']])
  let requests = 0
  const streams = new Inbox<SseStream<Notes>>()
  app.get('/events', {
    preHandler: async (request: FastifyRequest, reply: FastifyReply) => {
      requests++
      const user = sessions.get(cookie(request, 'sid') ?? '')
      if (user === undefined) return reply.code(401).send({ code: 'UNAUTHORIZED' })
    }
  }, (_request, reply) => {
    streams.push(reply.sse(notes))
  })
  const origin = await start()

  await t.test('no session: 401, an ordinary JSON reply, no stream', async (t) => {
    const response = await fetch(`${origin}/events`, { headers: { accept: 'text/event-stream' } })
    t.equal(response.status, 401)
    t.match(response.headers.get('content-type'), /^application\/json/)
    t.equal((await response.json()).code, 'UNAUTHORIZED')
    t.equal(app.sse.stats().opened, 0)
  })

  await t.test('EventSource with a valid session reconnects after a close; once the session is revoked it gets 401 and stops', async (t) => {
    requests = 0
    const source = eventSource(t, `${origin}/events`, 'sid=s-alice')
    await nextOpen(source)
    const first = await streams.next()
    t.equal(requests, 1)

    // Control: an ended stream is reconnected after the retry: 50 the server sent.
    first.close()
    await nextOpen(source)
    const second = await streams.next()
    t.equal(requests, 2, 'reconnected once while the session was valid')

    sessions.delete('s-alice')
    const failed = nextError(source)
    second.close()
    // The first error is the stream ending (readyState CONNECTING), the second the 401.
    await failed
    const refused = await nextError(source)
    t.equal(refused.code, 401, 'the reconnect was refused with 401')
    t.equal(source.readyState, CLOSED, 'readyState is CLOSED: the client gave up')
    // 20 retry periods: a client that kept reconnecting would have asked many times.
    await sleep(1000)
    t.equal(requests, 3, 'no request after the 401')
    t.equal(source.readyState, CLOSED)
    t.equal(app.sse.stats().openStreams, 0)
  })
})

t.test('token in the query: 401 when invalid; endsAt (the token expiry) closes the stream with a retry: hint, and the reconnect with the expired token stops', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  const tokens = new Map<string, { user: string, expiresAt: number }>()
  let requests = 0
  const closed = new Inbox<{ reason: CloseReason, afterMs: number }>()
  app.get('/feed', {
    preHandler: async (request: FastifyRequest<{ Querystring: { token?: string } }>, reply: FastifyReply) => {
      requests++
      const token = tokens.get(request.query.token ?? '')
      if (token === undefined || token.expiresAt <= Date.now()) return reply.code(401).send({ code: 'UNAUTHORIZED' })
    }
  }, (request: FastifyRequest<{ Querystring: { token?: string } }>, reply) => {
    const token = tokens.get(request.query.token as string) as { expiresAt: number }
    const openedAt = Date.now()
    const stream = reply.sse(notes, { endsAt: token.expiresAt, retryMs: 50 })
    stream.onClose((reason) => closed.push({ reason, afterMs: Date.now() - openedAt }))
    stream.send('note', { user: 'alice', text: 'hi' })
  })
  const origin = await start()
  const port = Number(new URL(origin).port)

  await t.test('an unknown token gets 401; EventSource stops at once', async (t) => {
    requests = 0
    const source = eventSource(t, `${origin}/feed?token=forged`)
    const error = await nextError(source)
    t.equal(error.code, 401)
    t.equal(source.readyState, CLOSED)
    t.equal(requests, 1)
    t.equal(app.sse.stats().opened, 0, 'no stream opened')
  })

  await t.test('on the wire: the stream ends at endsAt, with a retry: field before the end', async (t) => {
    tokens.set('t-wire', { user: 'alice', expiresAt: Date.now() + 300 })
    const raw = await rawConnect(t, port, '/feed?token=t-wire')
    const bytes = await raw.until((all) => dechunk(splitHead(all)?.body ?? Buffer.alloc(0)).isComplete, 3000)
    const { reason, afterMs } = await closed.next()
    t.equal(reason, 'duration')
    t.ok(afterMs >= 250 && afterMs < 1000, `closed ${afterMs} ms after opening, at the token's expiry (300 ms)`)
    const parser = new EventStreamParser()
    const { payload, isComplete } = dechunk((splitHead(bytes) as { body: Buffer }).body)
    parser.push(payload)
    parser.end()
    t.ok(isComplete, 'ended cleanly (last chunk), not reset')
    t.same(parser.events.map((event) => event.type), ['note'])
    t.same(parser.retries, [50, 50], 'retry: at open, and again just before the end')
    t.match(payload.toString('utf8'), /retry: 50\n\n?$/, 'the retry field is the last thing written')
  })

  await t.test('EventSource: the stream ends at expiry, the reconnect with the expired token is refused with 401 and the client stops', async (t) => {
    requests = 0
    tokens.set('t-es', { user: 'alice', expiresAt: Date.now() + 300 })
    const source = eventSource(t, `${origin}/feed?token=t-es`)
    const received = new Inbox<string>()
    source.addEventListener('note', (event) => { received.push(event.data) })
    t.equal(JSON.parse(await received.next()).text, 'hi')
    t.equal((await closed.next()).reason, 'duration')
    const refused = await withTimeout((async () => {
      for (;;) {
        const error = await nextError(source)
        if (error.code !== undefined) return error
      }
    })(), 3000, '401 after expiry')
    t.equal(refused.code, 401)
    t.equal(source.readyState, CLOSED)
    await sleep(1000)
    t.equal(requests, 2, 'one reconnect (refused), then none: the app must get a new token and open a new EventSource')
  })
})

t.test('channel guard: a user can subscribe to their own channel only (403 otherwise), and receives only its events', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  const sessions = new Map([['s-alice', 'alice'], ['s-bob', 'bob']])
  const userOf = new WeakMap<FastifyRequest, string>()
  let handlerRuns = 0
  app.get('/users/:user/events', {
    preHandler: async (request: FastifyRequest<{ Params: { user: string } }>, reply: FastifyReply) => {
      const user = sessions.get(cookie(request, 'sid') ?? '')
      if (user === undefined) return reply.code(401).send({ code: 'UNAUTHORIZED' })
      if (user !== request.params.user) return reply.code(403).send({ code: 'FORBIDDEN' })
      userOf.set(request, user)
    }
  }, async (request: FastifyRequest<{ Params: { user: string } }>, reply) => {
    handlerRuns++
    await app.sse.channel(`user:${userOf.get(request) as string}`, notes).subscribe(reply.sse(notes))
  })
  const origin = await start()
  const aliceChannel = app.sse.channel('user:alice', notes)
  const bobChannel = app.sse.channel('user:bob', notes)

  const intrusion = await fetch(`${origin}/users/bob/events`, { headers: { accept: 'text/event-stream', cookie: 'sid=s-alice' } })
  t.equal(intrusion.status, 403)
  t.equal((await intrusion.json()).code, 'FORBIDDEN')
  const anonymous = await fetch(`${origin}/users/bob/events`, { headers: { accept: 'text/event-stream' } })
  t.equal(anonymous.status, 401)
  await anonymous.body?.cancel()
  t.equal(handlerRuns, 0, 'the handler never ran')
  t.equal(bobChannel.size, 0, "nobody joined bob's channel")
  t.equal(app.sse.stats().opened, 0)

  const alice = await openStream(t, `${origin}/users/alice/events`, { cookie: 'sid=s-alice' })
  t.equal(alice.statusCode, 200)
  await waitUntil(() => aliceChannel.size === 1, 2000, 'alice subscribed')
  await bobChannel.publish('note', { user: 'bob', text: 'for bob' })
  await aliceChannel.publish('note', { user: 'alice', text: 'for alice' })
  const [event] = await alice.events(1)
  t.same(JSON.parse(event.data), { user: 'alice', text: 'for alice' })
  t.equal(alice.parser.events.length, 1, "bob's event did not reach alice")
})

t.test('CORS with credentials (@fastify/cors): the reflected origin and Allow-Credentials reach the event stream', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  await app.register(cors, { origin: ['https://app.example'], credentials: true })
  app.get('/events', (request, reply) => {
    if (cookie(request, 'sid') !== 's-alice') return reply.code(401).send({ code: 'UNAUTHORIZED' })
    reply.sse(notes).send('note', { user: 'alice', text: 'hi' })
  })
  const origin = await start()

  const allowed = await openStream(t, `${origin}/events`, { origin: 'https://app.example', cookie: 'sid=s-alice' })
  t.equal(allowed.statusCode, 200)
  t.match(allowed.headers['content-type'], /^text\/event-stream/)
  t.equal(allowed.headers['access-control-allow-origin'], 'https://app.example', 'the origin is reflected, never * with credentials')
  t.equal(allowed.headers['access-control-allow-credentials'], 'true')
  t.match(allowed.headers.vary, /origin/i, 'Vary: Origin, so caches do not mix origins')
  t.equal(JSON.parse((await allowed.events(1))[0].data).text, 'hi')

  const foreign = await openStream(t, `${origin}/events`, { origin: 'https://evil.example', cookie: 'sid=s-alice' })
  t.equal(foreign.headers['access-control-allow-origin'], undefined, 'another origin gets no CORS header: its page cannot read the stream')
  t.equal(foreign.headers['access-control-allow-credentials'], 'true')

  // A reconnect with Last-Event-ID may be preflighted by a browser: the preflight allows it with credentials.
  const preflight = await fetch(`${origin}/events`, {
    method: 'OPTIONS',
    headers: { origin: 'https://app.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'last-event-id' }
  })
  t.equal(preflight.status, 204)
  t.equal(preflight.headers.get('access-control-allow-origin'), 'https://app.example')
  t.equal(preflight.headers.get('access-control-allow-credentials'), 'true')
  t.match(preflight.headers.get('access-control-allow-headers'), /last-event-id/i)
})
