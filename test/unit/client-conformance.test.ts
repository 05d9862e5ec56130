/**
 * The fetch transport measured against the WHATWG HTML standard's event-stream rules
 * (§9.2 "Server-sent events": parsing §9.2.5-9.2.6, processing model §9.2.3), case by
 * case along the topics of the web-platform-tests `eventsource/` folder (format, id,
 * retry, MIME type, status, reconnect, redirect, request). The cases are our own,
 * written from the standard; each runs through the real client and Node's fetch
 * against a node:http server that answers exactly the bytes of the case.
 *
 * Where the client deliberately differs from a browser's EventSource, the test says so:
 * 5xx and 429 are retried with backoff (Retry-After honoured) instead of failing the
 * connection, and a redirect to another origin is refused (test/unit/client-trust.test.ts).
 */
import http from 'node:http'
import t from 'tap'
import { createClient, type SseClientError } from '../../lib/client.js'
import { Inbox, sleep, waitUntil, type Teardown } from '../helpers/app.js'

/** Every event name the cases use: all delivered raw (as text), so the data is compared byte for byte. */
const NAMES = ['message', 'custom', 'done'] as const

interface Received { type: string, data: string, lastEventId: string }

interface CaseServer {
  readonly origin: string
  /** Per path, each request's time and Last-Event-ID / Accept headers. */
  readonly requests: Array<{ path: string, at: number, lastEventId: string | undefined, accept: string | undefined }>
}

/** path -> what to answer: raw body bytes (a 200 event stream that then ends), or a handler. */
type Answer = string | Buffer | ((response: http.ServerResponse, attempt: number) => void)

async function serve (t: Teardown, answers: Record<string, Answer>): Promise<CaseServer> {
  const requests: CaseServer['requests'] = []
  const server = http.createServer((request, response) => {
    const path = request.url ?? ''
    requests.push({ path, at: Date.now(), lastEventId: request.headers['last-event-id'] as string | undefined, accept: request.headers.accept })
    const answer = answers[path]
    if (typeof answer === 'function') {
      answer(response, requests.filter((seen) => seen.path === path).length)
      return
    }
    response.writeHead(200, { 'content-type': 'text/event-stream' }).end(answer ?? '')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  return { origin: `http://127.0.0.1:${(server.address() as { port: number }).port}`, requests }
}

/** A client on `url` whose events (all names raw) and errors are queued. */
function follow (t: Teardown, url: string, options: Record<string, unknown> = {}): { events: Inbox<Received>, errors: Inbox<SseClientError>, statuses: string[], client: ReturnType<typeof createClient> } {
  const events = new Inbox<Received>()
  const errors = new Inbox<SseClientError>()
  const statuses: string[] = []
  const client = createClient(url, {
    transport: 'fetch',
    text: Object.fromEntries(NAMES.map((name) => [name, true])),
    minReconnectDelayMs: 50,
    onError: (error: SseClientError) => errors.push(error),
    ...options
  } as never)
  t.teardown(() => { client.close() })
  client.onStatus((status) => statuses.push(status))
  for (const name of NAMES) client.on(name as never, ((data: string, meta: { lastEventId: string }) => events.push({ type: name, data, lastEventId: meta.lastEventId })) as never)
  return { events, errors, statuses, client }
}

async function take (inbox: Inbox<Received>, count: number): Promise<Received[]> {
  const out: Received[] = []
  for (let i = 0; i < count; i++) out.push(await inbox.next(5000))
  return out
}

const event = (data: string, lastEventId = '', type = 'message'): Received => ({ type, data, lastEventId })

t.test('format: each case parsed as §9.2.5-9.2.6 say', async (t) => {
  // Each case ends with a `done` event so the test knows everything before it arrived.
  const DONE = 'event: done\ndata: .\n\n'
  const cases: Array<[string, Buffer | string, Received[]]> = [
    ['a leading BOM is dropped; a second one makes an unknown field', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('data: 1\n\n\ufeffdata: 2\n\n' + DONE)]), [event('1')]],
    ['comments are ignored, between fields too', ':hello\ndata: 1\n: more\ndata: 2\n\n' + DONE, [event('1\n2')]],
    ['data: empty value dispatches an empty string; a bare field name counts as an empty value', 'data:\n\ndata\ndata\n\n' + DONE, [event(''), event('\n')]],
    ['one space after the colon is removed, no more', 'data:  two\ndata:none\n\n' + DONE, [event(' two\nnone')]],
    ['a block without data dispatches nothing', 'event: custom\n\nid: 3\n\n' + DONE, []],
    ['event: names the type; an empty one means message', 'event: custom\ndata: a\n\nevent:\ndata: b\n\n' + DONE, [event('a', '', 'custom'), event('b')]],
    ['CR, LF and CRLF all end lines', 'data: a\rdata: b\r\n\r\ndata: c\n\r\n' + DONE, [event('a\nb'), event('c')]],
    ['unknown fields, and a field name with a space, are ignored', 'dat: x\ndata : y\nDATA: z\ndata: ok\n\n' + DONE, [event('ok')]],
    ['NUL in data is kept', 'data: a\u0000b\n\n' + DONE, [event('a\u0000b')]],
    ['UTF-8, and invalid bytes decoded as U+FFFD', Buffer.concat([Buffer.from('data: €🎉'), Buffer.from([0xff, 0x0a, 0x0a]), Buffer.from(DONE)]), [event('€🎉\ufffd')]],
    ['id: set, kept for later events, reset by an empty id', 'id: 1\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\nid\ndata: d\n\n' + DONE, [event('a', '1'), event('b', '1'), event('c', '2'), event('d')]],
    ['an id with NUL is ignored', 'id: 7\ndata: a\n\nid: x\u0000y\ndata: b\n\n' + DONE, [event('a', '7'), event('b', '7')]],
    ['an id on a block without data still sets the last id', 'id: 9\n\ndata: a\n\n' + DONE, [event('a', '9')]],
    ['retry: bogus values and a bare field name are ignored', 'retry\nretry: 10x\nretry: -1\ndata: test\n\n' + DONE, [event('test')]]
  ]
  const server = await serve(t, Object.fromEntries(cases.map(([, body], i) => [`/f${i}`, body])))
  for (const [i, [name, , expected]] of cases.entries()) {
    const { events, errors } = follow(t, `${server.origin}/f${i}`)
    const got = await take(events, expected.length + 1)
    t.same(got.slice(0, -1), expected, name)
    t.equal(got.at(-1)?.type, 'done', `${name}: nothing else before the end`)
    await t.rejects(errors.next(20), `${name}: no error`)
  }
})

t.test('format: an event not finished by a blank line when the body ends is discarded', async (t) => {
  const server = await serve(t, { '/cut': 'data: 1\n\ndata: 2' })
  const { events } = follow(t, `${server.origin}/cut`)
  t.same(await events.next(5000), event('1'))
  await waitUntil(() => server.requests.length >= 2, 5000, 'the reconnect')
  t.same(await events.next(5000), event('1'), 'the next connection starts again: "2" was never dispatched')
})

t.test('id: the last id goes back as Last-Event-ID; an empty id sends none', async (t) => {
  const server = await serve(t, {
    '/id': (response, attempt) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' })
      response.end(attempt === 1 ? 'id: é1\ndata: a\n\n' : attempt === 2 ? 'id\ndata: b\n\n' : 'data: c\n\n')
    }
  })
  const { events } = follow(t, `${server.origin}/id`)
  t.same(await take(events, 3), [event('a', 'é1'), event('b'), event('c')])
  t.same(server.requests.slice(0, 3).map((seen) => seen.lastEventId === undefined ? undefined : Buffer.from(seen.lastEventId, 'latin1').toString('utf8')),
    [undefined, 'é1', undefined], 'UTF-8 bytes of the id, then no header once the id was reset')
  t.ok(server.requests.every((seen) => seen.accept === 'text/event-stream'), 'Accept: text/event-stream on every request')
})

t.test('retry: the reconnect waits the retry: value (timed, by the documented formula: [retry, retry × 1.25))', async (t) => {
  const ended: number[] = []
  const server = await serve(t, {
    '/retry': (response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' })
      // A bogus retry after a valid one leaves the valid one in force.
      response.end('retry: 800\nretry: 100x\ndata: x\n\n', () => ended.push(Date.now()))
    }
  })
  follow(t, `${server.origin}/retry`)
  await waitUntil(() => server.requests.length >= 3, 10_000, 'two reconnects', 20)
  const waits = server.requests.slice(1, 3).map((seen, i) => seen.at - ended[i])
  t.ok(waits.every((wait) => wait >= 800 - 5 && wait < 1000 + 1000), `waits ${waits.join(', ')} ms: never before 800, within 1000 plus slack`)
})

t.test('MIME type: text/event-stream with parameters or in any case opens; any other type fails the connection', async (t) => {
  const answer = (type: string | undefined): Answer => (response) => {
    response.writeHead(200, type === undefined ? {} : { 'content-type': type }).end('data: ok\n\n')
  }
  const server = await serve(t, {
    '/params': answer('text/event-stream; charset=utf-8'),
    '/upper': answer('TEXT/EVENT-STREAM'),
    '/bogus': answer('text/x-bogus'),
    '/plain': answer('text/plain'),
    '/none': answer(undefined)
  })
  for (const path of ['/params', '/upper']) {
    const { events } = follow(t, `${server.origin}${path}`)
    t.same(await events.next(5000), event('ok'), path)
  }
  for (const path of ['/bogus', '/plain', '/none']) {
    const { errors, client } = follow(t, `${server.origin}${path}`)
    t.equal((await errors.next(5000)).code, 'TYPED_SSE_CLIENT_CONNECTION_FAILED', path)
    t.equal(client.status, 'closed', `${path}: closed`)
  }
  await sleep(200)
  t.equal(server.requests.filter((seen) => ['/bogus', '/plain', '/none'].includes(seen.path)).length, 3, 'no reconnect after a failed connection')
})

t.test('status: 204 stops; 205, 210, 299, 404 and 410 fail the connection; 503 is retried (a deliberate difference)', async (t) => {
  const status = (code: number): Answer => (response, attempt) => {
    if (code === 503 && attempt > 1) {
      response.writeHead(200, { 'content-type': 'text/event-stream' }).end('data: back\n\n')
      return
    }
    response.writeHead(code, { 'content-type': 'text/event-stream' }).end(code === 204 ? undefined : 'data: no\n\n')
  }
  const codes = [204, 205, 210, 299, 404, 410]
  const server = await serve(t, Object.fromEntries([...codes, 503].map((code) => [`/s${code}`, status(code)])))
  for (const code of codes) {
    const ended = new Inbox<true>()
    const { events, errors, client } = follow(t, `${server.origin}/s${code}`)
    client.onEnd(() => ended.push(true))
    if (code === 204) {
      t.equal(await ended.next(5000), true, '204: the end')
    } else {
      const error = await errors.next(5000)
      t.same([error.code, error.statusCode], ['TYPED_SSE_CLIENT_CONNECTION_FAILED', code], `${code}: failed`)
    }
    t.equal(client.status, 'closed', `${code}: closed`)
    await t.rejects(events.next(20), `${code}: no event`)
  }
  const { events } = follow(t, `${server.origin}/s503`)
  t.same(await events.next(5000), event('back'), '503 then 200: reconnected')
})

t.test('reconnect: after the body ends, the same URL again with Last-Event-ID; after a redirect, the original URL', async (t) => {
  const server = await serve(t, {
    '/start': (response) => { response.writeHead(307, { location: '/moved' }).end() },
    '/moved': (response, attempt) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' }).end(`id: m${attempt}\ndata: ${attempt}\n\n`)
    }
  })
  const { events, statuses } = follow(t, `${server.origin}/start`)
  t.same(await take(events, 2), [event('1', 'm1'), event('2', 'm2')])
  t.same(server.requests.slice(0, 4).map((seen) => [seen.path, seen.lastEventId]), [['/start', undefined], ['/moved', undefined], ['/start', 'm1'], ['/moved', 'm1']],
    'each reconnect starts at the URL the client was given, with the last id through the redirect')
  t.same(statuses.slice(0, 3), ['open', 'connecting', 'open'])
})

t.test('redirect: 301, 302, 303, 307 and 308 to the same origin are followed', async (t) => {
  const codes = [301, 302, 303, 307, 308]
  const answers: Record<string, Answer> = { '/target': 'data: here\n\n' }
  for (const code of codes) answers[`/r${code}`] = (response) => { response.writeHead(code, { location: `${server.origin}/target` }).end() }
  const server: CaseServer = await serve(t, answers)
  for (const code of codes) {
    const { events, client } = follow(t, `${server.origin}/r${code}`)
    t.same(await events.next(5000), event('here'), `${code}`)
    client.close()
  }
})

t.test('redirect: an endless redirect is refused after 20 hops (Fetch §4.4), with no reconnect', async (t) => {
  const server = await serve(t, { '/loop': (response) => { response.writeHead(302, { location: '/loop' }).end() } })
  const { errors, client } = follow(t, `${server.origin}/loop`)
  t.equal((await errors.next(5000)).code, 'TYPED_SSE_CLIENT_REDIRECT')
  t.equal(client.status, 'closed')
  await sleep(200)
  t.equal(server.requests.length, 21, 'the request and 20 redirects, once')
})
