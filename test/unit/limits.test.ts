/**
 * Limits that must hold at their edge: huge events refused before they are built,
 * Last-Event-ID bounds wherever an id comes from, ids never altered, heartbeats
 * never early, drops always counted, the newest id always replayable.
 */
import t from 'tap'
import { defineEvents, memoryEngine, Text, Type } from '../../lib/index.js'
import { buildApp, Inbox, sleep, streamRoute, thrown, waitUntil } from '../helpers/app.js'
import { openStream, rawConnect } from '../helpers/client.js'
import { readAll } from '../helpers/engine.js'

const events = defineEvents({ token: Text(), n: Type.Integer() })

t.test('maxEventBytes refuses a 50 MB Text() event before building its frame', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, maxEventBytes: 64 * 1024 } })
  const streams = streamRoute(app, '/s', events)
  const channel = app.sse.channel('big', events)
  const origin = await start()
  const client = await openStream(t, `${origin}/s`)
  const stream = await streams.next()
  // Many line breaks: building its frame would mean millions of `data:` lines.
  const huge = 'a\n'.repeat(25 * 1024 * 1024)
  const before = process.memoryUsage().arrayBuffers
  t.equal(thrown(() => stream.send('token', huge))?.code, 'TYPED_SSE_EVENT_TOO_LARGE')
  t.equal(thrown(() => channel.publish('token', huge))?.code, 'TYPED_SSE_EVENT_TOO_LARGE', 'channels too')
  const grown = process.memoryUsage().arrayBuffers - before
  t.ok(grown < 10 * 1024 * 1024, `no frame was built (${Math.round(grown / 1024)} KiB of buffers more)`)
  stream.send('n', 1)
  t.same((await client.events(1)).map((event) => event.type), ['n'], 'nothing of it was written; the stream goes on')
})

t.test('subscribe({ lastEventId }) obeys maxLastEventIdBytes like the header does', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, maxLastEventIdBytes: 32 } })
  const channel = app.sse.channel('c', events, { history: true })
  app.get('/s', (request, reply) => {
    const query = request.query as { last?: string }
    const stream = reply.sse(events)
    void channel.subscribe(stream, { lastEventId: query.last ?? null })
  })
  const origin = await start()
  await channel.publish('n', 1)
  const client = await openStream(t, `${origin}/s?last=${'x'.repeat(33)}`)
  await waitUntil(() => channel.size === 1, 2000, 'subscribed')
  await channel.publish('n', 2)
  const [event] = await client.events(1)
  t.equal(event.type, 'n', 'no resync: the over-long id was ignored, as the header would be')
  t.equal(app.sse.stats().replayMisses + app.sse.stats().replaysServed, 0, 'no replay lookup ran')
})

t.test('ids are never silently altered: a lone surrogate or an odd type is a coded error', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  const streams = streamRoute(app, '/s', events)
  const origin = await start()
  await openStream(t, `${origin}/s`)
  const stream = await streams.next()
  for (const id of ['a\ud800', '\udfff', Object.create(null), [], Symbol('s')] as unknown[]) {
    t.equal(thrown(() => stream.send('n', 1, { id: id as string }))?.code, 'TYPED_SSE_INVALID_ID', typeof id)
  }
  t.equal(thrown(() => stream.send('n', 1, { retry: Object.create(null) }))?.code, 'TYPED_SSE_INVALID_RETRY')
  t.equal(thrown(() => stream.comment(Object.create(null)))?.code, 'TYPED_SSE_INVALID_COMMENT')
  t.equal(thrown(() => stream.comment({} as string))?.code, 'TYPED_SSE_INVALID_COMMENT')
  t.equal(stream.comment(42), true, 'a number is written in decimal')
})

t.test('defineEvents refuses the names EventSource dispatches itself', async (t) => {
  for (const name of ['error', 'open']) {
    t.equal(thrown(() => defineEvents({ [name]: Type.String() }))?.code, 'TYPED_SSE_INVALID_EVENT_NAME', name)
  }
  t.same(defineEvents({ message: Type.String(), errors: Type.String() }).names, ['message', 'errors'], 'others are fine')
})

t.test('a heartbeat never goes out before heartbeatMs of silence (measured where it is written)', async (t) => {
  const heartbeatMs = 120
  const { app, start } = await buildApp(t, { sse: { heartbeatMs } })
  const writes = new Inbox<{ at: number, isHeartbeat: boolean }>()
  app.get('/s', (_request, reply) => {
    const raw = reply.raw
    const write = raw.write.bind(raw) as (chunk: Buffer) => boolean
    raw.write = ((chunk: Buffer) => {
      writes.push({ at: Date.now(), isHeartbeat: chunk.toString() === ':\n\n' })
      return write(chunk)
    }) as typeof raw.write
    const stream = reply.sse(events)
    stream.send('n', 0)
  })
  const origin = await start()
  const client = await openStream(t, `${origin}/s`)
  let last = (await writes.next()).at
  let heartbeats = 0
  while (heartbeats < 5) {
    const write = await writes.next(3000)
    if (write.isHeartbeat) {
      heartbeats++
      t.ok(write.at - last >= heartbeatMs, `heartbeat ${heartbeats} after ${write.at - last} ms of silence (>= ${heartbeatMs})`)
    }
    last = write.at
  }
  await client.comments(5)
})

t.test('drop-oldest counts an event larger than maxQueueBytes in sse:missed', async (t) => {
  const maxQueueBytes = 16 * 1024
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, maxQueueBytes, queuePolicy: 'drop-oldest' } })
  const streams = streamRoute(app, '/s', events)
  const origin = await start()
  const client = await rawConnect(t, Number(new URL(origin).port), '/s', { read: false })
  const stream = await streams.next()
  // Fill the socket until it is really stuck.
  for (let i = 0; i < 20_000; i++) {
    if (stream.send('token', 'f'.repeat(4096))) continue
    if (await Promise.race([stream.drained().then(() => false), sleep(100).then(() => true)])) break
  }
  const before = app.sse.stats().droppedEvents
  stream.send('token', 'z'.repeat(maxQueueBytes + 1))
  t.equal(app.sse.stats().droppedEvents, before + 1, 'the oversized event was dropped and counted')
  client.socket.resume()
  const bytes = await client.until((received) => received.includes('event: sse:missed'), 5000)
  const text = bytes.toString('latin1')
  const dropped = Number(/sse:missed\r?\n(?:[0-9a-f]+\r\n)?data: \{"dropped":(\d+)\}/.exec(text)?.[1] ?? /"dropped":(\d+)/.exec(text)?.[1])
  t.equal(dropped, app.sse.stats().droppedEvents, 'sse:missed reports it')
})

t.test('the memory engine replays after its newest id (nothing yet), never calls it unknown', async (t) => {
  const engine = memoryEngine()
  const channel = engine.channel('c', { maxEvents: 5, maxAgeMs: false }, { deliver () {}, gap () {} })
  const first = await channel.publish({ event: 'n', data: '1' }) as string
  t.same(await readAll(channel, first), { status: 'ok', messages: [] }, 'the newest id: ok, nothing after it')
  const second = await channel.publish({ event: 'n', data: '2' }) as string
  const after = await readAll(channel, first)
  t.same(after.status === 'ok' ? after.messages.map((m) => m.id) : after.status, [second])
  channel.close()
})
