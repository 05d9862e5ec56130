/**
 * A client that never reads, on a bare TCP socket: the stream's queue stays within
 * maxQueueBytes, then the queue policy applies ('close' ends the stream; 'drop-oldest'
 * drops events and tells the client with an `sse:missed` event once it reads again).
 */
import t from 'tap'
import { defineEvents, Text, type SseStream } from '../../lib/index.js'
import { buildApp, LEVEL, sleep, streamRoute, waitUntil, withTimeout } from '../helpers/app.js'
import { dechunk, rawConnect, splitHead } from '../helpers/client.js'
import { parseAll, type ParsedEvent } from '../helpers/parser.js'

const events = defineEvents({ token: Text() })
type Events = typeof events

const MAX_QUEUE_BYTES = 64 * 1024
const DATA = 'y'.repeat(4 * 1024)

/** The events in raw HTTP/1.1 response bytes (head skipped, chunk framing removed). */
function eventsOf (bytes: Buffer): ParsedEvent[] {
  const parts = splitHead(bytes)
  if (parts === undefined) return []
  return parseAll(dechunk(parts.body).payload).events
}

/**
 * Sends numbered events until the socket stays full (a `false` from send only says
 * Node's buffer passed its high-water mark; wait to see whether it drains).
 * Returns the next id; bounded in count.
 */
async function fillSocket (stream: SseStream<Events>, check: () => void): Promise<number> {
  let id = 0
  while (id < 20_000) {
    const isWritten = stream.send('token', DATA, { id: id++ })
    check()
    if (isWritten) continue
    const isStuck = await Promise.race([stream.drained().then(() => false), sleep(100).then(() => true)])
    if (isStuck) return id
  }
  throw new Error(`the socket never stayed full after ${id} events of 4 KiB`)
}

t.test("policy 'close': the queue never passes maxQueueBytes, then the stream is closed", async (t) => {
  const { app, start, logs } = await buildApp(t, { sse: { heartbeatMs: false, maxQueueBytes: MAX_QUEUE_BYTES } })
  const streams = streamRoute(app, '/s', events)
  const origin = await start()
  const client = await rawConnect(t, Number(new URL(origin).port), '/s', { read: false })
  const stream = await streams.next()
  let maxQueued = 0
  let maxHeld = 0
  const socket = stream.request.raw.socket
  const check = (): void => {
    maxQueued = Math.max(maxQueued, stream.queuedBytes)
    if (!socket.destroyed) maxHeld = Math.max(maxHeld, stream.queuedBytes + socket.writableLength)
  }
  let id = await fillSocket(stream, check)
  const reachedSocket = id
  t.equal(stream.isOpen, true, 'still open while the queue has room')
  let reportedWritten = 0
  for (let extra = 0; extra < 1000 && stream.isOpen; extra++) {
    if (stream.send('token', DATA, { id: id++ })) reportedWritten++
    check()
  }
  t.equal(reportedWritten, 0, 'every send while backed up returned false')
  t.equal(stream.isOpen, false, 'closed once the queue would pass maxQueueBytes')
  t.equal(stream.closeReason, 'policy')
  t.ok(maxQueued <= MAX_QUEUE_BYTES, `queue peaked at ${maxQueued} bytes (max ${MAX_QUEUE_BYTES})`)
  t.ok(maxHeld <= MAX_QUEUE_BYTES + 64 * 1024, `queue + socket buffer peaked at ${maxHeld} bytes`)
  t.equal(stream.queuedBytes, 0, 'queue freed')
  t.equal(app.sse.stats().closedByPolicy, 1)
  t.equal(app.sse.stats().queuedBytes, 0)
  t.equal(app.sse.stats().openStreams, 0)
  const warning = logs.find((line) => line.err?.code === 'TYPED_SSE_QUEUE_FULL')
  t.equal(warning?.level, LEVEL.warn, 'logged as a warning with TYPED_SSE_QUEUE_FULL')
  t.equal(stream.send('token', DATA), false, 'a send after the close is a no-op')

  // The client reads what the kernel held, then sees the connection end.
  client.socket.resume()
  await withTimeout(client.closed, 3000, 'client sees the close')
  const received = eventsOf(client.received())
  t.ok(received.length > 0 && received.length <= reachedSocket, `${received.length} events reached the client`)
  t.same(received.map((event) => Number(event.lastEventId)), [...received.keys()],
    'a gapless prefix: the client reconnects from its last id and loses nothing')
})

t.test("policy 'close': frames that fill maxQueueBytes exactly are queued; one byte more closes the stream", async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, maxQueueBytes: MAX_QUEUE_BYTES } })
  const streams = streamRoute(app, '/s', events)
  const origin = await start()
  await rawConnect(t, Number(new URL(origin).port), '/s', { read: false })
  const stream = await streams.next()
  await fillSocket(stream, () => {})
  t.equal(stream.queuedBytes, 0, 'backed up, nothing queued yet')
  stream.send('token', DATA)
  const frameBytes = stream.queuedBytes
  const overhead = frameBytes - DATA.length
  // Whole frames, then one sized to end exactly at the limit.
  while (stream.queuedBytes + 2 * frameBytes <= MAX_QUEUE_BYTES) stream.send('token', DATA)
  stream.send('token', 'z'.repeat(MAX_QUEUE_BYTES - stream.queuedBytes - overhead))
  t.equal(stream.queuedBytes, MAX_QUEUE_BYTES, 'the queue holds exactly maxQueueBytes')
  t.equal(stream.isOpen, true, 'a queue exactly at its limit is within it')
  stream.send('token', '')
  t.equal(stream.isOpen, false, 'the next frame would pass it: closed')
  t.equal(stream.closeReason, 'policy')
})

t.test("policy 'drop-oldest': the oldest queued events go, and sse:missed says how many", async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, maxQueueBytes: MAX_QUEUE_BYTES, queuePolicy: 'drop-oldest' } })
  const streams = streamRoute(app, '/s', events)
  const origin = await start()
  const client = await rawConnect(t, Number(new URL(origin).port), '/s', { read: false })
  const stream = await streams.next()
  let maxQueued = 0
  const check = (): void => { maxQueued = Math.max(maxQueued, stream.queuedBytes) }
  let id = await fillSocket(stream, check)
  // 100 more events of 4 KiB: far more than 64 KiB, so most of them are dropped.
  let reportedWritten = 0
  for (let extra = 0; extra < 100; extra++) {
    if (stream.send('token', DATA, { id: id++ })) reportedWritten++
    check()
  }
  t.equal(reportedWritten, 0, 'every send while backed up returned false')
  const last = id - 1
  t.equal(stream.isOpen, true, 'the stream stays open')
  t.ok(maxQueued <= MAX_QUEUE_BYTES, `queue peaked at ${maxQueued} bytes (max ${MAX_QUEUE_BYTES})`)
  const dropped = app.sse.stats().droppedEvents
  t.ok(dropped > 0, `${dropped} events dropped`)

  client.socket.resume()
  // The cheap byte search first: parsing megabytes on every chunk would be slow.
  const lastIdLine = `id: ${last}\n`
  await client.until((bytes) => bytes.includes(lastIdLine) && eventsOf(bytes).at(-1)?.lastEventId === String(last), 5000)
  const received = eventsOf(client.received())
  const missedAt = received.findIndex((event) => event.type === 'sse:missed')
  t.ok(missedAt > 0, 'an sse:missed event arrived')
  t.equal(received.filter((event) => event.type === 'sse:missed').length, 1, 'exactly one')
  t.same(JSON.parse(received[missedAt].data), { dropped })
  const before = received.slice(0, missedAt).map((event) => Number(event.lastEventId))
  const after = received.slice(missedAt + 1).map((event) => Number(event.lastEventId))
  t.same(before, [...before.keys()], 'what reached the socket first arrived gapless')
  const resumeAt = before.length + dropped
  t.same(after, after.map((_id, index) => resumeAt + index), 'then the newest events, right after the gap sse:missed reports')
  t.equal(after.at(-1), last)
  await waitUntil(() => stream.queuedBytes === 0, 1000, 'queue empty')
  stream.send('token', 'fresh', { id: 'fresh' })
  await client.until((bytes) => eventsOf(bytes).at(-1)?.lastEventId === 'fresh', 2000)
  t.pass('the stream carries on normally')
})

t.test('a backed-up client that accepts no byte for two heartbeat periods is closed as stalled', async (t) => {
  const heartbeatMs = 100
  const { app, start } = await buildApp(t, { sse: { heartbeatMs, maxQueueBytes: MAX_QUEUE_BYTES } })
  const streams = streamRoute(app, '/s', events)
  const origin = await start()
  const client = await rawConnect(t, Number(new URL(origin).port), '/s', { read: false })
  const stream = await streams.next()
  await fillSocket(stream, () => {})
  stream.send('token', 'queued')
  const stuckAt = Date.now()
  const reason = await withTimeout(new Promise((resolve) => stream.onClose(resolve)), 2000, 'stalled close')
  const elapsed = Date.now() - stuckAt
  t.equal(reason, 'stalled')
  t.ok(elapsed < 1000, `closed ${elapsed} ms after the socket stayed full`)
  t.equal(app.sse.stats().queuedBytes, 0, 'its queue was freed')
  client.socket.resume()
  await withTimeout(client.closed, 3000, 'client sees the close')
  t.pass('the client saw the connection end')
})

t.test('a backed-up client is given two heartbeat periods, not one, before it counts as stalled', async (t) => {
  // Periods of 1 s: closing after one period would come about 1000 ms after the last
  // socket write; the bound below sits between one and two periods, and a busy machine
  // only makes the close later.
  const heartbeatMs = 1000
  const { app, start } = await buildApp(t, { sse: { heartbeatMs, maxQueueBytes: MAX_QUEUE_BYTES } })
  const streams = streamRoute(app, '/s', events)
  const origin = await start()
  await rawConnect(t, Number(new URL(origin).port), '/s', { read: false })
  const stream = await streams.next()
  let lastWriteAt = Date.now()
  await fillSocket(stream, () => { if (stream.queuedBytes === 0) lastWriteAt = Date.now() })
  stream.send('token', 'queued')
  const reason = await withTimeout(new Promise((resolve) => stream.onClose(resolve)), 10_000, 'stalled close')
  const elapsed = Date.now() - lastWriteAt
  t.equal(reason, 'stalled')
  t.ok(elapsed >= 1.5 * heartbeatMs, `closed ${elapsed} ms after the last socket write (two periods: at least ${1.5 * heartbeatMs} ms)`)
})
