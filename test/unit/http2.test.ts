/**
 * HTTP/2 (cleartext, `fastify({ http2: true })`) with a node:http2 client: events
 * arrive, no connection-specific header, both sides can close, and fastify.close()
 * does not wait on open streams.
 */
import Fastify from 'fastify'
import http2 from 'node:http2'
import net from 'node:net'
import t from 'tap'
import sse, { defineEvents, Type, type CloseReason, type SseStream } from '../../lib/index.js'
import { Inbox, withTimeout, type Teardown } from '../helpers/app.js'
import { EventStreamParser } from '../helpers/parser.js'

const events = defineEvents({ n: Type.Integer() })
type Events = typeof events

async function h2App (t: Teardown): Promise<{ app: { close (): Promise<unknown> }, origin: string, streams: Inbox<SseStream<Events>> }> {
  const app = Fastify({ http2: true })
  t.teardown(() => app.close())
  await app.register(sse, { heartbeatMs: false })
  const streams = new Inbox<SseStream<Events>>()
  app.get('/s', (_request, reply) => { streams.push(reply.sse(events)) })
  const origin = await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, origin, streams }
}

/** Opens `/s` on an HTTP/2 session; the session is closed in teardown. */
function h2Get (t: Teardown, origin: string): Promise<{
  headers: http2.IncomingHttpHeaders, parser: EventStreamParser, request: http2.ClientHttp2Stream, ended: Promise<void>, session: http2.ClientHttp2Session
}> {
  const session = http2.connect(origin)
  session.on('error', () => {})
  t.teardown(() => { session.destroy() })
  const request = session.request({ ':path': '/s', accept: 'text/event-stream' })
  request.on('error', () => {})
  const parser = new EventStreamParser()
  request.on('data', (chunk: Buffer) => parser.push(chunk))
  const ended = new Promise<void>((resolve) => request.once('end', resolve))
  return withTimeout(new Promise((resolve) => {
    request.once('response', (headers) => resolve({ headers, parser, request, ended, session }))
  }), 2000, 'HTTP/2 response')
}

function nextEvents (parser: EventStreamParser, count: number): Promise<void> {
  return withTimeout(new Promise<void>((resolve) => {
    if (parser.events.length >= count) return resolve()
    parser.onEvent = () => { if (parser.events.length >= count) resolve() }
  }), 2000, `${count} events`)
}

t.test('events arrive over HTTP/2, with the SSE headers and no connection header', async (t) => {
  const { origin, streams } = await h2App(t)
  const client = await h2Get(t, origin)
  t.equal(client.headers[':status'], 200)
  t.equal(client.headers['content-type'], 'text/event-stream; charset=utf-8')
  t.equal(client.headers['cache-control'], 'no-cache')
  t.equal(client.headers['x-accel-buffering'], 'no')
  t.equal(client.headers.connection, undefined, 'no connection header (RFC 9113 §8.2.2)')
  t.equal(client.headers['keep-alive'], undefined)
  const stream = await streams.next()
  stream.send('n', 1, { id: 0 })
  stream.send('n', 2)
  await nextEvents(client.parser, 2)
  t.same(client.parser.events, [{ type: 'n', data: '1', lastEventId: '0' }, { type: 'n', data: '2', lastEventId: '0' }])
})

t.test('server close() ends the HTTP/2 stream', async (t) => {
  const { origin, streams } = await h2App(t)
  const client = await h2Get(t, origin)
  const stream = await streams.next()
  stream.send('n', 1)
  stream.close()
  await withTimeout(client.ended, 2000, 'end')
  t.same(client.parser.events.map((event) => event.data), ['1'])
  t.equal(stream.closeReason, 'server')
})

t.test('a client closing its HTTP/2 stream is seen at once, and the session lives on', async (t) => {
  const { origin, streams } = await h2App(t)
  const first = await h2Get(t, origin)
  const stream = await streams.next()
  const reason = new Promise<CloseReason>((resolve) => stream.onClose(resolve))
  first.request.close(http2.constants.NGHTTP2_CANCEL)
  t.equal(await withTimeout(reason, 1000, 'onClose'), 'client')
  t.equal(stream.signal.aborted, true)
  const second = first.session.request({ ':path': '/s', accept: 'text/event-stream' })
  const parser = new EventStreamParser()
  second.on('data', (chunk: Buffer) => parser.push(chunk))
  const next = await streams.next()
  next.send('n', 9)
  await nextEvents(parser, 1)
  t.same(parser.events.map((event) => event.data), ['9'], 'a new stream on the same session works')
})

t.test('fastify.close() with an open HTTP/2 stream resolves promptly (the idle session no longer holds it)', async (t) => {
  const { app, origin, streams } = await h2App(t)
  const client = await h2Get(t, origin)
  const stream = await streams.next()
  const begin = Date.now()
  await withTimeout(app.close(), 2000, 'close')
  const elapsed = Date.now() - begin
  t.ok(elapsed < 1000, `closed in ${elapsed} ms`)
  t.equal(stream.closeReason, 'shutdown')
  await withTimeout(client.ended, 1000, 'the client sees the end')
  t.pass('the client saw its stream end')
})

t.test('a connection header set by a hook is left out on HTTP/2 instead of breaking the stream', async (t) => {
  const app = Fastify({ http2: true })
  t.teardown(() => app.close())
  await app.register(sse, { heartbeatMs: false })
  app.addHook('onRequest', async (_request, reply) => { reply.header('connection', 'keep-alive').header('x-trace', 'abc') })
  app.get('/s', (_request, reply) => { reply.sse(events).send('n', 7) })
  const origin = await app.listen({ port: 0, host: '127.0.0.1' })
  const client = await h2Get(t, origin)
  t.equal(client.headers[':status'], 200)
  t.equal(client.headers.connection, undefined)
  t.equal(client.headers['x-trace'], 'abc', 'other hook headers still arrive')
  await nextEvents(client.parser, 1)
  t.same(client.parser.events, [{ type: 'n', data: '7', lastEventId: '' }])
})

t.test('fastify.close() does not wait for an HTTP/2 client that stopped reading its connection', async (t) => {
  const app = Fastify({ http2: true })
  t.teardown(() => app.close())
  const closeGraceMs = 300
  await app.register(sse, { heartbeatMs: false, closeGraceMs, maxQueueBytes: 64 * 1024 * 1024 })
  const streams = new Inbox<SseStream<typeof big>>()
  const big = defineEvents({ blob: Type.String() })
  app.get('/s', (_request, reply) => { streams.push(reply.sse(big)) })
  const origin = await app.listen({ port: 0, host: '127.0.0.1' })
  // Wide flow-control windows, so the server may send far more than the socket takes.
  let socket: net.Socket | undefined
  const session = http2.connect(origin, {
    settings: { initialWindowSize: 2 ** 31 - 1 },
    createConnection: (url) => (socket = net.connect(Number(url.port), url.hostname))
  })
  session.on('error', () => {})
  t.teardown(() => { session.destroy() })
  await new Promise<void>((resolve) => session.once('connect', () => resolve()))
  session.setLocalWindowSize(2 ** 31 - 1)
  const request = session.request({ ':path': '/s', accept: 'text/event-stream' })
  request.on('error', () => {})
  await withTimeout(new Promise((resolve) => request.once('response', resolve)), 2000, 'HTTP/2 response')
  const stream = await streams.next()
  // The client stops reading its socket: what the server writes piles up in it.
  socket?.pause()
  const blob = 'x'.repeat(64 * 1024)
  for (let i = 0; i < 400; i++) stream.send('blob', blob)
  await new Promise((resolve) => setTimeout(resolve, 300))
  const begin = Date.now()
  await withTimeout(app.close(), closeGraceMs * 10 + 3000, 'close with a client that does not read')
  t.ok(stream.closeReason === 'shutdown', 'the stream closed for the shutdown')
  t.comment(`closed in ${Date.now() - begin} ms`)
})
