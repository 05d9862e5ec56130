/**
 * Options objects refuse keys they do not know, as the plugin's do: from untyped code
 * (or through a cast) a misspelt option would otherwise be ignored without a word: a
 * channel without history, a replay from the wrong id, a queue of the default size.
 * And a second registration of the plugin says what happened and what to do.
 */
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import sse, { defineEvents, Type } from '../../lib/index.js'
import { buildApp, thrown } from '../helpers/app.js'
import { openStream } from '../helpers/client.js'

const scores = defineEvents({ score: Type.Object({ home: Type.Integer() }) })

/** Asserts a coded option error naming `key` and listing the known keys. */
function refused (t: Test, err: (Error & { code?: string }) | undefined, key: string): void {
  t.equal(err?.code, 'TYPED_SSE_INVALID_OPTION', `${key}: coded`)
  t.match(err?.message, `"${key}"`, `${key}: named`)
  t.match(err?.message, 'known:', `${key}: the known keys listed`)
}

t.test('channel options: a misspelt key is refused, and no channel is made', async (t) => {
  const { app } = await buildApp(t)
  const channel = app.sse.channel as (name: string, catalog: unknown, options: Record<string, unknown>) => unknown
  refused(t, thrown(() => channel('scores', scores, { histroy: true })), 'histroy')
  refused(t, thrown(() => channel('scores', scores, { idleMS: 1000 })), 'idleMS')
  refused(t, thrown(() => channel('scores', scores, { history: { maxEvent: 10 } })), 'history.maxEvent')
  t.same(Object.keys(app.sse.stats().channels), [], 'nothing was created')
  t.equal(app.sse.channel('scores', scores, { history: true }).history?.maxEvents, 1000, 'the right spelling works')
})

t.test('subscribe() and reply.sse() options: a misspelt key is refused before anything opens or subscribes', async (t) => {
  const { app, start } = await buildApp(t)
  const channel = app.sse.channel('scores', scores, { history: true })
  const errors: Array<(Error & { code?: string }) | undefined> = []
  let subscribers = -1
  app.get('/subscribe', { sse: scores }, async (_request, reply) => {
    const stream = reply.sse()
    errors.push(thrown(() => (channel.subscribe as (s: unknown, o: unknown) => unknown)(stream, { lastEventID: '1' })))
    subscribers = channel.size
    stream.end()
  })
  app.get('/open', async (_request, reply) => {
    const err = thrown(() => (reply.sse as (c: unknown, o: unknown) => unknown)(scores, { maxQueueByte: 1024 }))
    errors.push(err)
    // Nothing was written: an ordinary reply still goes out.
    return reply.code(400).send({ code: err?.code })
  })
  const origin = await start()
  const subscribed = await openStream(t, `${origin}/subscribe`)
  await subscribed.ended
  refused(t, errors[0], 'lastEventID')
  t.equal(subscribers, 0, 'not subscribed')
  const response = await fetch(`${origin}/open`, { headers: { accept: 'text/event-stream' } })
  t.equal(response.status, 400, 'no stream opened: the handler answered as it chose')
  refused(t, errors[1], 'maxQueueByte')
  t.equal(app.sse.stats().opened, 1, 'only the first route opened a stream')
})

t.test('registering the plugin twice says so, with a coded error', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(sse)
  const err = await app.register(sse).then(() => undefined, (err: Error & { code?: string }) => err)
  t.equal(err?.code, 'TYPED_SSE_ALREADY_REGISTERED')
  t.match(err?.message, 'once', 'says what to do')
})
