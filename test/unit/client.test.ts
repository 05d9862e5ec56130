/**
 * The typed client in Node against a real server, over both transports (the
 * `eventsource` package, and the fetch transport with Node's fetch): parsing (JSON
 * and Text()), meta, status across reconnects, Last-Event-ID, control events,
 * run-time validation, errors by code, and close().
 */
import { EventSource } from 'eventsource'
import t from 'tap'
import {
  createClient, type ClientStatus, type EventMeta, type SseClient, type SseClientError
} from '../../lib/client.js'
import { MISSED_EVENT } from '../../lib/core/control.js'
import { controlFrame } from '../../lib/core/frame.js'
import { kWrite } from '../../lib/core/symbols.js'
import { defineEvents, eventValidator, Text, Type, type SsePluginOptions, type SseStream } from '../../lib/index.js'
import { buildApp, Inbox, sleep, waitUntil, withTimeout, type Teardown, type TestApp } from '../helpers/app.js'

const feed = defineEvents({
  tick: Type.Object({ now: Type.String(), epochMs: Type.Integer() }),
  token: Text()
})

/** Each test runs once per transport: the same behaviour is promised for both. */
const TRANSPORTS = [
  ['eventsource', { EventSource }],
  ['fetch', { transport: 'fetch' }]
] as const

/**
 * The app under test, without heartbeats (no test here needs them). After a client
 * leaves, undici (under `eventsource`) holds a spare connection that never sends a
 * request; `forceCloseConnections` ends it instead of waiting 4 s for its keep-alive.
 */
function build (t: Teardown, sse: SsePluginOptions = {}): Promise<TestApp> {
  return buildApp(t, { sse: { heartbeatMs: false, ...sse }, fastify: { forceCloseConnections: true } })
}

/** Opens a client and closes it in teardown (before the app, which was registered earlier). */
function open<C extends SseClient<any>> (t: Teardown, client: C): C {
  t.teardown(() => { client.close() })
  return client
}

/** An Inbox fed by `client.onStatus`. */
function statuses (client: SseClient<any>): Inbox<ClientStatus> {
  const inbox = new Inbox<ClientStatus>()
  client.onStatus((status) => inbox.push(status))
  return inbox
}

/** An Inbox fed by `onError`. */
function errorInbox (): { onError: (error: SseClientError) => void, errors: Inbox<SseClientError> } {
  const errors = new Inbox<SseClientError>()
  return { onError: (error) => errors.push(error), errors }
}

for (const [transport, via] of TRANSPORTS) {
  t.test(`${transport}: delivers JSON and Text() data parsed, with meta; status connecting -> open`, async (t) => {
    const { app, start } = await build(t)
    app.get('/feed', (_request, reply) => {
      const stream = reply.sse(feed)
      stream.send('tick', { now: '2025-01-01T00:00:00.000Z', epochMs: 1735689600000 }, { id: 'a1' })
      stream.send('token', 'two\nlines', { id: 'a2' })
      stream.send('token', '123') // JSON-looking text stays a string
    })
    const origin = await start()
    const client = open(t, createClient(`${origin}/feed`, { catalog: feed, ...via }))
    t.equal(client.status, 'connecting', 'connecting from the start')
    t.equal(client.url, `${origin}/feed`)
    const changes = statuses(client)
    const ticks = new Inbox<[{ now: string, epochMs: number }, EventMeta<'tick'>]>()
    const tokens = new Inbox<[string, EventMeta<'token'>]>()
    client.on('tick', (data, meta) => ticks.push([data, meta]))
    client.on('token', (data, meta) => tokens.push([data, meta]))

    t.equal(await changes.next(), 'open')
    t.same(await ticks.next(), [{ now: '2025-01-01T00:00:00.000Z', epochMs: 1735689600000 }, { event: 'tick', lastEventId: 'a1', id: 'a1' }])
    t.same(await tokens.next(), ['two\nlines', { event: 'token', lastEventId: 'a2', id: 'a2' }])
    const [text] = await tokens.next()
    t.equal(text, '123', 'raw text, not parsed')
    t.equal(client.status, 'open')
  })

  t.test(`${transport}: type only (and a URL object): the events listed in \`text\` arrive raw, the others parsed`, async (t) => {
    const { app, start } = await build(t)
    app.get('/feed', (_request, reply) => {
      const stream = reply.sse(feed)
      stream.send('token', '{"not":"parsed"}')
      stream.send('tick', { now: 'x', epochMs: 1 })
    })
    const origin = await start()
    const client = open(t, createClient<typeof feed>(new URL('/feed', origin), { ...via, text: { token: true } }))
    const received = new Inbox<unknown>()
    client.on('token', (data) => received.push(data))
    client.on('tick', (data) => received.push(data))
    t.equal(await received.next(), '{"not":"parsed"}')
    t.same(await received.next(), { now: 'x', epochMs: 1 })
  })

  t.test(`${transport}: reconnects after the server ends the stream: open -> connecting -> open, Last-Event-ID sent`, async (t) => {
    const { app, start } = await build(t, { retryMs: 20 })
    const seen: Array<string | undefined> = []
    app.get('/feed', (_request, reply) => {
      const stream = reply.sse(feed)
      seen.push(stream.lastEventId)
      stream.send('tick', { now: 'x', epochMs: seen.length }, { id: `id-${seen.length}` })
      if (seen.length === 1) stream.close()
    })
    const origin = await start()
    const client = open(t, createClient(`${origin}/feed`, { catalog: feed, ...via }))
    const changes = statuses(client)
    const ticks = new Inbox<number>()
    client.on('tick', (data) => ticks.push(data.epochMs))

    t.same([await changes.next(), await changes.next(), await changes.next()], ['open', 'connecting', 'open'])
    t.same([await ticks.next(), await ticks.next()], [1, 2], 'events of both connections')
    t.same(seen, [undefined, 'id-1'], 'the reconnect carried the last id as Last-Event-ID')
  })

  t.test(`${transport}: a channel that cannot replay the Last-Event-ID sends sse:resync to onResync`, async (t) => {
    const { app, start } = await build(t, { retryMs: 20 })
    const scores = app.sse.channel('scores', feed, { history: true })
    app.get('/scores', async (_request, reply) => {
      const stream = reply.sse(feed)
      if (stream.lastEventId === undefined) {
        // An id this channel never gave (say, from before a deploy): the reconnect cannot replay.
        stream.send('tick', { now: 'x', epochMs: 0 }, { id: 'not-from-history' })
        stream.close()
        return
      }
      await scores.subscribe(stream)
    })
    const origin = await start()
    const client = open(t, createClient(`${origin}/scores`, { catalog: feed, ...via }))
    const resyncs = new Inbox<unknown>()
    client.onResync((info) => resyncs.push(info))
    t.same(await resyncs.next(3000), { channel: 'scores', lastEventId: 'not-from-history', reason: 'unknown' })

    const ticks = new Inbox<[number, string | undefined]>()
    client.on('tick', (data, meta) => ticks.push([data.epochMs, meta.id]))
    await waitUntil(() => scores.size === 1, 2000, 'subscribed')
    const id = await scores.publish('tick', { now: 'y', epochMs: 7 })
    t.same(await ticks.next(), [7, id], 'live events follow, with their channel id')
  })

  t.test(`${transport}: sse:missed reaches onMissed`, async (t) => {
    const { app, start } = await build(t)
    app.get('/feed', (_request, reply) => {
      reply.sse(feed)[kWrite](controlFrame(MISSED_EVENT, { dropped: 3 }))
    })
    const origin = await start()
    const client = open(t, createClient(`${origin}/feed`, { catalog: feed, ...via }))
    const missed = new Inbox<unknown>()
    client.onMissed((info) => missed.push(info))
    t.same(await missed.next(), { dropped: 3 })
  })

  t.test(`${transport}: validation: invalid data goes to onError as TYPED_SSE_CLIENT_INVALID_DATA and is not delivered`, async (t) => {
    // The client's copy of the catalog is stricter than the server's, as after a
    // deploy that changed the schema on one side only.
    const strict = defineEvents({
      tick: Type.Object({ now: Type.String(), epochMs: Type.Integer({ minimum: 10 }) }),
      token: Text()
    })
    const { app, start } = await build(t)
    app.get('/feed', (_request, reply) => {
      const stream = reply.sse(feed)
      stream.send('tick', { now: 'x', epochMs: 5 })
      stream.send('tick', { now: 'y', epochMs: 50 })
    })
    const origin = await start()
    const { onError, errors } = errorInbox()
    const client = open(t, createClient(`${origin}/feed`, { catalog: strict, EventSource, validate: eventValidator(strict), onError }))
    const ticks = new Inbox<number>()
    client.on('tick', (data) => ticks.push(data.epochMs))

    const error = await errors.next()
    t.equal(error.code, 'TYPED_SSE_CLIENT_INVALID_DATA')
    t.equal(error.event, 'tick')
    t.same(error.data, { now: 'x', epochMs: 5 })
    t.equal(await ticks.next(), 50, 'only the valid event was delivered')
    t.type(eventValidator(strict)('tock', {}), 'string', 'an event the catalog lacks is invalid, with a reason')
  })

  t.test(`${transport}: validation: any function fits; false and a throw both reject`, async (t) => {
    const { app, start } = await build(t)
    app.get('/feed', (_request, reply) => {
      const stream = reply.sse(feed)
      for (const epochMs of [1, 2, 3]) stream.send('tick', { now: 'x', epochMs })
    })
    const origin = await start()
    const { onError, errors } = errorInbox()
    const client = open(t, createClient<typeof feed>(`${origin}/feed`, {
      ...via,
      text: { token: true },
      onError,
      validate: (_event, data) => {
        const { epochMs } = data as { epochMs: number }
        if (epochMs === 2) throw new Error('two')
        return epochMs !== 1
      }
    }))
    const ticks = new Inbox<number>()
    client.on('tick', (data) => ticks.push(data.epochMs))
    const [first, second] = [await errors.next(), await errors.next()]
    t.same([first.code, second.code], ['TYPED_SSE_CLIENT_INVALID_DATA', 'TYPED_SSE_CLIENT_INVALID_DATA'])
    t.equal((second.cause as Error).message, 'two', 'the thrown error is the cause')
    t.equal(await ticks.next(), 3)
  })

  t.test(`${transport}: a Text() event the client was not told about: TYPED_SSE_CLIENT_INVALID_JSON, not delivered`, async (t) => {
    const { app, start } = await build(t)
    app.get('/feed', (_request, reply) => {
      const stream = reply.sse(feed)
      stream.send('token', 'hello')
      stream.send('tick', { now: 'x', epochMs: 1 })
    })
    const origin = await start()
    const { onError, errors } = errorInbox()
    const client = open(t, createClient(`${origin}/feed`, { ...via, onError }))
    const received = new Inbox<unknown>()
    client.on('token', (data) => received.push(data))
    client.on('tick', (data) => received.push(data))
    const error = await errors.next()
    t.equal(error.code, 'TYPED_SSE_CLIENT_INVALID_JSON')
    t.equal(error.data, 'hello', 'the raw data')
    t.same(await received.next(), { now: 'x', epochMs: 1 }, 'the token was skipped, the next event delivered')
  })

  t.test(`${transport}: a throwing handler goes to onError as TYPED_SSE_CLIENT_HANDLER_FAILED; the others still run`, async (t) => {
    const { app, start } = await build(t)
    app.get('/feed', (_request, reply) => { reply.sse(feed).send('tick', { now: 'x', epochMs: 1 }) })
    const origin = await start()
    const { onError, errors } = errorInbox()
    const client = open(t, createClient(`${origin}/feed`, { catalog: feed, EventSource, onError }))
    const ticks = new Inbox<number>()
    client.on('tick', () => { throw new Error('boom') })
    client.on('tick', (data) => ticks.push(data.epochMs))
    const error = await errors.next()
    t.equal(error.code, 'TYPED_SSE_CLIENT_HANDLER_FAILED')
    t.equal((error.cause as Error).message, 'boom')
    t.equal(await ticks.next(), 1)
  })

  t.test(`${transport}: off() and the function on() returns remove handlers`, async (t) => {
    const { app, start } = await build(t)
    const streams = new Inbox<SseStream<typeof feed>>()
    app.get('/feed', (_request, reply) => { streams.push(reply.sse(feed)) })
    const origin = await start()
    const client = open(t, createClient(`${origin}/feed`, { catalog: feed, ...via }))
    const calls: string[] = []
    const viaOff = (): void => { calls.push('off') }
    const stop = client.on('tick', () => { calls.push('stopped') })
    client.on('tick', viaOff)
    const kept = new Inbox<number>()
    client.on('tick', (data) => kept.push(data.epochMs))
    const stream = await streams.next()
    stream.send('tick', { now: 'x', epochMs: 1 })
    t.equal(await kept.next(), 1)
    stop()
    client.off('tick', viaOff)
    stream.send('tick', { now: 'x', epochMs: 2 })
    t.equal(await kept.next(), 2)
    t.same(calls, ['stopped', 'off'], 'the removed handlers saw only the first event')
  })

  t.test(`${transport}: close() stops everything: no events, no status change but closed, no reconnect`, async (t) => {
    const { app, start } = await build(t, { retryMs: 20 })
    const streams = new Inbox<SseStream<typeof feed>>()
    app.get('/feed', (_request, reply) => { streams.push(reply.sse(feed)) })
    const origin = await start()
    const client = open(t, createClient(`${origin}/feed`, { catalog: feed, ...via }))
    const changes = statuses(client)
    const ticks: number[] = []
    client.on('tick', (data) => ticks.push(data.epochMs))
    const stream = await streams.next()
    t.equal(await changes.next(), 'open')

    const left = new Promise((resolve) => stream.onClose(resolve))
    client.close()
    t.equal(client.status, 'closed')
    t.equal(await changes.next(), 'closed')
    t.equal(await withTimeout(left, 2000, 'server side close'), 'client', 'the server saw the client leave')
    stream.send('tick', { now: 'x', epochMs: 1 })
    client.close() // a second close is a no-op
    await sleep(100) // five retry periods: a reconnect would have happened by now
    t.same(ticks, [], 'nothing delivered after close')
    t.equal(app.sse.stats().openStreams, 0, 'no reconnect')
  })

  t.test(`${transport}: a refused stream (404) ends the client: TYPED_SSE_CLIENT_CONNECTION_FAILED, status closed`, async (t) => {
    const { start } = await build(t)
    const origin = await start()
    const { onError, errors } = errorInbox()
    const client = open(t, createClient(`${origin}/nowhere`, { catalog: feed, EventSource, onError }))
    const changes = statuses(client)
    t.equal(await changes.next(), 'closed')
    t.equal((await errors.next()).code, 'TYPED_SSE_CLIENT_CONNECTION_FAILED')
  })
}

t.test('misuse throws with a code: unknown event with a catalog, no EventSource in the runtime', async (t) => {
  const { start } = await build(t)
  const origin = await start()
  const client = open(t, createClient(`${origin}/nowhere`, { catalog: feed, EventSource, onError: () => {} }))
  // @ts-expect-error not in the catalog: the compiler refuses it, plain JS gets the error
  t.throws(() => client.on('tock', () => {}), { code: 'TYPED_SSE_CLIENT_UNKNOWN_EVENT' })

  t.equal((globalThis as { EventSource?: unknown }).EventSource, undefined, 'Node 20 has no EventSource')
  t.throws(() => createClient(`${origin}/feed`, { transport: 'eventsource' }), { code: 'TYPED_SSE_CLIENT_NO_EVENTSOURCE' })
  t.throws(() => createClient(`${origin}/feed`, { EventSource, transport: 'eventsource', headers: { a: 'b' } }),
    { code: 'TYPED_SSE_CLIENT_BAD_OPTION' }, 'headers need the fetch transport')
  t.throws(() => createClient('/feed'), { code: 'TYPED_SSE_CLIENT_BAD_OPTION' }, 'a relative URL with no page to resolve it')
  t.throws(() => createClient(`${origin}/feed`, { body: new ReadableStream() as never }), { code: 'TYPED_SSE_CLIENT_BAD_OPTION' },
    'a stream body cannot be sent again on reconnect')
  if ((globalThis.navigator as { locks?: unknown } | undefined)?.locks === undefined) {
    t.throws(() => createClient(`${origin}/feed`, { shared: true }), { code: 'TYPED_SSE_CLIENT_BAD_OPTION' }, 'no Web Locks in this runtime')
  } else {
    // Node 24 has Web Locks and BroadcastChannel: tabs-style sharing works, and closes cleanly.
    const shared = createClient(`${origin}/feed`, { shared: true })
    t.not(shared.status, 'closed', 'shared: true works where Web Locks exist')
    shared.close()
    t.equal(shared.status, 'closed')
  }
  for (const bad of [-1, Number.NaN, '10']) {
    t.throws(() => createClient(`${origin}/feed`, { maxEventBytes: bad as number }), { code: 'TYPED_SSE_CLIENT_BAD_OPTION' }, `maxEventBytes ${String(bad)}`)
  }
})
