/**
 * Stream lifecycle over real sockets: disconnect seen at once, heartbeat, close and
 * sends after it, drained(), from() with backpressure and return() on client leave,
 * producer errors. Routes declared `{ sse: catalog }` are in route.test.ts.
 */
import http, { type ServerResponse } from 'node:http'
import t from 'tap'
import { defineEvents, Text, Type, type CloseReason, type SseMessage, type SseStream } from '../../lib/index.js'
import { buildApp, Inbox, LEVEL, sleep, streamRoute, waitUntil, withTimeout, type Teardown } from '../helpers/app.js'
import { openStream, type StreamClient } from '../helpers/client.js'

const events = defineEvents({ token: Text(), n: Type.Integer() })
type Events = typeof events
type Message = SseMessage<Events>

/** Big enough that a paused client backs the socket up after a few MB at most. */
const BIG = 'x'.repeat(64 * 1024)

/**
 * Sends BIG tokens until the socket stays full: `send` returning false only says Node's
 * buffer passed its high-water mark, so wait 100 ms each time to see whether it drains.
 * Resolves to the number of events sent; bounded in count and time.
 */
async function fillSocket (stream: SseStream<Events>): Promise<number> {
  let sent = 0
  for (let round = 0; round < 1000; round++) {
    for (let i = 0; i < 500; i++) {
      sent++
      if (!stream.send('token', BIG)) break
    }
    const isStuck = await Promise.race([stream.drained().then(() => false), sleep(100).then(() => true)])
    if (isStuck) return sent
  }
  throw new Error(`the socket never stayed full after ${sent} x 64 KiB`)
}

async function openOne (t: Teardown, heartbeatMs: number | false = false): Promise<{
  stream: SseStream<Events>, client: StreamClient, raw: ServerResponse, closeListenersBefore: number, openedAt: number, stats: () => { openStreams: number }
}> {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs } })
  const opened = new Inbox<{ stream: SseStream<Events>, raw: ServerResponse, closeListenersBefore: number, openedAt: number }>()
  app.get('/s', (_request, reply) => {
    const closeListenersBefore = reply.raw.listenerCount('close')
    opened.push({ stream: reply.sse(events), raw: reply.raw, closeListenersBefore, openedAt: Date.now() })
  })
  const origin = await start()
  const client = await openStream(t, `${origin}/s`)
  return { ...(await opened.next()), client, stats: () => app.sse.stats() }
}

t.test('a client leaving is seen at once: signal aborts, onClose runs, the stream lets go', async (t) => {
  const { stream, client, raw, closeListenersBefore, stats } = await openOne(t)
  t.equal(stats().openStreams, 1)
  const aborted = new Promise<number>((resolve) => stream.signal.addEventListener('abort', () => resolve(Date.now())))
  const reason = new Promise<CloseReason>((resolve) => stream.onClose(resolve))
  const left = Date.now()
  client.destroy()
  t.equal(await withTimeout(reason, 1000, 'onClose'), 'client')
  const elapsed = (await withTimeout(aborted, 1000, 'abort')) - left
  t.ok(elapsed < 500, `signal aborted ${elapsed} ms after the client left`)
  t.equal(stream.signal.aborted, true)
  t.equal(stream.isOpen, false)
  t.equal(stream.closeReason, 'client')
  t.equal(stats().openStreams, 0, 'removed from the hub')
  t.equal(raw.listenerCount('drain'), 0, 'no drain listener left')
  t.equal(raw.listenerCount('close'), closeListenersBefore, 'no close listener of ours left')
})

t.test('a backed-up stream frees its queue and drain listener when the client leaves', async (t) => {
  const { stream, client, raw } = await openOne(t)
  client.pause()
  await fillSocket(stream)
  stream.send('token', 'queued')
  t.ok(stream.queuedBytes > 0, 'events are queued')
  t.equal(raw.listenerCount('drain'), 1, 'one drain listener, however many sends')
  const waiting = stream.drained()
  client.destroy()
  t.equal(await withTimeout(waiting, 1000, 'drained'), false, 'a pending drained() settles with false')
  t.equal(stream.queuedBytes, 0, 'queue freed')
  t.equal(raw.listenerCount('drain'), 0, 'drain listener removed')
})

t.test('the deadline timer of maxDurationMs is cleared when the client leaves', async (t) => {
  // Record the timers the stream creates and the ones cleared, through the globals it uses.
  const created: NodeJS.Timeout[] = []
  const cleared = new Set<unknown>()
  const { setTimeout: realSet, clearTimeout: realClear } = globalThis
  t.teardown(() => { Object.assign(globalThis, { setTimeout: realSet, clearTimeout: realClear }) })
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  const opened = new Inbox<SseStream<Events>>()
  app.get('/s', (_request, reply) => {
    globalThis.setTimeout = ((...args: Parameters<typeof realSet>) => {
      const timer = realSet(...args)
      created.push(timer)
      return timer
    }) as typeof realSet
    try {
      opened.push(reply.sse(events, { maxDurationMs: 60_000 }))
    } finally {
      globalThis.setTimeout = realSet
    }
  })
  globalThis.clearTimeout = ((timer: Parameters<typeof realClear>[0]) => {
    cleared.add(timer)
    realClear(timer)
  }) as typeof realClear
  const origin = await start()
  const client = await openStream(t, `${origin}/s`)
  const stream = await opened.next()
  t.equal(created.length, 1, 'one deadline timer')
  t.equal(created[0].hasRef(), false, 'unref\'d: it never keeps the process alive')
  const reason = new Promise<CloseReason>((resolve) => stream.onClose(resolve))
  client.destroy()
  await withTimeout(reason, 1000, 'onClose')
  t.ok(cleared.has(created[0]), 'the deadline timer was cleared')
})

t.test('heartbeat: a comment after heartbeatMs of silence, reset by every write', async (t) => {
  const heartbeatMs = 200
  const { stream, client, openedAt } = await openOne(t, heartbeatMs)
  const [first] = await client.comments(1, 2000)
  // From the server's last write (the open) to the client reading the heartbeat.
  const silence = Date.now() - openedAt
  t.equal(first, '', 'an empty comment line')
  t.ok(silence >= heartbeatMs, `first heartbeat after ${silence} ms of silence (not before heartbeatMs)`)
  t.same(client.parser.events, [], 'no event dispatched')
  // Writes every 40 ms for 600 ms: never 200 ms of silence, so no heartbeat.
  const before = client.parser.comments.length
  for (let i = 0; i < 15; i++) {
    stream.send('n', i)
    await sleep(40)
  }
  await client.events(15)
  t.equal(client.parser.comments.length, before, 'no heartbeat while events flow')
  await client.comments(before + 1, 2000)
  t.pass('heartbeats resume once the stream is silent')
})

t.test('heartbeat: the first one comes about one heartbeatMs after the last write, not several', async (t) => {
  // Periods of 1.5 s: one period late (3 s) or more would miss this bound of 2.5 periods,
  // which leaves a busy machine 2 s of timer delay.
  const heartbeatMs = 1500
  const { client } = await openOne(t, heartbeatMs)
  const [first] = await client.comments(1, 2.5 * heartbeatMs)
  t.equal(first, '', 'a heartbeat within 2.5 periods of silence')
})

t.test('heartbeatMs: false sends none', async (t) => {
  const { stream, client } = await openOne(t, false)
  await sleep(300)
  stream.send('n', 1)
  await client.events(1)
  t.same(client.parser.comments, [], 'no comment in 300 ms')
})

t.test('close(): queued events are flushed, then the response ends cleanly; later calls are no-ops', async (t) => {
  const { stream, client } = await openOne(t)
  stream.send('n', 1)
  stream.send('n', 2, { id: 'last' })
  const reason = new Promise<CloseReason>((resolve) => stream.onClose(resolve))
  stream.close()
  t.equal(await reason, 'server')
  await withTimeout(client.ended, 1000, 'end')
  t.same(client.parser.events.map((event) => event.data), ['1', '2'])
  t.equal(client.parser.lastEventId, 'last')
  t.equal(stream.send('n', 3), false, 'send after close returns false')
  t.equal(stream.comment('x'), false, 'comment after close returns false')
  t.equal(stream.retry(10), false, 'retry after close returns false')
  t.equal(await stream.drained(), false, 'drained() after close resolves false')
  t.equal(stream.signal.aborted, true, 'a signal taken after close is already aborted')
  let late: CloseReason | undefined
  stream.onClose((why) => { late = why })
  t.equal(late, 'server', 'onClose after close runs at once with the reason')
  stream.close()
  t.equal(stream.closeReason, 'server', 'a second close changes nothing')
})

t.test('a throwing onClose callback is logged and does not stop the others', async (t) => {
  const { app, start, logs } = await buildApp(t, { sse: { heartbeatMs: false } })
  const streams = streamRoute(app, '/s', events)
  const origin = await start()
  await openStream(t, `${origin}/s`)
  const stream = await streams.next()
  let ran = false
  stream.onClose(() => { throw new Error('callback failed') })
  stream.onClose(() => { ran = true })
  const removed = stream.onClose(() => { t.fail('a removed callback ran') })
  removed()
  stream.close()
  t.equal(ran, true, 'the next callback ran')
  t.ok(logs.some((line) => line.level === LEVEL.error && line.err?.message === 'callback failed'), 'the error was logged')
})

t.test('drained(): true at once when not backed up, true once the client reads again', async (t) => {
  const { stream, client } = await openOne(t)
  t.equal(await stream.drained(), true, 'not backed up')
  client.pause()
  const sent = await fillSocket(stream)
  t.equal(stream.send('n', 7), false, 'send reports the backlog')
  let settled = false
  const waiting = stream.drained().then((value) => { settled = true; return value })
  await sleep(50)
  t.equal(settled, false, 'still waiting while the client does not read')
  client.resume()
  t.equal(await withTimeout(waiting, 3000, 'drained'), true)
  const received = await client.events(sent + 1, 5000)
  t.equal(received.at(-1)?.data, '7', 'everything arrived, in order')
  t.equal(stream.queuedBytes, 0)
})

t.test('from(): honours backpressure, then the iterator\'s return() runs the moment the client leaves', async (t) => {
  const { stream, client } = await openOne(t)
  let produced = 0
  let finished = false
  async function * produce (): AsyncGenerator<Message> {
    try {
      for (let i = 0; i < 100_000; i++) {
        produced++
        yield { event: 'token', data: BIG, id: i }
      }
    } finally {
      finished = true
    }
  }
  client.pause()
  const piping = stream.from(produce())
  // The producer stops being pulled once the socket is full: wait until the count holds still.
  let last = -1
  await waitUntil(() => {
    const holding = produced === last && produced > 0
    last = produced
    return holding
  }, 5000, 'producer paused', 100)
  t.ok(produced < 2000, `the producer was paused after ${produced} items`)
  t.ok(stream.queuedBytes <= BIG.length * 2, `queue held at most a frame or so (${stream.queuedBytes} bytes)`)
  client.resume()
  await client.events(produced + 10, 5000)
  t.ok(produced > last, 'pulling resumed once the client read')
  const received = client.parser.events.slice(0, 50).map((event) => Number(event.lastEventId))
  t.same(received, [...received.keys()], 'in order, none lost')
  const leftAt = Date.now()
  client.destroy()
  await withTimeout(piping, 1000, 'from() settles')
  await waitUntil(() => finished, 1000, 'finally block ran')
  t.ok(Date.now() - leftAt < 500, 'return() ran at once')
  t.equal(stream.closeReason, 'client')
})

t.test('from(): a plain iterator\'s return() is called when the client leaves', async (t) => {
  const { stream, client } = await openOne(t)
  let returned = 0
  let next = 0
  const iterator: AsyncIterableIterator<Message> = {
    [Symbol.asyncIterator] () { return this },
    async next () {
      if (next > 0) await sleep(20)
      return { done: false, value: { event: 'n', data: next++ } }
    },
    async return () {
      returned++
      return { done: true, value: undefined }
    }
  }
  const piping = stream.from(iterator)
  await client.events(3)
  client.destroy()
  await withTimeout(piping, 1000, 'from() settles')
  t.equal(returned, 1, 'return() called exactly once')
})

t.test('from(): ends the stream when the source ends, unless end: false', async (t) => {
  const { stream, client } = await openOne(t)
  await stream.from([{ event: 'n', data: 1 }, { event: 'n', data: 2, id: 'b', retry: 0 }], { end: false })
  t.equal(stream.isOpen, true, 'end: false keeps it open')
  await stream.from((async function * (): AsyncGenerator<Message> { yield { event: 'token', data: 'last' } })())
  t.equal(stream.closeReason, 'server')
  await withTimeout(client.ended, 1000, 'end')
  t.same(client.parser.events, [
    { type: 'n', data: '1', lastEventId: '' },
    { type: 'n', data: '2', lastEventId: 'b' },
    { type: 'token', data: 'last', lastEventId: 'b' },
    { type: 'sse:end', data: '{}', lastEventId: 'sse:end' }
  ], 'a finished source ends the stream for good: sse:end, whose id makes a reconnect get 204')
  t.same(client.parser.retries, [0])
})

t.test('a producer error is logged with TYPED_SSE_PRODUCER_FAILED and ends the stream', async (t) => {
  const { app, start, logs } = await buildApp(t, { sse: { heartbeatMs: false } })
  const streams = streamRoute(app, '/s', events)
  const origin = await start()
  for (const [label, source] of [
    ['a throwing generator', (async function * (): AsyncGenerator<Message> {
      yield { event: 'n', data: 1 }
      throw new Error('upstream gone')
    })()],
    ['an invalid message', [{ event: 'n', data: 1 }, { event: 'n', data: 'not a number' }] as unknown as Message[]]
  ] as Array<[string, Iterable<Message> | AsyncIterable<Message>]>) {
    const client = await openStream(t, `${origin}/s`)
    const stream = await streams.next()
    const errorsBefore = logs.filter((line) => line.err?.code === 'TYPED_SSE_PRODUCER_FAILED').length
    await withTimeout(stream.from(source), 1000, 'from() resolves, never rejects')
    t.equal(stream.closeReason, 'error', label)
    await withTimeout(client.ended, 1000, 'the client sees the end')
    t.same(client.parser.events.map((event) => event.data), ['1'], 'what came before the error arrived')
    const failures = logs.filter((line) => line.err?.code === 'TYPED_SSE_PRODUCER_FAILED')
    t.equal(failures.length, errorsBefore + 1, 'logged once')
    t.equal(failures.at(-1)?.level, LEVEL.error)
  }
})

t.test('an async handler that opens a stream and returns nothing keeps it open', async (t) => {
  const { app, start, logs } = await buildApp(t, { sse: { heartbeatMs: false } })
  const opened = new Inbox<SseStream<Events>>()
  app.get('/s', async (_request, reply) => {
    opened.push(reply.sse(events))
  })
  const origin = await start()
  const client = await openStream(t, `${origin}/s`)
  const stream = await opened.next()
  await sleep(50)
  t.equal(stream.isOpen, true)
  stream.send('n', 5)
  t.same((await client.events(1)).map((event) => event.data), ['5'])
  t.same(logs.filter((line) => line.level >= LEVEL.warn), [], 'no warning about the reply')
})

t.test('regression: a stream opened after its client left is closed at once, and fastify.close() does not hang', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  const clientGone = new Inbox<true>()
  const opened = new Inbox<{ stream: SseStream<Events>, reason: CloseReason | undefined }>()
  const arrived = new Inbox<true>()
  app.get('/slow-auth', async (request, reply) => {
    arrived.push(true)
    // The client leaves while the handler awaits (an auth lookup, say).
    await withTimeout(new Promise<void>((resolve) => request.raw.once('close', () => resolve())), 2000, 'client left')
    await clientGone.next()
    const stream = reply.sse(events)
    let reason: CloseReason | undefined
    stream.onClose((why) => { reason = why })
    opened.push({ stream, reason })
  })
  const origin = await start()
  const request = http.get(`${origin}/slow-auth`, { agent: false, headers: { accept: 'text/event-stream' } })
  request.on('error', () => {})
  // Leave once the request reached the handler (a fixed sleep races it on a busy machine).
  await arrived.next(10_000)
  request.destroy()
  clientGone.push(true)
  const { stream, reason } = await opened.next()
  t.equal(stream.isOpen, false, 'closed as soon as it was opened')
  t.equal(reason, 'client', 'onClose ran with reason client')
  t.equal(stream.signal.aborted, true)
  t.equal(stream.send('n', 1), false)
  t.equal(app.sse.stats().openStreams, 0, 'not left in the hub')
  await withTimeout(app.close(), 5000, 'fastify.close() resolves, with no stream left to wait for')
})

t.test('regression: a producer that stops on stream.signal when the client leaves is not logged as failed', async (t) => {
  const { app, start, logs } = await buildApp(t, { sse: { heartbeatMs: false } })
  const done = new Inbox<true>()
  app.get('/s', (_request, reply) => {
    const stream = reply.sse(events)
    async function * produce (): AsyncGenerator<Message> {
      for (let i = 0; i < 1000; i++) {
        yield { event: 'n', data: i }
        // Waits as a producer awaiting upstream with { signal } does: rejects on abort.
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(resolve, 20)
          stream.signal.addEventListener('abort', () => {
            clearTimeout(timer)
            reject(stream.signal.reason)
          }, { once: true })
        })
      }
    }
    void stream.from(produce()).then(() => done.push(true))
  })
  const origin = await start()
  const client = await openStream(t, `${origin}/s`)
  await client.events(2)
  client.destroy()
  t.equal(await done.next(1000), true, 'from() settled')
  t.same(logs.filter((line) => line.level >= LEVEL.warn).map((line) => line.err?.code), [], 'no warning or error logged')
})

t.test('reply.sse() twice, or after reply.send(), throws TYPED_SSE_ALREADY_SENT', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  const codes = new Inbox<string | undefined>()
  app.get('/twice', (_request, reply) => {
    const stream = reply.sse(events)
    try {
      reply.sse(events)
      codes.push(undefined)
    } catch (err) {
      codes.push((err as { code?: string }).code)
    }
    stream.close()
  })
  app.get('/after-send', async (_request, reply) => {
    await reply.send('done')
    try {
      reply.sse(events)
      codes.push(undefined)
    } catch (err) {
      codes.push((err as { code?: string }).code)
    }
  })
  const origin = await start()
  const client = await openStream(t, `${origin}/twice`)
  t.equal(await codes.next(), 'TYPED_SSE_ALREADY_SENT', 'second reply.sse()')
  await withTimeout(client.ended, 1000, 'the first stream still ends cleanly')
  t.equal(await (await fetch(`${origin}/after-send`)).text(), 'done')
  t.equal(await codes.next(), 'TYPED_SSE_ALREADY_SENT', 'reply.sse() after reply.send()')
})

t.test('from(): a source that throws when asked for its iterator is a producer failure', async (t) => {
  const { app, start, logs } = await buildApp(t, { sse: { heartbeatMs: false } })
  const streams = streamRoute(app, '/s', events)
  const origin = await start()
  const client = await openStream(t, `${origin}/s`)
  const stream = await streams.next()
  const broken = { [Symbol.asyncIterator] (): AsyncIterator<Message> { throw new Error('no iterator') } }
  await withTimeout(stream.from(broken), 1000, 'from() resolves')
  t.equal(stream.closeReason, 'error')
  await withTimeout(client.ended, 1000, 'end')
  t.ok(logs.some((line) => line.err?.code === 'TYPED_SSE_PRODUCER_FAILED'), 'logged with TYPED_SSE_PRODUCER_FAILED')
})
