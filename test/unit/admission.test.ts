/**
 * Admission and limits, over real sockets: `maxStreams` and `maxStreamsPerKey` refuse
 * with 503 + Retry-After before any stream opens and admit again once streams close;
 * `maxEventBytes` refuses an oversized event with nothing written; an over-long
 * Last-Event-ID is ignored (no replay lookup); Accept negotiation answers 406.
 */
import { EventSource, type ErrorEvent } from 'eventsource'
import { connect } from 'node:net'
import t from 'tap'
import {
  defineEvents, memoryEngine, RESYNC_EVENT, Text, Type,
  type EngineChannel, type SseEngine, type SseStream
} from '../../lib/index.js'
import { buildApp, Inbox, sleep, streamRoute, thrown, waitUntil, withTimeout, type Teardown } from '../helpers/app.js'
import { openStream, rawConnect, splitHead, dechunk, type StreamClient } from '../helpers/client.js'
import { EventStreamParser } from '../helpers/parser.js'

const events = defineEvents({ token: Text(), score: Type.Object({ home: Type.Integer() }) })
type Events = typeof events

/** A plain HTTP request (not an event stream): its status, headers and JSON body. */
async function get (url: string, headers: Record<string, string> = {}): Promise<{ status: number, headers: Headers, body: any }> {
  const response = await withTimeout(fetch(url, { headers }), 3000, `GET ${url}`)
  const text = await withTimeout(response.text(), 3000, 'body')
  let body: unknown = text
  try {
    body = JSON.parse(text)
  } catch {}
  return { status: response.status, headers: response.headers, body }
}

/**
 * Writes a GET with exactly the given header lines on a bare socket (no Accept unless
 * given) and resolves to the status code and lower-cased headers.
 */
function rawHead (t: Teardown, port: number, path: string, headerLines: string[]): Promise<{ status: number, headers: Record<string, string> }> {
  return withTimeout(new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' })
    t.teardown(() => { socket.destroy() })
    let bytes = Buffer.alloc(0)
    socket.once('error', reject)
    socket.on('data', (chunk: Buffer) => {
      bytes = Buffer.concat([bytes, chunk])
      const split = splitHead(bytes)
      if (split === undefined) return
      const [statusLine, ...lines] = split.head.split('\r\n')
      const headers: Record<string, string> = {}
      for (const line of lines) {
        const colon = line.indexOf(':')
        headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
      }
      socket.destroy()
      resolve({ status: Number(statusLine.split(' ')[1]), headers })
    })
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${headerLines.map((line) => line + '\r\n').join('')}\r\n`)
  }), 3000, `raw GET ${path}`)
}

function portOf (origin: string): number {
  return Number(new URL(origin).port)
}

t.test('maxStreams: the stream over the limit gets 503 with Retry-After before it opens; a close admits the next', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, maxStreams: 2, retryAfterMs: 2500 } })
  let handlerRuns = 0
  const streams = new Inbox<SseStream<Events>>()
  app.get('/s', (_request, reply) => {
    handlerRuns++
    const stream = reply.sse(events)
    stream.send('token', 'hello')
    streams.push(stream)
  })
  const origin = await start()
  const first = await openStream(t, `${origin}/s`)
  await openStream(t, `${origin}/s`)
  const [a] = [await streams.next(), await streams.next()]
  t.equal(app.sse.stats().openStreams, 2)

  const refused = await get(`${origin}/s`, { accept: 'text/event-stream' })
  t.equal(refused.status, 503)
  t.equal(refused.headers.get('retry-after'), '3', 'Retry-After is retryAfterMs rounded up to seconds')
  t.match(refused.headers.get('content-type'), /^application\/json/, 'an ordinary error reply, not a stream')
  t.equal(refused.body.code, 'TYPED_SSE_TOO_MANY_STREAMS')
  t.equal(handlerRuns, 3, 'the handler ran, and reply.sse() threw before opening')
  t.equal(app.sse.stats().opened, 2, 'no stream was opened for the refused request')
  t.equal(app.sse.stats().openStreams, 2)

  // A stream closed by the server, then one whose client leaves: each frees a slot.
  a.close()
  await withTimeout(first.ended, 2000, 'first stream ended')
  await waitUntil(() => app.sse.stats().openStreams === 1, 2000, 'slot released after close()')
  const third = await openStream(t, `${origin}/s`)
  t.equal(third.statusCode, 200, 'admitted once a stream closed')
  t.same((await third.events(1)).map((event) => event.data), ['hello'])
  t.equal((await get(`${origin}/s`)).status, 503, 'full again')

  third.destroy()
  await waitUntil(() => app.sse.stats().openStreams === 1, 2000, 'slot released when the client left')
  const fourth = await openStream(t, `${origin}/s`)
  t.equal(fourth.statusCode, 200, 'admitted once a client left')
})

t.test('maxStreamsPerKey: one key over its limit gets 503, other keys are admitted, and the count is released on close', async (t) => {
  const { app, start } = await buildApp(t, {
    sse: { heartbeatMs: false, maxStreamsPerKey: 2, streamKey: (request) => String(request.headers['x-user']) }
  })
  streamRoute(app, '/s', events)
  const origin = await start()
  const alice: StreamClient[] = []
  for (let i = 0; i < 2; i++) alice.push(await openStream(t, `${origin}/s`, { 'x-user': 'alice' }))

  const refused = await get(`${origin}/s`, { accept: 'text/event-stream', 'x-user': 'alice' })
  t.equal(refused.status, 503)
  t.equal(refused.headers.get('retry-after'), '5', 'the default retryAfterMs is 5000')
  t.equal(refused.body.code, 'TYPED_SSE_TOO_MANY_STREAMS')

  const bob = await openStream(t, `${origin}/s`, { 'x-user': 'bob' })
  t.equal(bob.statusCode, 200, 'another key is not affected')

  // Refusals must not be counted: after many of them, one close admits exactly one more.
  for (let i = 0; i < 5; i++) t.equal((await get(`${origin}/s`, { 'x-user': 'alice' })).status, 503)
  alice[0].destroy()
  await waitUntil(() => app.sse.stats().openStreams === 2, 2000, 'alice released one slot')
  const again = await openStream(t, `${origin}/s`, { 'x-user': 'alice' })
  t.equal(again.statusCode, 200, 'alice admitted again after a close')
  t.equal((await get(`${origin}/s`, { 'x-user': 'alice' })).status, 503, 'and only one more')
})

t.test('a client that leaves while an async preHandler runs does not keep its per-key slot', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, maxStreamsPerKey: 1 } })
  const closes = new Inbox<string>()
  app.get('/s', { preHandler: async () => { await sleep(150) } }, (_request, reply) => {
    reply.sse(events).onClose((reason) => closes.push(reason))
  })
  const origin = await start()
  const early = await rawConnect(t, portOf(origin), '/s')
  await sleep(30)
  early.socket.destroy()
  t.equal(await closes.next(), 'client', 'the stream opened after the client left is closed at once')
  t.equal(app.sse.stats().openStreams, 0)
  const next = await openStream(t, `${origin}/s`)
  t.equal(next.statusCode, 200, 'the slot was released')
})

t.test('EventSource refused with 503 stops: it does not read Retry-After, so the application decides when to retry', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, maxStreams: 1 } })
  let requests = 0
  app.addHook('onRequest', async () => { requests++ })
  streamRoute(app, '/s', events)
  const origin = await start()
  await openStream(t, `${origin}/s`)
  const source = new EventSource(`${origin}/s`)
  t.teardown(() => { source.close() })
  const error = await withTimeout(new Promise<ErrorEvent>((resolve) => source.addEventListener('error', resolve, { once: true })), 3000, 'error')
  t.equal(error.code, 503)
  t.equal(source.readyState, source.CLOSED, 'CLOSED: no reconnect of its own')
  await sleep(300)
  t.equal(requests, 2, 'no further request')
})

t.test('a 406 (refused Accept) is not counted against maxStreamsPerKey', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, maxStreamsPerKey: 1 } })
  streamRoute(app, '/s', events)
  const origin = await start()
  for (let i = 0; i < 3; i++) t.equal((await get(`${origin}/s`, { accept: 'application/json' })).status, 406)
  const client = await openStream(t, `${origin}/s`)
  t.equal(client.statusCode, 200)
})

t.test('maxEventBytes: an event that encodes larger throws TYPED_SSE_EVENT_TOO_LARGE, writes nothing, and the stream stays usable', async (t) => {
  // 'event: token\n' (13) + 'data: ' (6) + text + '\n\n' (2): 21 bytes of framing.
  const limit = 100
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, maxEventBytes: limit } })
  const streams = streamRoute(app, '/s', events)
  const origin = await start()
  const raw = await rawConnect(t, portOf(origin), '/s')
  const stream = await streams.next()
  await raw.until((bytes) => splitHead(bytes) !== undefined)
  const before = { received: raw.received().length, stats: app.sse.stats() }

  const err = thrown(() => stream.send('token', 'x'.repeat(limit - 21 + 1)))
  t.equal(err?.code, 'TYPED_SSE_EVENT_TOO_LARGE')
  const multiLine = thrown(() => stream.send('token', 'a\n'.repeat(30)))
  t.equal(multiLine?.code, 'TYPED_SSE_EVENT_TOO_LARGE', 'counted as encoded: each line gets its own data: prefix')
  t.equal(app.sse.stats().bytesWritten, before.stats.bytesWritten, 'nothing written')
  t.equal(app.sse.stats().eventsSent, before.stats.eventsSent, 'nothing counted as sent')
  t.ok(stream.isOpen, 'the stream is still open')

  t.equal(stream.send('token', 'x'.repeat(limit - 21)), true, 'an event of exactly maxEventBytes is sent')
  t.equal(stream.send('token', 'small'), true)
  const bytes = await raw.until((all) => {
    const parser = new EventStreamParser()
    parser.push(dechunk(splitHead(all)?.body ?? Buffer.alloc(0)).payload)
    return parser.events.length >= 2
  })
  const parser = new EventStreamParser()
  const { payload } = dechunk((splitHead(bytes) as { body: Buffer }).body)
  parser.push(payload)
  t.same(parser.events.map((event) => event.data), ['x'.repeat(limit - 21), 'small'], 'only the events within the limit reached the wire')
  t.equal(payload.length, limit + 'event: token\ndata: small\n\n'.length, 'not one byte of the refused events')
  t.ok(raw.received().length > before.received)
})

t.test('maxEventBytes applies to channel publishes too, synchronously, and nothing is delivered', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, maxEventBytes: 64 } })
  const channel = app.sse.channel('big', events)
  app.get('/s', (_request, reply) => { void channel.subscribe(reply.sse(events)) })
  const origin = await start()
  const client = await openStream(t, `${origin}/s`)
  await waitUntil(() => channel.size === 1, 2000, 'subscribed')
  const err = thrown(() => { void channel.publish('token', 'y'.repeat(200)) })
  t.equal(err?.code, 'TYPED_SSE_EVENT_TOO_LARGE')
  t.equal(app.sse.stats().eventsPublished, 0, 'not counted as published')
  await channel.publish('token', 'fits')
  t.same((await client.events(1)).map((event) => event.data), ['fits'])
  t.equal(client.parser.events.length, 1, 'the refused event never arrived')
})

/** Wraps the memory engine to count replay lookups. */
function countingEngine (): { engine: SseEngine, lookups: Array<string | undefined> } {
  const inner = memoryEngine()
  const lookups: Array<string | undefined> = []
  const engine: SseEngine = {
    channel (name, history, deliver): EngineChannel {
      const channel = inner.channel(name, history, deliver)
      return {
        publish: (message) => channel.publish(message),
        readPage: (lastEventId, limit) => {
          lookups.push(lastEventId)
          return channel.readPage(lastEventId, limit)
        },
        close: () => channel.close()
      }
    },
    compareIds: (a, b) => inner.compareIds(a, b),
    close: () => inner.close()
  }
  return { engine, lookups }
}

t.test('a Last-Event-ID longer than maxLastEventIdBytes is ignored: lastEventId undefined, no replay lookup, no sse:resync', async (t) => {
  const { engine, lookups } = countingEngine()
  const maxLastEventIdBytes = 64
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, engine, maxLastEventIdBytes } })
  const channel = app.sse.channel('scores', events, { history: true })
  const seen = new Inbox<string | undefined>()
  app.get('/s', async (_request, reply) => {
    const stream = reply.sse(events)
    seen.push(stream.lastEventId === undefined ? 'undefined' : stream.lastEventId)
    await channel.subscribe(stream)
    stream.send('token', 'live')
  })
  const origin = await start()
  const port = portOf(origin)
  await channel.publish('score', { home: 1 })

  async function connectWith (lastEventId: string): Promise<{ lastEventId: string | undefined, events: Array<{ type: string, data: string }> }> {
    const raw = await rawConnect(t, port, '/s', { headers: `Last-Event-ID: ${lastEventId}\r\n` })
    const lastSeen = await seen.next()
    const bytes = await raw.until((all) => dechunk(splitHead(all)?.body ?? Buffer.alloc(0)).payload.includes('data: live\n\n'))
    const parser = new EventStreamParser()
    parser.push(dechunk((splitHead(bytes) as { body: Buffer }).body).payload)
    raw.socket.destroy()
    return { lastEventId: lastSeen, events: parser.events.map(({ type, data }) => ({ type, data })) }
  }

  // Control: an unknown id within the bound is looked up, and answered with sse:resync.
  const within = 'u'.repeat(maxLastEventIdBytes)
  const control = await connectWith(within)
  t.equal(control.lastEventId, within)
  t.same(lookups, [within], 'an id within the bound is looked up')
  t.same(control.events.map((event) => event.type), [RESYNC_EVENT, 'token'])

  const tooLong = 'u'.repeat(maxLastEventIdBytes + 1)
  const ignored = await connectWith(tooLong)
  t.equal(ignored.lastEventId, 'undefined', 'stream.lastEventId is undefined')
  t.same(lookups, [within], 'no replay lookup for the over-long id')
  t.same(ignored.events.map((event) => event.type), ['token'], 'no sse:resync, only live events')

  // The bound is in bytes: 33 two-byte characters (66 bytes) pass 64 though they are 33 characters.
  const wide = await connectWith('é'.repeat(33))
  t.equal(wide.lastEventId, 'undefined', 'UTF-8 bytes are counted, not characters')
  const narrowWide = await connectWith('é'.repeat(32))
  t.equal(narrowWide.lastEventId, 'é'.repeat(32), 'a 64-byte UTF-8 id is kept, decoded as UTF-8')
  t.same(lookups, [within, 'é'.repeat(32)])
  t.equal(app.sse.stats().replayMisses, 2)
})

t.test('the default maxLastEventIdBytes is 256', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  const seen = new Inbox<string>()
  app.get('/s', (_request, reply) => {
    seen.push(String(reply.sse(events).lastEventId))
  })
  const origin = await start()
  await openStream(t, `${origin}/s`, { 'last-event-id': 'i'.repeat(256) })
  t.equal(await seen.next(), 'i'.repeat(256))
  await openStream(t, `${origin}/s`, { 'last-event-id': 'i'.repeat(257) })
  t.equal(await seen.next(), 'undefined')
})

t.test('Accept negotiation: a request refusing text/event-stream gets 406; event-stream, wildcards and no Accept get 200', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  let opened = 0
  app.get('/s', (_request, reply) => {
    reply.sse(events)
    opened++
  })
  const origin = await start()
  const port = portOf(origin)

  for (const accept of ['application/json', 'text/html', 'text/event-stream;q=0', 'application/json, text/*;q=0']) {
    const refused = await get(`${origin}/s`, { accept })
    t.equal(refused.status, 406, `Accept: ${accept}`)
    t.equal(refused.body.code, 'TYPED_SSE_NOT_ACCEPTABLE', `Accept: ${accept}`)
  }
  t.equal(opened, 0, 'no stream opened for a refused Accept')
  t.equal(app.sse.stats().opened, 0)

  for (const accept of ['text/event-stream', '*/*', 'text/*', 'application/json, text/event-stream;q=0.5', 'TEXT/EVENT-STREAM']) {
    const admitted = await rawHead(t, port, '/s', [`Accept: ${accept}`])
    t.equal(admitted.status, 200, `Accept: ${accept}`)
    t.match(admitted.headers['content-type'], /^text\/event-stream/, `Accept: ${accept}`)
  }
  const missing = await rawHead(t, port, '/s', [])
  t.equal(missing.status, 200, 'no Accept header at all')
  t.match(missing.headers['content-type'], /^text\/event-stream/)
})

t.test('negotiate: false opens a stream whatever the Accept header says', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, negotiate: false } })
  streamRoute(app, '/s', events)
  const origin = await start()
  const admitted = await rawHead(t, portOf(origin), '/s', ['Accept: application/json'])
  t.equal(admitted.status, 200)
  t.match(admitted.headers['content-type'], /^text\/event-stream/)
})
