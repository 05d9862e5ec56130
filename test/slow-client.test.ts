/**
 * Slow clients on a channel: one that stops reading never delays or bloats the
 * others; the 'close' policy disconnects it, 'drop-oldest' skips events and says so;
 * maxDurationMs rotates connections without losing events.
 */
import { EventSource } from 'eventsource'
import t from 'tap'
import { defineEvents, MISSED_EVENT, Text, Type, type SseStream } from '../lib/index.js'
import { buildApp, Inbox, sleep, waitUntil } from './helpers/app.js'
import { openStream, type StreamClient } from './helpers/client.js'

const feed = defineEvents({ score: Type.Object({ seq: Type.Integer() }), padding: Text() })
type Feed = typeof feed
const PADDING = 'x'.repeat(64 * 1024)

/**
 * Sends padding to a stream whose client does not read until the stream stays
 * backed up: the kernel's socket buffers grow as they fill, so one refused write
 * is not enough.
 */
async function backUp (stream: SseStream<Feed>): Promise<void> {
  // A write larger than the socket's high-water mark is refused at once even though
  // the kernel takes it: only a drain that does not come means the client is stuck.
  for (let i = 0; i < 2000; i++) {
    if (stream.send('padding', PADDING)) continue
    const isStuck = await Promise.race([stream.drained().then(() => false), sleep(30).then(() => true)])
    if (isStuck) return
  }
  throw new Error('the socket never filled up')
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
  const closedWith = new Promise((resolve) => slowStream.onClose(resolve))
  await backUp(slowStream)

  const fast = await Promise.all(Array.from({ length: 100 }, async () => await openStream(t, `${origin}/feed`)))
  await waitUntil(() => channel.size === 101, 5000, 'all subscribed')

  let maxQueued = 0
  for (let seq = 0; seq < 200; seq++) {
    await channel.publish('score', { seq })
    maxQueued = Math.max(maxQueued, app.sse.stats().queuedBytes)
    if (seq % 10 === 9) await new Promise((resolve) => setImmediate(resolve))
  }
  t.equal(await closedWith, 'policy', 'the stalled client was closed by the queue policy')
  t.ok(maxQueued <= maxQueueBytes, `queued bytes stayed bounded (max ${maxQueued} <= ${maxQueueBytes})`)

  await Promise.all(fast.map(async (client) => await client.events(200, 10_000)))
  const complete = fast.filter((client) =>
    client.parser.events.length === 200 && client.parser.events.every((event, i) => JSON.parse(event.data).seq === i))
  t.equal(complete.length, 100, 'every fast client got all 200 events, in order')

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

  for (let seq = 0; seq < 500; seq++) await channel.publish('score', { seq })
  t.ok(stream.queuedBytes <= maxQueueBytes, `queue bounded: ${stream.queuedBytes} bytes`)
  t.ok(stream.isOpen, 'the stream stays open under drop-oldest')

  client.resume()
  await waitUntil(() => client.parser.events.some((event) => event.type === MISSED_EVENT), 10_000, 'sse:missed')
  await channel.publish('score', { seq: 500 })
  await waitUntil(() => client.parser.events.some((event) => event.type === 'score' && JSON.parse(event.data).seq === 500), 5000, 'live again')

  const events = client.parser.events.filter((event) => event.type !== 'padding')
  const missed = events.find((event) => event.type === MISSED_EVENT)
  const dropped = (JSON.parse(missed?.data ?? '{}') as { dropped: number }).dropped
  const seqs = events.filter((event) => event.type === 'score').map((event) => JSON.parse(event.data).seq as number)
  t.ok(dropped > 0, `dropped ${dropped} frames`)
  t.same(seqs, [...seqs].sort((a, b) => a - b), 'what arrives keeps its order')
  t.equal(seqs.at(-1), 500, 'the newest events survive')
  t.equal(new Set(seqs).size, seqs.length, 'no duplicate')
  t.equal(dropped, app.sse.stats().droppedEvents, 'sse:missed reports what was dropped')
  t.equal(dropped + seqs.length, 501, 'every score event either arrived or was counted as dropped')
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
