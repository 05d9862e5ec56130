/**
 * Fault isolation between the subscribers of a channel: one subscriber's failure
 * (a throwing filter) ends that subscriber alone, and events the local catalog does
 * not declare (a rolling deploy) are skipped the same documented way live and in
 * replay, without ever making subscribe() reject or holding unbounded memory.
 */
import t from 'tap'
import { defineEvents, memoryEngine, Type, type ChannelListener, type SseEngine } from '../../lib/index.js'
import { buildApp, LEVEL, waitUntil } from '../helpers/app.js'
import { openStream } from '../helpers/client.js'
import type { PageLimit, ReplayPage } from '../../lib/engine/engine.js'

const news = defineEvents({
  post: Type.Object({ text: Type.String(), user: Type.Optional(Type.Object({ id: Type.String() })) })
})

/**
 * The in-memory engine with a slow history read: `readPage` answers only once `release()`
 * is called. With `readsAtOnce`, the read is taken when asked (a slow round trip: what is
 * published meanwhile is only held); without, when released (a slow start).
 */
function gatedEngine (readsAtOnce: boolean): { engine: SseEngine, release: () => void, listener: () => ChannelListener | undefined } {
  const inner = memoryEngine()
  let release: () => void = () => {}
  const gate = new Promise<void>((resolve) => { release = resolve })
  let last: ChannelListener | undefined
  const engine: SseEngine = {
    compareIds: (a, b) => inner.compareIds(a, b),
    close: async () => await inner.close(),
    channel (name, history, listener) {
      last = listener
      const channel = inner.channel(name, history, listener)
      const readPage = async (id: string | undefined, limit: PageLimit): Promise<ReplayPage> => {
        if (readsAtOnce) {
          const result = channel.readPage(id, limit)
          await gate
          return await result
        }
        await gate
        return await channel.readPage(id, limit)
      }
      return { ...channel, readPage }
    }
  }
  return { engine, release: () => release(), listener: () => last }
}

t.test('a throwing filter ends only its own stream; publish() delivers to every other subscriber and does not throw', async (t) => {
  const { app, start, logs } = await buildApp(t, { sse: { heartbeatMs: 200 } })
  const channel = app.sse.channel('news', news)
  app.get('/all', (_request, reply) => { void channel.subscribe(reply.sse(news)) })
  app.get('/u1', (_request, reply) => {
    // The README's own pattern, on a message without `user`: throws a TypeError.
    void channel.subscribe(reply.sse(news), { filter: (m) => (m.data.user as { id: string }).id === 'u1' })
  })
  const origin = await start()
  // Subscribers before and after the failing one in the channel's loop.
  const before = await openStream(t, `${origin}/all`)
  const failing = await openStream(t, `${origin}/u1`)
  const after = await openStream(t, `${origin}/all`)
  await waitUntil(() => channel.size === 3, 2000, 'three subscribers')

  await channel.publish('post', { text: 'no user' })
  await channel.publish('post', { text: 'second', user: { id: 'u2' } })
  for (const client of [before, after]) {
    t.same((await client.events(2)).map((event) => JSON.parse(event.data).text), ['no user', 'second'])
  }
  await failing.closed
  t.same(failing.parser.events, [], 'the failing subscriber got nothing')
  t.equal(channel.size, 2, 'only the failing one was detached')
  const failures = logs.filter((line) => line.err?.code === 'TYPED_SSE_SUBSCRIBER_FAILED')
  t.equal(failures.length, 1, 'logged once, with a code')
  t.equal(failures[0]?.level, LEVEL.error)
  t.equal(app.sse.stats().closed.error, 1, 'closed with reason error')
  // The sockets of the subscribers before the failing one are not left corked: heartbeats flow.
  await before.comments(1, 2000)
  await after.comments(1, 2000)
  t.pass('heartbeats reach both others')
})

t.test('an id another engine gives that would break the frame (a line break) skips that message, says so and writes nothing of it; the built-in engine\'s ids are written', async (t) => {
  // Frames of the library's own engines write their ids unchecked (they cannot hold a line
  // break): any other engine's ids are still checked, frame by frame.
  const forge = (channel: SseEngine['channel']): SseEngine['channel'] => (name, history, listener, features) => channel(name, history, {
    ...listener,
    deliver: (message) => listener.deliver(message.data.includes('forge') ? { ...message, id: `${message.id ?? ''}\nevent: forged\ndata: {}` } : message)
  }, features)
  const inner = memoryEngine()
  const forging: SseEngine = { compareIds: (a, b) => inner.compareIds(a, b), close: async () => await inner.close(), channel: forge(inner.channel) }
  // Instrumentation that patches the library's own engine object in place: no longer its ids.
  const patched = memoryEngine()
  patched.channel = forge(patched.channel.bind(patched))
  for (const [label, engine, isForging] of [['another engine', forging, true], ['a patched memory engine', patched, true], ['the memory engine', memoryEngine(), false]] as const) {
    const { app, start, logs } = await buildApp(t, { sse: { engine, heartbeatMs: false } })
    const channel = app.sse.channel('news', news, { history: true })
    app.get('/news', (_request, reply) => { void channel.subscribe(reply.sse(news)) })
    const client = await openStream(t, `${await start()}/news`)
    await waitUntil(() => channel.size === 1, 2000, 'subscribed')
    await channel.publish('post', { text: 'forge' })
    const last = await channel.publish('post', { text: 'after' })
    const events = await client.events(isForging ? 1 : 2)
    t.same(events.map((event) => [event.type, JSON.parse(event.data).text]), isForging ? [['post', 'after']] : [['post', 'forge'], ['post', 'after']], `${label}: what the client got`)
    t.equal(events.at(-1)?.lastEventId, last, `${label}: the id reached the client`)
    t.notOk(Buffer.concat(client.chunks).toString().includes('forged'), `${label}: no forged line was written`)
    const skipped = logs.filter((line) => line.err?.code === 'TYPED_SSE_INVALID_ID')
    t.equal(skipped.length, isForging ? 1 : 0, `${label}: the skipped message is logged with a code`)
  }
})

t.test('an event unknown to the local catalog (a rolling deploy) is skipped live and in replay; subscribe() never rejects', async (t) => {
  const engine = memoryEngine()
  const v1 = defineEvents({ score: Type.Object({ n: Type.Integer() }) })
  const v2 = defineEvents({ score: Type.Object({ n: Type.Integer() }), bonus: Type.Object({ points: Type.Integer() }) })
  const oldApp = await buildApp(t, { sse: { engine, heartbeatMs: false } })
  const newApp = await buildApp(t, { sse: { engine, heartbeatMs: false } })
  const oldChannel = oldApp.app.sse.channel('game', v1, { history: true })
  const newChannel = newApp.app.sse.channel('game', v2, { history: true })
  const outcomes: string[] = []
  oldApp.app.get('/game', (_request, reply) => {
    oldChannel.subscribe(reply.sse(v1)).then(() => outcomes.push('resolved'), () => outcomes.push('rejected'))
  })
  const origin = await oldApp.start()

  const first = await newChannel.publish('score', { n: 1 }) as string
  await newChannel.publish('bonus', { points: 5 })
  await newChannel.publish('score', { n: 2 })
  // A client that had the first event reconnects to the old instance.
  const client = await openStream(t, `${origin}/game`, { 'last-event-id': first })
  const [replayed] = await client.events(1)
  t.equal(replayed.data, '{"n":2}', 'replay skipped bonus and went on')
  await newChannel.publish('bonus', { points: 7 })
  await newChannel.publish('score', { n: 3 })
  const [live] = await client.events(2).then((events) => events.slice(1))
  t.equal(live.data, '{"n":3}', 'live delivery skips it the same way')
  t.same(outcomes, ['resolved'], 'subscribe() resolved')
  const logged = oldApp.logs.filter((line) => line.err?.code === 'TYPED_SSE_FOREIGN_EVENT')
  t.equal(logged.length, 1, 'said once for the channel and event, not once per message')
})

t.test('live events held during a slow replay obey maxQueueBytes: the close policy ends the stream, memory stays bounded', async (t) => {
  const { engine, release: releaseRead } = gatedEngine(false)

  const { app, start, logs } = await buildApp(t, { sse: { engine, heartbeatMs: false, maxQueueBytes: 64 * 1024 } })
  const channel = app.sse.channel('feed', news, { history: { maxEvents: 10 } })
  const outcomes: string[] = []
  app.get('/feed', (_request, reply) => {
    channel.subscribe(reply.sse(news)).then(() => outcomes.push('resolved'), () => outcomes.push('rejected'))
  })
  const origin = await start()
  const first = await channel.publish('post', { text: 'first' }) as string
  const client = await openStream(t, `${origin}/feed`, { 'last-event-id': first })
  await waitUntil(() => channel.size === 1, 2000, 'subscribed')
  // 1 MB of live events while the replay hangs: the hold passes 64 KiB.
  const text = 'x'.repeat(1000)
  for (let i = 0; i < 1000 && channel.size > 0; i++) await channel.publish('post', { text })
  t.equal(channel.size, 0, 'the subscriber was dropped once its hold passed maxQueueBytes')
  await client.closed
  t.equal(app.sse.stats().closed.policy, 1, 'closed by the queue policy')
  t.ok(logs.some((line) => line.err?.code === 'TYPED_SSE_QUEUE_FULL'), 'logged TYPED_SSE_QUEUE_FULL')
  releaseRead()
  await waitUntil(() => outcomes.length === 1, 2000, 'subscribe settled')
  t.same(outcomes, ['resolved'], 'subscribe() resolved, not rejected')
})

t.test('with drop-oldest, a replay hold that overflows drops the oldest held events and says so with sse:missed', async (t) => {
  const { engine, release: releaseRead } = gatedEngine(true)

  const { app, start } = await buildApp(t, { sse: { engine, heartbeatMs: false, maxQueueBytes: 16 * 1024, queuePolicy: 'drop-oldest' } })
  const channel = app.sse.channel('feed', news, { history: { maxEvents: 200 } })
  app.get('/feed', (_request, reply) => { void channel.subscribe(reply.sse(news)) })
  const origin = await start()
  const first = await channel.publish('post', { text: 'first' }) as string
  const client = await openStream(t, `${origin}/feed`, { 'last-event-id': first })
  await waitUntil(() => channel.size === 1, 2000, 'subscribed')
  const text = 'y'.repeat(1000)
  // 100 events of about 1 KB while the replay hangs: the 16 KiB hold keeps the newest ~15.
  for (let i = 0; i < 100; i++) await channel.publish('post', { text: `${i}:${text}` })
  releaseRead()
  await waitUntil(() => client.parser.events.some((event) => event.type === 'sse:missed'), 2000, 'sse:missed')
  const posts = client.parser.events.filter((event) => event.type === 'post').map((event) => Number((JSON.parse(event.data) as { text: string }).text.split(':')[0]))
  t.comment(`posts ${posts.join(',')}`)
  const missed = client.parser.events.filter((event) => event.type === 'sse:missed')
  t.equal(missed.length, 1, 'one sse:missed, after the replay')
  const dropped = (JSON.parse(missed[0].data) as { dropped: number }).dropped
  t.equal(posts.length + dropped, 100, `every event arrived or is counted as missed (${posts.length} + ${dropped})`)
  t.same(posts, [...posts].sort((a, b) => a - b), 'in order')
  t.equal(new Set(posts).size, posts.length, 'no duplicate')
  t.equal(posts.at(-1), 99, 'the newest event was kept')
})

t.test('regression: a replay larger than maxQueueBytes is written at the client\'s pace, not cut off by the policy', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, maxQueueBytes: 64 * 1024 } })
  const channel = app.sse.channel('big', news, { history: { maxEvents: 1000 } })
  app.get('/big', (_request, reply) => { void channel.subscribe(reply.sse(news)) })
  const origin = await start()
  const first = await channel.publish('post', { text: 'first' }) as string
  const text = 'r'.repeat(1500)
  for (let i = 0; i < 999; i++) await channel.publish('post', { text: `${i}:${text}` })
  // About 1.5 MB to replay through a 64 KiB queue, with live events arriving meanwhile.
  const client = await openStream(t, `${origin}/big`, { 'last-event-id': first })
  for (let i = 999; i < 1010; i++) await channel.publish('post', { text: `${i}:${text}` })
  const events = await client.events(1010, 20_000)
  const seqs = events.map((event) => Number((JSON.parse(event.data) as { text: string }).text.split(':')[0]))
  t.same(seqs, Array.from({ length: 1010 }, (_, i) => i), 'every event once, in order: the replay, then the live ones')
  t.equal(app.sse.stats().closed.policy, 0, 'nobody closed by the policy')
})

t.test('regression: a gap reported while a subscriber replays reaches it (sse:resync gap) once it is live', async (t) => {
  const { engine, release: releaseRead, listener: lastListener } = gatedEngine(true)

  const resyncs: string[] = []
  const { app, start } = await buildApp(t, { sse: { engine, heartbeatMs: false } })
  const channel = app.sse.channel('g', news, { history: true, onResync: (_stream, info) => resyncs.push(info.reason) })
  app.get('/g', (_request, reply) => { void channel.subscribe(reply.sse(news)) })
  const origin = await start()
  const first = await channel.publish('post', { text: 'first' }) as string
  const client = await openStream(t, `${origin}/g`, { 'last-event-id': first })
  await waitUntil(() => channel.size === 1, 2000, 'subscribed')
  lastListener()?.gap()
  releaseRead()
  await channel.publish('post', { text: 'after' })
  const events = await client.events(2)
  t.same(events.map((event) => event.type), ['sse:resync', 'post'], 'told of the gap, then live')
  t.equal((JSON.parse(events[0].data) as { reason: string }).reason, 'gap')
  t.same(resyncs, ['gap'], 'onResync ran for it')
})

t.test('regression: the snapshot onResync sends comes after the live events held during the replay', async (t) => {
  const { engine, release: releaseRead } = gatedEngine(false)

  const board = defineEvents({ post: news.schemas.post, snapshot: Type.Array(Type.String()) })
  const { app, start } = await buildApp(t, { sse: { engine, heartbeatMs: false } })
  const channel = app.sse.channel('s', board, { history: true, onResync: (stream) => { stream.send('snapshot', ['everything so far']) } })
  app.get('/s', (_request, reply) => { void channel.subscribe(reply.sse(board)) })
  const origin = await start()
  const client = await openStream(t, `${origin}/s`, { 'last-event-id': 'not-an-id-of-this-history' })
  await waitUntil(() => channel.size === 1, 2000, 'subscribed')
  await channel.publish('post', { text: 'held while the read ran' })
  releaseRead()
  const events = await client.events(3)
  t.same(events.map((event) => event.type), ['sse:resync', 'post', 'snapshot'], 'resync, the held event, then the snapshot')
})
