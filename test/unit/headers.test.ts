/**
 * Response headers of a stream: the SSE headers, headers set before opening (hooks,
 * reply.header(), @fastify/cors) reaching the client, and the head flushed at open,
 * before any event.
 */
import compress from '@fastify/compress'
import cors from '@fastify/cors'
import t from 'tap'
import { defineEvents, Type } from '../../lib/index.js'
import { buildApp, streamRoute } from '../helpers/app.js'
import { openStream, rawConnect, splitHead } from '../helpers/client.js'

const events = defineEvents({ n: Type.Integer() })

t.test('status and SSE headers on HTTP/1.1', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  streamRoute(app, '/s', events)
  const origin = await start()
  const client = await openStream(t, `${origin}/s`)
  t.equal(client.statusCode, 200)
  t.equal(client.headers['content-type'], 'text/event-stream; charset=utf-8')
  t.equal(client.headers['cache-control'], 'no-cache')
  t.equal(client.headers['x-accel-buffering'], 'no')
  t.equal(client.headers.connection, 'keep-alive')
  t.equal(client.headers['content-length'], undefined, 'no content-length on an endless body')
  t.equal(client.headers['transfer-encoding'], 'chunked')
})

t.test('headers from hooks and reply.header() reach the client; stream headers win over conflicting ones', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  app.addHook('onRequest', async (_request, reply) => { reply.header('x-on-request', 'a') })
  app.addHook('preHandler', async (_request, reply) => { reply.header('x-pre-handler', 'b') })
  app.get('/s', (_request, reply) => {
    reply.header('x-handler', 'c')
    reply.header('set-cookie', ['one=1', 'two=2'])
    reply.header('content-type', 'application/json')
    reply.header('content-length', '5')
    reply.sse(events)
  })
  app.get('/own-cache', (_request, reply) => {
    reply.header('cache-control', 'no-store')
    reply.sse(events)
  })
  const origin = await start()
  const client = await openStream(t, `${origin}/s`)
  t.equal(client.headers['x-on-request'], 'a', 'onRequest hook')
  t.equal(client.headers['x-pre-handler'], 'b', 'preHandler hook')
  t.equal(client.headers['x-handler'], 'c', 'reply.header()')
  t.same(client.headers['set-cookie'], ['one=1', 'two=2'], 'multi-value header')
  t.equal(client.headers['content-type'], 'text/event-stream; charset=utf-8', 'the stream\'s content type wins')
  t.equal(client.headers['content-length'], undefined, 'content-length is dropped')
  const own = await openStream(t, `${origin}/own-cache`)
  t.equal(own.headers['cache-control'], 'no-store', 'an explicit cache-control is kept')
})

t.test('@fastify/cors headers reach the client', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  await app.register(cors, { origin: 'https://app.example', credentials: true })
  streamRoute(app, '/s', events)
  const origin = await start()
  const client = await openStream(t, `${origin}/s`, { origin: 'https://app.example' })
  t.equal(client.statusCode, 200)
  t.equal(client.headers['access-control-allow-origin'], 'https://app.example')
  t.equal(client.headers['access-control-allow-credentials'], 'true')
})

t.test('the head is flushed when the stream opens, before any event', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  const streams = streamRoute(app, '/s', events)
  const origin = await start()
  const client = await rawConnect(t, Number(new URL(origin).port), '/s')
  const stream = await streams.next()
  const bytes = await client.until((received) => splitHead(received) !== undefined)
  const parts = splitHead(bytes)
  t.match(parts?.head, /^HTTP\/1\.1 200 OK\r\n/, 'the status line arrived')
  t.match(parts?.head, /\r\ncontent-type: text\/event-stream; charset=utf-8\r\n/i)
  t.equal(parts?.body.length, 0, 'and no body byte yet: nothing was sent')
  stream.send('n', 1)
  const withEvent = await client.until((received) => received.includes('data: 1\n\n'))
  t.match(splitHead(withEvent)?.body.toString(), /^[0-9a-f]+\r\nevent: n\ndata: 1\n\n\r\n$/, 'then the event, in one chunk')
})

t.test('@fastify/compress neither compresses nor buffers the stream', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  await app.register(compress, { global: true, threshold: 0 })
  const streams = streamRoute(app, '/s', events)
  const origin = await start()
  const client = await openStream(t, `${origin}/s`, { 'accept-encoding': 'gzip, deflate, br' })
  t.equal(client.headers['content-encoding'], undefined, 'not encoded')
  const stream = await streams.next()
  stream.send('n', 1)
  t.same((await client.events(1)).map((event) => event.data), ['1'], 'the first event arrives on its own, readable')
})
