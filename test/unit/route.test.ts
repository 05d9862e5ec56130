/**
 * Routes declared `{ sse: catalog }`: a returned (async) iterable is streamed and the
 * stream ends for good, the iterator is stopped when the client leaves, errors after
 * the stream opened are logged and end it, other return values are ordinary replies.
 */
import t from 'tap'
import { defineEvents, Text, Type } from '../../lib/index.js'
import { buildApp, Inbox, LEVEL, sleep, waitUntil, withTimeout } from '../helpers/app.js'
import { openStream } from '../helpers/client.js'

const events = defineEvents({ token: Text(), n: Type.Integer() })

t.test('route { sse: catalog }: a returned async iterable is streamed, then the stream ends', async (t) => {
  const { app, start, logs } = await buildApp(t, { sse: { heartbeatMs: false } })
  app.get('/gen', { sse: events }, async function * () {
    yield { event: 'n', data: 1 }
    yield { event: 'token', data: 'two', id: 2 }
  })
  app.get('/array', { sse: events }, async () => [{ event: 'n', data: 3 }])
  const origin = await start()
  const gen = await openStream(t, `${origin}/gen`)
  t.equal(gen.statusCode, 200)
  await withTimeout(gen.ended, 1000, 'end')
  t.same(gen.parser.events, [{ type: 'n', data: '1', lastEventId: '' }, { type: 'token', data: 'two', lastEventId: '2' }, { type: 'sse:end', data: '{}', lastEventId: 'sse:end' }],
    'a generator that returns ends the stream for good (sse:end)')
  const array = await openStream(t, `${origin}/array`)
  await withTimeout(array.ended, 1000, 'end')
  t.same(array.parser.events.map((event) => event.type), ['n', 'sse:end'])
  t.same(logs.filter((line) => line.level >= LEVEL.error), [], 'nothing logged as an error')
})

t.test('route { sse: catalog }: the iterator is return()ed when the client leaves', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  const finished = new Inbox<true>()
  app.get('/endless', { sse: events }, async function * () {
    try {
      for (let i = 0; i < 10_000; i++) {
        yield { event: 'n', data: i }
        await sleep(10)
      }
    } finally {
      finished.push(true)
    }
  })
  const origin = await start()
  const client = await openStream(t, `${origin}/endless`)
  await client.events(2)
  client.destroy()
  t.equal(await finished.next(1000), true, 'the generator\'s finally ran')
})

t.test('route { sse: catalog }: a handler throwing after opening is logged and ends the stream', async (t) => {
  const { app, start, logs } = await buildApp(t, { sse: { heartbeatMs: false } })
  app.get('/late', { sse: events }, async (_request, reply) => {
    reply.sse().send('n', 1)
    throw new Error('handler failed late')
  })
  app.get('/early', { sse: events }, async () => {
    throw new Error('handler failed early')
  })
  const origin = await start()
  const late = await openStream(t, `${origin}/late`)
  await withTimeout(late.ended, 1000, 'end')
  t.same(late.parser.events.map((event) => event.data), ['1'])
  await waitUntil(() => logs.some((line) => line.err?.code === 'TYPED_SSE_PRODUCER_FAILED'), 1000, 'log line')
  const early = await fetch(`${origin}/early`, { headers: { accept: 'text/event-stream' } })
  t.equal(early.status, 500, 'before opening: Fastify\'s error reply')
  t.match(early.headers.get('content-type'), /^application\/json/)
})

t.test('route { sse: catalog }: other return values, and a handler that opens the stream itself', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  app.get<{ Reply: { ok: boolean } }>('/json', { sse: events }, async () => ({ ok: true }))
  app.get<{ Reply: string }>('/text', { sse: events }, async () => 'plain')
  app.get('/own', { sse: events }, async (_request, reply) => {
    reply.sse({ retryMs: 7 })
    return [{ event: 'n', data: 1 }]
  })
  const origin = await start()
  const json = await fetch(`${origin}/json`)
  t.same(await json.json(), { ok: true }, 'a plain value is an ordinary reply')
  t.equal(await (await fetch(`${origin}/text`)).text(), 'plain', 'a string is not streamed as an iterable')
  const own = await openStream(t, `${origin}/own`)
  await withTimeout(own.ended, 1000, 'end')
  t.same(own.parser.retries, [7], 'the stream the handler opened carries the iterable')
  t.same(own.parser.events.map((event) => event.type), ['n', 'sse:end'])
})

t.test('regression: an iterator whose return() throws never makes from() reject or the process crash; the route logs and closes', async (t) => {
  const { app, start, logs } = await buildApp(t, { sse: { heartbeatMs: false } })
  const unhandled: unknown[] = []
  const onUnhandled = (err: unknown): void => { unhandled.push(err) }
  process.on('unhandledRejection', onUnhandled)
  t.teardown(() => process.off('unhandledRejection', onUnhandled))
  const throwingReturn = (fails: 'sync' | 'async'): AsyncIterable<{ event: 'n', data: number }> => ({
    [Symbol.asyncIterator] () {
      let n = 0
      return {
        next: async () => {
          if (n === 2) throw new Error('producer broke')
          return { done: false as const, value: { event: 'n' as const, data: n++ } }
        },
        return: fails === 'sync'
          ? () => { throw new Error('return() broke') }
          : async () => { throw new Error('return() broke') }
      }
    }
  })
  app.get('/sync', { sse: events }, () => throwingReturn('sync'))
  app.get('/async', { sse: events }, () => throwingReturn('async'))
  const origin = await start()
  for (const path of ['/sync', '/async']) {
    const client = await openStream(t, `${origin}${path}`)
    await withTimeout(client.ended, 2000, `${path}: the stream is closed`)
    t.same(client.parser.events.map((event) => event.data), ['0', '1'], `${path}: what came before the error arrived`)
  }
  await waitUntil(() => logs.filter((line) => line.err?.code === 'TYPED_SSE_PRODUCER_FAILED').length === 2, 2000, 'both logged')
  t.equal(app.sse.stats().closed.error, 2, 'closed with reason error')
  t.notOk(logs.some((line) => /Promise errored/.test(line.msg)), 'Fastify saw no rejected handler')
  t.same(unhandled, [], 'no unhandled rejection')
})
