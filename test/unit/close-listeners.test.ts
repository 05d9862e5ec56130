/**
 * Close listeners (lib/close-listeners.ts): a stream keeps one listener as is and an
 * array only from the second, so these check every shape a user can reach: several
 * `onClose` callbacks, one removed among them, a channel subscription beside them, and
 * the removers once the stream closed.
 */
import t from 'tap'
import { defineEvents, Type, type CloseReason } from '../../lib/index.js'
import { buildApp, streamRoute } from '../helpers/app.js'
import { openStream } from '../helpers/client.js'

const events = defineEvents({ tick: Type.Object({ n: Type.Integer() }) })

t.test('onClose: every callback runs once, in order, but the one removed', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  const streams = streamRoute(app, '/s', events)
  const origin = await start()
  await openStream(t, `${origin}/s`)
  const stream = await streams.next()
  const calls: string[] = []
  stream.onClose((reason) => calls.push(`a:${reason}`))
  const removeB = stream.onClose((reason) => calls.push(`b:${reason}`))
  stream.onClose((reason) => calls.push(`c:${reason}`))
  const removeD = stream.onClose((reason) => calls.push(`d:${reason}`))
  removeB()
  removeB()
  stream.close()
  t.same(calls, ['a:server', 'c:server', 'd:server'], 'a, c and d once each, b removed')
  removeD()
  t.same(calls, ['a:server', 'c:server', 'd:server'], 'a remover called after the close changes nothing')
  const late: CloseReason[] = []
  stream.onClose((reason) => late.push(reason))
  t.same(late, ['server'], 'a callback added after the close runs at once')
})

t.test('a subscribed stream with onClose callbacks: unsubscribing leaves the callbacks, closing runs them', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  const channel = app.sse.channel('ticks', events)
  const streams = streamRoute(app, '/s', events)
  const origin = await start()
  const client = await openStream(t, `${origin}/s`)
  const stream = await streams.next()
  const calls: CloseReason[] = []
  stream.onClose((reason) => calls.push(reason))
  await channel.subscribe(stream)
  stream.onClose((reason) => calls.push(reason))
  t.equal(channel.size, 1, 'subscribed')
  channel.unsubscribe(stream)
  t.equal(channel.size, 0, 'unsubscribed')
  await channel.subscribe(stream)
  await channel.publish('tick', { n: 1 })
  const [event] = await client.events(1, 5000)
  t.same(event.data, '{"n":1}', 'subscribed again: the event arrives')
  stream.close()
  t.same(calls, ['server', 'server'], 'both callbacks ran once')
  t.equal(channel.size, 0, 'the channel let go of the closed stream')
})
