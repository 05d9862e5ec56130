/**
 * A real EventSource client (the `eventsource` 4.x package): typed events arrive, and
 * on reconnect the client sends Last-Event-ID, which the stream exposes decoded as
 * UTF-8 (also for non-ASCII ids).
 */
import { EventSource } from 'eventsource'
import t from 'tap'
import { defineEvents, Text, Type } from '../../lib/index.js'
import { buildApp, Inbox, withTimeout, type Teardown } from '../helpers/app.js'
import { openStream } from '../helpers/client.js'

const events = defineEvents({
  tick: Type.Object({ now: Type.String(), epochMs: Type.Integer() }),
  token: Text()
})

/**
 * A fetch that sends Last-Event-ID the way browsers do: as its UTF-8 bytes
 * (HTML §9.2.4 "set `Last-Event-ID` to the last event ID string, UTF-8 encoded").
 * Node's fetch takes header values as Latin-1 strings, one character per byte, and
 * refuses any character above U+00FF, so the eventsource package cannot send '✓' itself.
 */
const browserLikeFetch: typeof fetch = (input, init) => {
  const headers = new Headers()
  for (const [name, value] of Object.entries((init?.headers ?? {}) as Record<string, string>)) {
    headers.set(name, name.toLowerCase() === 'last-event-id' ? Buffer.from(value, 'utf8').toString('latin1') : value)
  }
  return fetch(input, { ...init, headers })
}

function connect (t: Teardown, url: string, options: { fetch?: typeof fetch } = {}): EventSource {
  const source = new EventSource(url, options)
  t.teardown(() => { source.close() })
  return source
}

function nextMessage (source: EventSource, type: string): Promise<MessageEvent> {
  return withTimeout(new Promise<MessageEvent>((resolve) => {
    source.addEventListener(type, resolve, { once: true })
  }), 3000, `event ${type}`)
}

t.test('EventSource receives typed events', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  app.get('/s', (_request, reply) => {
    const stream = reply.sse(events)
    stream.send('tick', { now: 'noon', epochMs: 42 }, { id: 't1' })
    stream.send('token', 'multi\nline é✓')
  })
  const origin = await start()
  const source = connect(t, `${origin}/s`)
  const opened = withTimeout(new Promise<void>((resolve) => { source.onopen = () => resolve() }), 3000, 'open')
  const tick = nextMessage(source, 'tick')
  const token = nextMessage(source, 'token')
  await opened
  t.equal(source.readyState, EventSource.OPEN)
  const tickEvent = await tick
  t.same(JSON.parse(tickEvent.data as string), { now: 'noon', epochMs: 42 })
  t.equal(tickEvent.lastEventId, 't1')
  t.equal((await token).data, 'multi\nline é✓')
})

t.test('the client opens before the first event: headers are flushed at once', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  app.get('/s', (_request, reply) => { reply.sse(events) })
  const origin = await start()
  const source = connect(t, `${origin}/s`)
  await withTimeout(new Promise<void>((resolve) => { source.onopen = () => resolve() }), 3000, 'open without any event')
  t.equal(source.readyState, EventSource.OPEN)
})

/** A server whose stream sends one event with `id`, then closes; records each request's lastEventId. */
async function reconnectingServer (t: Teardown, id: string): Promise<{ origin: string, lastIds: Inbox<string | undefined> }> {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, retryMs: 20 } })
  const lastIds = new Inbox<string | undefined>()
  app.get('/s', (_request, reply) => {
    const stream = reply.sse(events)
    lastIds.push(stream.lastEventId)
    if (stream.lastEventId === undefined) {
      stream.send('token', 'first', { id })
      stream.close()
    }
  })
  return { origin: await start(), lastIds }
}

t.test('on reconnect the client sends Last-Event-ID and the stream exposes it', async (t) => {
  const { origin, lastIds } = await reconnectingServer(t, 'abc-41')
  connect(t, `${origin}/s`)
  t.equal(await lastIds.next(), undefined, 'no Last-Event-ID on the first request')
  t.equal(await lastIds.next(3000), 'abc-41', 'the id of the last event, after the reconnect')
})

t.test('a non-ASCII Last-Event-ID sent as UTF-8 (as browsers do) reads back exactly', async (t) => {
  const { origin, lastIds } = await reconnectingServer(t, 'é✓-😀')
  connect(t, `${origin}/s`, { fetch: browserLikeFetch })
  t.equal(await lastIds.next(), undefined)
  t.equal(await lastIds.next(3000), 'é✓-😀')
})

t.test('a Latin-1 Last-Event-ID from the eventsource package\'s own fetch reads back exactly', async (t) => {
  // Node's fetch sends 'é' as the single byte 0xE9, which is not UTF-8.
  const { origin, lastIds } = await reconnectingServer(t, 'café')
  connect(t, `${origin}/s`)
  t.equal(await lastIds.next(), undefined)
  t.equal(await lastIds.next(3000), 'café')
})

t.test('Last-Event-ID on raw requests: empty reads as absent, UTF-8 bytes are decoded', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  const lastIds = new Inbox<string | undefined>()
  app.get('/s', (_request, reply) => { lastIds.push(reply.sse(events).lastEventId) })
  const origin = await start()
  const asBytes = (text: string): string => Buffer.from(text, 'utf8').toString('latin1')
  for (const [header, expected] of [['', undefined], ['0', '0'], [asBytes('é✓'), 'é✓'], [asBytes('\uFEFFx'), '\uFEFFx']]) {
    await openStream(t, `${origin}/s`, { 'last-event-id': header })
    t.equal(await lastIds.next(), expected, JSON.stringify(expected))
  }
})
