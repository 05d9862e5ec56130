/**
 * The Last-Event-ID a stream sees is the request's header as it stands when the stream
 * opens: a handler may fill it in (from a query parameter, for an EventSource's first
 * connection, which cannot send the header) before reply.sse(), on a `{ sse }` route too.
 */
import t from 'tap'
import { defineEvents, Text } from '../../lib/index.js'
import { buildApp, waitUntil } from '../helpers/app.js'
import { openStream } from '../helpers/client.js'

const events = defineEvents({ token: Text() })

t.test('a { sse } route whose handler sets Last-Event-ID from the query before reply.sse(): stream.lastEventId is that id', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  const handler = async (request: any, reply: any): Promise<void> => {
    const given = (request.query as { lastEventId?: string }).lastEventId
    if (given !== undefined) request.headers['last-event-id'] = given
    const stream = reply.sse(events)
    stream.send('token', String(stream.lastEventId))
  }
  app.get('/route', { sse: events }, async (request, reply) => { await handler(request, reply) })
  app.get('/plain', handler)
  const origin = await start()
  for (const path of ['/plain', '/route']) {
    const client = await openStream(t, `${origin}${path}?lastEventId=abc_7`)
    await waitUntil(() => client.parser.events.length > 0, 5000, `${path}: first event`)
    t.equal(client.parser.events[0].data, 'abc_7', `${path}: the handler's Last-Event-ID reaches the stream`)
  }
})
