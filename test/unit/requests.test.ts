/**
 * What happens to a request before and around opening its stream: HEAD, Accept
 * negotiation, an open that fails after admission, a reconnect to a stream that
 * ended, and reply.sse() after the reply began sending.
 */
import http from 'node:http'
import net from 'node:net'
import t from 'tap'
import { defineEvents, Type } from '../../lib/index.js'
import { buildApp, Inbox, LEVEL, thrown, waitUntil, withTimeout } from '../helpers/app.js'
import { openStream } from '../helpers/client.js'

const events = defineEvents({ n: Type.Integer() })

/** One request on a fresh connection; resolves with status, headers and the whole body. */
async function request (url: string, init: { method?: string, headers?: http.OutgoingHttpHeaders } = {}): Promise<{ status: number, headers: http.IncomingHttpHeaders, body: string }> {
  return await withTimeout(new Promise((resolve, reject) => {
    const req = http.request(url, { agent: false, method: init.method ?? 'GET', headers: { accept: 'text/event-stream', ...init.headers } }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    })
    req.on('error', reject)
    req.end()
  }), 3000, `${init.method ?? 'GET'} ${url}`)
}

t.test('HEAD on a stream route: the stream headers, an empty body at once, nothing counted; the connection stays usable', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, maxStreams: 1 } })
  let handlerRuns = 0
  app.get('/route', { sse: events }, async function * () {
    handlerRuns++
    yield { event: 'n', data: 1 }
  })
  app.get('/plain', (_request, reply) => { reply.sse(events).send('n', 1) })
  const origin = await start()
  const { port } = new URL(origin)
  for (const path of ['/route', '/plain']) {
    // Two HEADs and a GET on one keep-alive connection.
    const socket = net.connect({ port: Number(port), host: '127.0.0.1' })
    t.teardown(() => socket.destroy())
    let received = ''
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => { received += chunk })
    const ask = (method: string): void => { socket.write(`${method} ${path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n`) }
    ask('HEAD')
    ask('HEAD')
    await waitUntil(() => (received.match(/HTTP\/1\.1 200/g) ?? []).length === 2, 2000, `two HEAD answers on ${path}`)
    t.match(received, /content-type: text\/event-stream; charset=utf-8/i, 'the stream headers')
    t.notMatch(received, /event: n/, 'no body')
    t.equal(app.sse.stats().openStreams, 0, 'no stream open, no maxStreams slot held')
    ask('GET')
    await waitUntil(() => received.includes('event: n'), 2000, `the GET after on ${path}`)
    t.pass(`the keep-alive connection served a GET after two HEADs (${path})`)
    socket.destroy()
  }
  t.equal(handlerRuns, 1, 'HEAD never runs a { sse } route handler')
})

t.test('HEAD while the stream limits are full still gets the headers (it holds no slot), and is negotiated like GET (406)', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, maxStreams: 1, maxStreamsPerKey: 1 } })
  app.get('/route', { sse: events }, async function * () {
    yield { event: 'n', data: 1 }
    await new Promise(() => {})
  })
  app.get('/plain', (_request, reply) => { reply.sse(events).send('n', 1) })
  const origin = await start()
  for (const path of ['/route', '/plain']) {
    const open = await openStream(t, `${origin}${path}`)
    await open.events(1)
    t.equal(app.sse.stats().openStreams, 1, `${path}: both limits are full`)
    const refused = await request(`${origin}${path}`)
    t.not(refused.status, 200, `${path}: a second GET is refused (${refused.status})`)
    const rejectedBefore = JSON.stringify(app.sse.stats().rejected)
    const head = await request(`${origin}${path}`, { method: 'HEAD' })
    t.equal(head.status, 200, `${path}: HEAD gets the headers a GET would`)
    t.match(head.headers['content-type'], /^text\/event-stream/)
    t.equal(JSON.stringify(app.sse.stats().rejected), rejectedBefore, `${path}: the HEAD was not counted as refused`)
    const notAcceptable = await request(`${origin}${path}`, { method: 'HEAD', headers: { accept: 'application/json' } })
    t.equal(notAcceptable.status, 406, `${path}: HEAD refusing text/event-stream gets 406`)
    open.destroy()
    await waitUntil(() => app.sse.stats().openStreams === 0, 2000, `${path}: the stream closed`)
  }
})

t.test('HEAD on a { sse } route with a plain async handler: the handler does not run (a generator\'s body never would)', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  let handlerRuns = 0
  app.get('/plain-handler', { sse: events }, async (_request, reply) => {
    handlerRuns++
    reply.sse().send('n', 1)
  })
  const origin = await start()
  const head = await request(`${origin}/plain-handler`, { method: 'HEAD' })
  t.equal(head.status, 200)
  t.match(head.headers['content-type'], /^text\/event-stream/)
  t.equal(handlerRuns, 0, 'HEAD answered without the handler: no side effect of a GET ran')
})

t.test('Accept: the most specific range decides (text/event-stream;q=0 wins over */*)', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  app.get('/s', (_request, reply) => { reply.sse(events).close() })
  const origin = await start()
  for (const [accept, status] of [
    ['text/event-stream;q=0, */*', 406],
    ['*/*, text/*;q=0', 406],
    ['text/*;q=0, text/event-stream', 200],
    ['application/json', 406],
    ['*/*;q=0.1', 200],
    ['text/event-stream;q=0, text/event-stream;q=0.5', 200]
  ] as Array<[string, number]>) {
    t.equal((await request(`${origin}/s`, { headers: { accept } })).status, status, accept)
  }
  t.equal(app.sse.stats().rejected.not_acceptable, 3, 'refusals counted by reason')
})

t.test('an open that fails after admission (an invalid header value) answers 500 and releases the per-key slot', async (t) => {
  const { app, start, logs } = await buildApp(t, { sse: { heartbeatMs: false, maxStreamsPerKey: 1 } })
  app.get('/bad', (_request, reply) => {
    reply.header('x-bad', 'line\nbreak')
    reply.sse(events).send('n', 1)
  })
  app.get('/good', (_request, reply) => { reply.sse(events).send('n', 1) })
  const origin = await start()
  for (let i = 0; i < 3; i++) {
    const answer = await request(`${origin}/bad`)
    t.equal(answer.status, 500, `attempt ${i + 1}: the client gets 500, it does not hang`)
  }
  t.equal(logs.filter((line) => line.err?.code === 'TYPED_SSE_OPEN_FAILED' && line.level === LEVEL.error).length, 3, 'each logged with a code')
  t.equal(app.sse.stats().streamKeys, 0, 'no per-key slot kept')
  const good = await openStream(t, `${origin}/good`)
  t.equal(good.statusCode, 200, 'the same client is still admitted')
  await good.events(1)
})

t.test('an open that fails because the application already wrote to reply.raw ends the response and releases the slot', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, maxStreamsPerKey: 1 } })
  app.get('/raw', (_request, reply) => {
    reply.raw.write('oops')
    reply.sse(events)
  })
  const origin = await start()
  for (let i = 0; i < 2; i++) {
    await withTimeout(new Promise<void>((resolve) => {
      const req = http.get(`${origin}/raw`, { agent: false, headers: { accept: 'text/event-stream' } }, (res) => {
        res.resume()
        res.on('end', resolve).on('error', () => resolve()).on('close', resolve)
      })
      req.on('error', () => resolve())
    }), 3000, 'the response ends')
  }
  t.equal(app.sse.stats().streamKeys, 0, 'no per-key slot kept')
  t.equal(app.sse.stats().openStreams, 0)
})

t.test('a reconnect with Last-Event-ID sse:end gets 204, and a { sse } route handler does not run again', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  let runs = 0
  app.get('/completion', { sse: events }, async function * () {
    runs++
    yield { event: 'n', data: runs }
  })
  app.get('/plain', (_request, reply) => { reply.sse(events).end() })
  const origin = await start()
  const first = await openStream(t, `${origin}/completion`)
  await first.ended
  t.equal(first.parser.lastEventId, 'sse:end', 'the end event carries the id that marks it')
  const again = await request(`${origin}/completion`, { headers: { 'last-event-id': first.parser.lastEventId } })
  t.equal(again.status, 204, '204 stops an EventSource for good')
  t.equal(runs, 1, 'the generator ran once')
  t.equal((await request(`${origin}/plain`, { headers: { 'last-event-id': 'sse:end' } })).status, 204, 'plain routes too')
  t.equal(app.sse.stats().openStreams, 0)
})

t.test('reply.sse() after reply.send() while an async onSend hook runs throws TYPED_SSE_ALREADY_SENT', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  app.addHook('onSend', async (_request, _reply, payload) => {
    await new Promise((resolve) => setTimeout(resolve, 20))
    return payload
  })
  const codes = new Inbox<string | undefined>()
  app.get('/s', (_request, reply) => {
    void reply.send('plain')
    codes.push(thrown(() => reply.sse(events))?.code)
  })
  const origin = await start()
  const answer = await request(`${origin}/s`)
  t.equal(await codes.next(), 'TYPED_SSE_ALREADY_SENT')
  t.equal(answer.body, 'plain', 'the reply that was sent is intact')
})
