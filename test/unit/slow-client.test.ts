/**
 * Slow clients on a channel: one that stops reading never delays or bloats the
 * others; the 'close' policy disconnects it, 'drop-oldest' skips events and says so;
 * maxDurationMs rotates connections without losing events.
 */
import { EventSource } from 'eventsource'
import t from 'tap'
import { defineEvents, MISSED_EVENT, Text, Type, type Channel, type SseStream } from '../../lib/index.js'
import { buildApp, Inbox, sleep, waitUntil, withTimeout } from '../helpers/app.js'
import { openStream, type StreamClient } from '../helpers/client.js'

const feed = defineEvents({ score: Type.Object({ seq: Type.Integer() }), padding: Text() })
type Feed = typeof feed
const PADDING = 'x'.repeat(64 * 1024)

/** How long a refused write may wait for 'drain' before the socket counts as full. */
const QUIET_MS = 200

/** Bounds on filling one socket: far above any kernel's buffers for one connection. */
const FILL_DEADLINE_MS = 30_000
const FILL_MAX_BYTES = 256 * 1024 * 1024

/** Bounds on publishing while a test waits for the stalled stream to react. */
const MAX_PUBLISHED = 20_000
const PUBLISH_DEADLINE_MS = 30_000

/**
 * Sends padding to a stream whose client does not read until a refused write gets
 * no 'drain' for {@link QUIET_MS}. How much that takes is not fixed: it depends on
 * the socket's high-water mark (16 KiB on Node 20, 64 KiB from Node 22) and on the
 * kernel's buffers, which grow as they fill. The socket may still drain after that
 * pause (seen on Node 22: the kernel took the last 64 KiB tens of ms later), so tests
 * keep publishing until the stream reacts instead of trusting this fill to be final.
 */
async function backUp (stream: SseStream<Feed>): Promise<void> {
  const deadline = performance.now() + FILL_DEADLINE_MS
  let sentBytes = 0
  while (sentBytes < FILL_MAX_BYTES && performance.now() < deadline) {
    sentBytes += PADDING.length
    if (stream.send('padding', PADDING)) continue
    const isStuck = await Promise.race([stream.drained().then(() => false), sleep(QUIET_MS).then(() => true)])
    if (isStuck) return
  }
  throw new Error(`the socket never filled up: ${sentBytes} bytes sent in ${FILL_DEADLINE_MS} ms at most`)
}

/**
 * Publishes score events numbered from `first` until `isDone(next number)` holds,
 * yielding to I/O every ten so the readers keep up; fails after
 * {@link MAX_PUBLISHED} events or {@link PUBLISH_DEADLINE_MS}. Returns the next number.
 */
async function publishUntil (channel: Channel<Feed>, first: number, isDone: (seq: number) => boolean, what: string, onEach: () => void = () => {}): Promise<number> {
  const startedAt = performance.now()
  let seq = first
  while (!isDone(seq)) {
    const elapsedMs = performance.now() - startedAt
    if (seq - first >= MAX_PUBLISHED || elapsedMs > PUBLISH_DEADLINE_MS) {
      throw new Error(`${what}: not after ${seq - first} events in ${elapsedMs.toFixed(0)} ms`)
    }
    await channel.publish('score', { seq: seq++ })
    onEach()
    if (seq % 10 === 0) await new Promise((resolve) => setImmediate(resolve))
  }
  return seq
}

/** A client that reads the response head, then nothing more. */
async function paused (t: Parameters<typeof openStream>[0], url: string): Promise<StreamClient> {
  const client = await openStream(t, url)
  client.pause()
  return client
}

t.test('a client that never reads is closed by the policy while 100 fast clients get every event', async (t) => {
  const maxQueueBytes = 2048
  const { app, start, logs } = await buildApp(t, { sse: { heartbeatMs: false, maxQueueBytes } })
  const channel = app.sse.channel('feed', feed)
  const streams = new Inbox<SseStream<Feed>>()
  app.get('/feed', (_request, reply) => {
    const stream = reply.sse(feed)
    void channel.subscribe(stream)
    streams.push(stream)
  })
  const origin = await start()

  await paused(t, `${origin}/feed`)
  const slowStream = await streams.next()
  let closeReason: string | undefined
  const closedWith = new Promise((resolve) => slowStream.onClose((reason) => {
    closeReason = reason
    resolve(reason)
  }))
  await backUp(slowStream)

  const fast = await Promise.all(Array.from({ length: 100 }, async () => await openStream(t, `${origin}/feed`)))
  await waitUntil(() => channel.size === 101, 5000, 'all subscribed')

  let maxQueued = 0
  const trackQueue = (): void => { maxQueued = Math.max(maxQueued, app.sse.stats().queuedBytes) }
  const closedAt = await publishUntil(channel, 0, () => closeReason !== undefined, 'the policy closing the stalled client', trackQueue)
  // The others go on after the close as before it.
  const total = await publishUntil(channel, closedAt, (seq) => seq === closedAt + 50, 'fifty more', trackQueue)
  t.equal(await withTimeout(closedWith, 5000, 'the close reason'), 'policy', `the stalled client was closed by the queue policy (after ${closedAt} events)`)
  t.ok(maxQueued <= maxQueueBytes, `queued bytes stayed bounded (max ${maxQueued} <= ${maxQueueBytes})`)

  await Promise.all(fast.map(async (client) => await client.events(total, 10_000)))
  const complete = fast.filter((client) =>
    client.parser.events.length === total && client.parser.events.every((event, i) => JSON.parse(event.data).seq === i))
  t.equal(complete.length, 100, `every fast client got all ${total} events, in order`)

  const stats = app.sse.stats()
  t.equal(stats.closedByPolicy, 1)
  t.equal(stats.queuedBytes, 0, 'nothing stays queued')
  t.equal(stats.channels.feed.subscribers, 100, 'the closed stream left the channel')
  t.ok(logs.some((line) => line.err?.code === 'TYPED_SSE_QUEUE_FULL'), 'the close was logged with its code')
})

t.test("'drop-oldest' skips the oldest queued events, then sends sse:missed with their number", async (t) => {
  const maxQueueBytes = 4096
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  const channel = app.sse.channel('feed', feed)
  const streams = new Inbox<SseStream<Feed>>()
  app.get('/feed', (_request, reply) => {
    const stream = reply.sse(feed, { queuePolicy: 'drop-oldest', maxQueueBytes })
    void channel.subscribe(stream)
    streams.push(stream)
  })
  const origin = await start()
  const client = await paused(t, `${origin}/feed`)
  const stream = await streams.next()
  await backUp(stream)

  let maxQueued = 0
  const trackQueue = (): void => { maxQueued = Math.max(maxQueued, stream.queuedBytes) }
  const firstDropAt = await publishUntil(channel, 0, () => app.sse.stats().droppedEvents > 0, 'a first dropped event', trackQueue)
  // Then enough more for the queue to turn over many times.
  const last = await publishUntil(channel, firstDropAt, (seq) => seq === firstDropAt + 400, 'four hundred more', trackQueue)
  t.ok(maxQueued <= maxQueueBytes, `queue bounded: at most ${maxQueued} bytes`)
  t.ok(stream.isOpen, 'the stream stays open under drop-oldest')

  client.resume()
  await waitUntil(() => client.parser.events.some((event) => event.type === MISSED_EVENT), 10_000, 'sse:missed')
  await channel.publish('score', { seq: last })
  await waitUntil(() => client.parser.events.some((event) => event.type === 'score' && JSON.parse(event.data).seq === last), 5000, 'live again')

  const events = client.parser.events.filter((event) => event.type !== 'padding')
  // One sse:missed per stall: the socket may drain once in between (see backUp).
  const dropped = events.filter((event) => event.type === MISSED_EVENT)
    .reduce((sum, event) => sum + (JSON.parse(event.data) as { dropped: number }).dropped, 0)
  const seqs = events.filter((event) => event.type === 'score').map((event) => JSON.parse(event.data).seq as number)
  t.ok(dropped > 0, `dropped ${dropped} frames`)
  t.same(seqs, [...seqs].sort((a, b) => a - b), 'what arrives keeps its order')
  t.equal(seqs.at(-1), last, 'the newest events survive')
  t.equal(new Set(seqs).size, seqs.length, 'no duplicate')
  t.equal(dropped, app.sse.stats().droppedEvents, 'sse:missed reports what was dropped')
  t.equal(dropped + seqs.length, last + 1, 'every score event either arrived or was counted as dropped')
})

t.test('maxDurationMs closes with a retry hint; the client reconnects and replays, losing nothing', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, maxDurationMs: 150, retryMs: 10 } })
  const channel = app.sse.channel('feed', feed, { history: true })
  const reasons: string[] = []
  app.get('/feed', async (_request, reply) => {
    const stream = reply.sse(feed)
    stream.onClose((reason) => reasons.push(reason))
    await channel.subscribe(stream)
  })
  const origin = await start()
  const source = new EventSource(`${origin}/feed`)
  t.teardown(() => source.close())
  const seen: number[] = []
  source.addEventListener('score', (event) => { seen.push(JSON.parse(event.data).seq) })
  await waitUntil(() => channel.size === 1, 3000, 'subscribed')
  for (let seq = 0; seq < 40; seq++) {
    await channel.publish('score', { seq })
    await sleep(10)
  }
  await waitUntil(() => seen.length >= 40, 5000, 'all forty')
  t.same(seen, Array.from({ length: 40 }, (_, i) => i), 'every event once, in order, across rotations')
  t.ok(reasons.filter((reason) => reason === 'duration').length >= 1, `rotated ${reasons.length} times`)
  t.ok(app.sse.stats().replaysServed >= 1, 'rotations were replayed')
})
