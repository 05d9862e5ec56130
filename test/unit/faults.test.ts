/**
 * Faults, with other clients watching: connections reset mid-write, a half-open client
 * that stops reading (closed as 'stalled' by the heartbeat, its memory freed), producers
 * that throw (logged once with TYPED_SSE_PRODUCER_FAILED), and a flood of invalid
 * events (each refused, nothing on the wire). Through all of it the server keeps
 * serving the others.
 */
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { defineEvents, Text, Type, type CloseReason, type SseMessage, type SseStream } from '../../lib/index.js'
import { buildApp, Inbox, LEVEL, sleep, streamRoute, thrown, waitUntil, withTimeout, type LogLine, type Teardown } from '../helpers/app.js'
import { openStream, rawConnect, type StreamClient } from '../helpers/client.js'

const events = defineEvents({ token: Text(), n: Type.Integer({ minimum: 0 }), user: Type.Object({ name: Type.String({ maxLength: 8 }) }) })
type Events = typeof events
type Message = SseMessage<Events>

const BIG = 'x'.repeat(64 * 1024)

/** Log lines with `err.code === code`. */
function logged (logs: LogLine[], code: string): LogLine[] {
  return logs.filter((line) => line.err?.code === code)
}

/**
 * Observers: `count` clients on `/watch`, and a function that sends one event `n` to
 * all of them and checks each received it (proof the server still serves the others).
 */
async function observers (t: Teardown, app: FastifyInstance, origin: string, count = 3): Promise<(n: number) => Promise<boolean>> {
  const streams = new Set<SseStream<Events>>()
  app.sse.channel('watch', events)
  const clients: StreamClient[] = []
  for (let i = 0; i < count; i++) clients.push(await openStream(t, `${origin}/watch`))
  await waitUntil(() => app.sse.channel('watch', events).size === count, 2000, 'observers subscribed')
  for (const stream of app.sse.channel('watch', events).subscribers()) streams.add(stream)
  return async (n) => {
    await app.sse.channel('watch', events).publish('n', n)
    const received = await Promise.all(clients.map(async (client) => {
      const all = await client.events(client.parser.events.length + 1, 2000)
      return JSON.parse(all[all.length - 1].data) === n
    }))
    return received.every(Boolean) && [...streams].every((stream) => stream.isOpen)
  }
}

function watchRoute (app: FastifyInstance): void {
  app.get('/watch', async (_request, reply) => {
    await app.sse.channel('watch', events).subscribe(reply.sse(events))
  })
}

t.test('clients resetting the connection mid-write: their producers stop, nothing is logged, the others are served', async (t) => {
  const { app, logs, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  watchRoute(app)
  const closes = new Inbox<CloseReason>()
  let producersFinished = 0
  let bigEventsSent = 0
  app.get('/big', (_request, reply) => {
    const stream = reply.sse(events)
    stream.onClose((reason) => closes.push(reason))
    void stream.from((async function * (): AsyncGenerator<Message> {
      try {
        for (let i = 0; i < 5000; i++) {
          bigEventsSent++
          yield { event: 'token', data: BIG }
        }
      } finally {
        producersFinished++
      }
    })())
  })
  const origin = await start()
  const port = Number(new URL(origin).port)
  const check = await observers(t, app, origin)
  t.ok(await check(1), 'observers served before')

  const resets = 5
  const clients = await Promise.all(Array.from({ length: resets }, () => rawConnect(t, port, '/big')))
  // Each client resets (TCP RST) once a few big events are through, while more are in flight.
  await Promise.all(clients.map(async (client) => {
    await client.until((bytes) => bytes.length > 512 * 1024, 5000)
    client.socket.resetAndDestroy()
  }))
  for (let i = 0; i < resets; i++) t.equal(await closes.next(3000), 'client', 'a reset is seen as the client leaving')
  await waitUntil(() => producersFinished === resets, 2000, 'producers finished')
  t.equal(producersFinished, resets, "every producer's finally ran (return() called)")
  t.ok(bigEventsSent < resets * 5000, `producers stopped early (${bigEventsSent} big events in all)`)
  t.equal(app.sse.stats().openStreams, 3, 'only the observers are left')
  t.equal(app.sse.stats().queuedBytes, 0, 'no bytes left queued')
  t.ok(await check(2), 'observers still served after the resets')
  t.same(logs.filter((line) => line.level >= LEVEL.warn), [], 'a client leaving is not an error: nothing logged')
})

t.test('a half-open client (stops reading) is closed as stalled by the heartbeat, logged once with TYPED_SSE_CLIENT_STALLED, its queue freed; the others are served', async (t) => {
  const heartbeatMs = 50
  // maxQueueBytes far above what the test queues: the queue policy must not be what closes it.
  const { app, logs, start } = await buildApp(t, { sse: { heartbeatMs, maxQueueBytes: 256 * 1024 * 1024 } })
  watchRoute(app)
  const streams = streamRoute(app, '/s', events)
  const origin = await start()
  const check = await observers(t, app, origin)
  const raw = await rawConnect(t, Number(new URL(origin).port), '/s', { read: false })
  const stream = await streams.next()
  const reason = new Promise<CloseReason>((resolve) => stream.onClose(resolve))

  // Send until the kernel buffers are full and events pile up in the stream's queue.
  const deadline = Date.now() + 5000
  while (stream.isOpen && stream.queuedBytes < 2 * 1024 * 1024 && Date.now() < deadline) {
    for (let i = 0; i < 8 && stream.isOpen; i++) stream.send('token', BIG)
    await sleep(5)
  }
  t.ok(stream.queuedBytes >= 2 * 1024 * 1024, `the client is backed up (${stream.queuedBytes} bytes queued)`)
  t.ok(app.sse.stats().queuedBytes >= stream.queuedBytes, 'counted in stats')
  const backedUpAt = Date.now()

  t.equal(await withTimeout(reason, 2000, 'stalled close'), 'stalled')
  const afterMs = Date.now() - backedUpAt
  // Two heartbeat periods without a byte accepted, checked every quarter period.
  t.ok(afterMs < 20 * heartbeatMs, `closed ${afterMs} ms after the last send (heartbeatMs ${heartbeatMs})`)
  t.equal(stream.queuedBytes, 0, "the stream's queue is freed")
  t.equal(app.sse.stats().queuedBytes, 0, 'nothing queued on the instance')
  t.equal(app.sse.stats().openStreams, 3, 'only the observers are left')
  t.equal(stream.request.raw.socket.destroyed, true, 'the server destroyed the connection')
  // A paused socket does not poll: the client sees the reset once it reads again.
  raw.socket.resume()
  await withTimeout(raw.closed, 2000, 'the client saw the connection go')
  t.equal(stream.send('token', 'late'), false, 'sends after the close are no-ops')
  t.ok(await check(1), 'observers served')
  t.equal(logged(logs, 'TYPED_SSE_CLIENT_STALLED').length, 1, 'logged once, with a code')
  t.equal(logged(logs, 'TYPED_SSE_QUEUE_FULL').length, 0, 'not the queue policy')
})

t.test('a client that stops reading with a small maxQueueBytes is closed by the queue policy, logged once', async (t) => {
  const { app, logs, start } = await buildApp(t, { sse: { heartbeatMs: false, maxQueueBytes: 256 * 1024 } })
  watchRoute(app)
  const streams = streamRoute(app, '/s', events)
  const origin = await start()
  const check = await observers(t, app, origin)
  await rawConnect(t, Number(new URL(origin).port), '/s', { read: false })
  const stream = await streams.next()
  const reason = new Promise<CloseReason>((resolve) => stream.onClose(resolve))
  const deadline = Date.now() + 5000
  while (stream.isOpen && Date.now() < deadline) {
    for (let i = 0; i < 8 && stream.isOpen; i++) stream.send('token', BIG)
    await sleep(5)
  }
  t.equal(await withTimeout(reason, 1000, 'policy close'), 'policy')
  t.equal(app.sse.stats().queuedBytes, 0)
  t.equal(app.sse.stats().closedByPolicy, 1)
  t.equal(logged(logs, 'TYPED_SSE_QUEUE_FULL').length, 1, 'logged once, with a code')
  t.ok(await check(1), 'observers served')
})

t.test('producers that throw are logged once with TYPED_SSE_PRODUCER_FAILED and end their stream only', async (t) => {
  const { app, logs, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  watchRoute(app)
  const closes = new Inbox<{ path: string, reason: CloseReason }>()
  const track = (path: string, stream: SseStream<Events>): SseStream<Events> => {
    stream.onClose((reason) => closes.push({ path, reason }))
    return stream
  }
  // from() with an iterable that throws after one event.
  app.get('/from', (request, reply) => {
    void track(request.url, reply.sse(events)).from((async function * (): AsyncGenerator<Message> {
      yield { event: 'n', data: 1 }
      throw new Error('upstream broke')
    })())
  })
  // A route declared as a stream whose handler throws after opening it.
  app.get('/handler', { sse: events }, async (request, reply) => {
    const stream = track(request.url, reply.sse())
    stream.send('n', 1)
    await sleep(10)
    throw new Error('database down')
  })
  // A stream route returning an iterable that throws.
  app.get('/iterable', { sse: events }, (request, reply) => {
    track(request.url, reply.sse())
    return (async function * (): AsyncGenerator<Message> {
      yield { event: 'n', data: 1 }
      throw new Error('iterator broke')
    })()
  })
  // A producer yielding an invalid payload (from untyped data).
  app.get('/invalid', { sse: events }, (request, reply) => {
    track(request.url, reply.sse())
    return [{ event: 'n', data: 1 }, { event: 'n', data: -5 }] as Message[]
  })
  // A stream route failing before it opens: an ordinary 500, not a producer failure.
  app.get('/before', { sse: events }, async () => {
    throw Object.assign(new Error('no such feed'), { statusCode: 404, code: 'FEED_NOT_FOUND' })
  })
  const origin = await start()
  const check = await observers(t, app, origin)

  const paths = ['/from', '/handler', '/iterable', '/invalid']
  for (const path of paths) {
    const before = logged(logs, 'TYPED_SSE_PRODUCER_FAILED').length
    const client = await openStream(t, `${origin}${path}`)
    t.equal(client.statusCode, 200, path)
    const [first] = await client.events(1)
    t.equal(first.data, '1', `${path}: what was sent before the failure arrived`)
    await withTimeout(client.ended, 2000, `${path} ended`)
    t.same(await closes.next(), { path, reason: 'error' }, `${path}: closed with reason 'error'`)
    await sleep(20)
    t.equal(logged(logs, 'TYPED_SSE_PRODUCER_FAILED').length, before + 1, `${path}: logged exactly once`)
    t.equal(client.parser.events.length, 1, `${path}: nothing after the failure`)
    t.ok(await check(paths.indexOf(path)), `${path}: observers unaffected`)
  }
  const failures = logged(logs, 'TYPED_SSE_PRODUCER_FAILED')
  t.same(failures.map((line) => line.level), [LEVEL.error, LEVEL.error, LEVEL.error, LEVEL.error])
  t.equal(logs.filter((line) => line.level >= LEVEL.error).length, paths.length, 'no other error line (no double logging by Fastify)')

  const before = await fetch(`${origin}/before`, { headers: { accept: 'text/event-stream' } })
  t.equal(before.status, 404, 'an error before the stream opened is an ordinary error reply')
  t.equal((await before.json()).code, 'FEED_NOT_FOUND')
  t.equal(logged(logs, 'TYPED_SSE_PRODUCER_FAILED').length, paths.length, 'and not a producer failure')
  t.equal(app.sse.stats().openStreams, 3, 'only the observers are left')
})

t.test('a flood of 1000 invalid events: each throws TYPED_SSE_INVALID_PAYLOAD, nothing reaches the wire, the next valid event does', async (t) => {
  const { app, logs, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  const streams = streamRoute(app, '/s', events)
  const origin = await start()
  const raw = await rawConnect(t, Number(new URL(origin).port), '/s')
  const stream = await streams.next()
  const client = await openStream(t, `${origin}/s`)
  const other = await streams.next()
  await raw.until((bytes) => bytes.includes('\r\n\r\n'))
  const bytesBefore = raw.received().length
  const statsBefore = app.sse.stats()

  const codes = new Map<string, number>()
  const bad: unknown[] = [-1, 1.5, 'one', null, { name: 'far too long a name' }, { name: 7 }, {}, 'a\nb']
  const started = Date.now()
  for (let i = 0; i < 1000; i++) {
    const value = bad[i % bad.length]
    const event = (i % bad.length) >= 4 ? 'user' : 'n'
    const err = thrown(() => stream.send(event as 'n', value as number))
    codes.set(String(err?.code), (codes.get(String(err?.code)) ?? 0) + 1)
  }
  const elapsed = Date.now() - started
  t.same([...codes], [['TYPED_SSE_INVALID_PAYLOAD', 1000]], 'every one refused with the code')
  t.ok(elapsed < 2000, `1000 refusals took ${elapsed} ms`)
  await sleep(50)
  t.equal(raw.received().length, bytesBefore, 'not one byte reached the wire')
  t.equal(app.sse.stats().bytesWritten, statsBefore.bytesWritten)
  t.equal(app.sse.stats().eventsSent, statsBefore.eventsSent)
  t.ok(stream.isOpen, 'the stream is still open')

  t.equal(stream.send('n', 42), true)
  await raw.until((bytes) => bytes.includes('event: n\ndata: 42\n\n'))
  other.send('user', { name: 'ok' })
  t.same(JSON.parse((await client.events(1))[0].data), { name: 'ok' }, 'another stream is unaffected')
  t.same(logs.filter((line) => line.level >= LEVEL.warn), [], 'errors thrown to the caller are not logged as well')
})

t.test('from() with an iterable whose iterator cannot even be made: logged, stream ended, the promise resolves', async (t) => {
  const { app, logs, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  const settled = new Inbox<string>()
  app.get('/broken', (_request, reply) => {
    const broken = { [Symbol.asyncIterator] (): AsyncIterator<Message> { throw new Error('no cursor') } }
    reply.sse(events).from(broken).then(() => settled.push('resolved'), () => settled.push('rejected'))
  })
  const origin = await start()
  const client = await openStream(t, `${origin}/broken`)
  await withTimeout(client.ended, 2000, 'ended')
  t.equal(await settled.next(), 'resolved', 'from() never rejects')
  t.equal(logged(logs, 'TYPED_SSE_PRODUCER_FAILED').length, 1, 'logged once with its code')
})
