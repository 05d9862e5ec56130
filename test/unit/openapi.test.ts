/**
 * OpenAPI documents from the catalogs: a route declared with `{ sse: catalog }` is
 * documented by @fastify/swagger (OpenAPI 3) as a 200 `text/event-stream` response
 * with one object per event, the library's control events included, and still streams
 * (the response schema Fastify compiles for it is never used on the stream). In an
 * OpenAPI 3.2 document, `sseItemSchemas` turns that into 3.2's `itemSchema`.
 */
import swagger from '@fastify/swagger'
import { EventSource } from 'eventsource'
import t from 'tap'
import { createClient } from '../../lib/client.js'
import { END_EVENT, EndSchema, JOIN_EVENT, LEAVE_EVENT, MISSED_EVENT, MissedSchema, REMOVE_EVENT, RESYNC_EVENT, ResyncSchema } from '../../lib/core/control.js'
import { defineEvents, sseResponseSchema, Text, Type, type SsePluginOptions } from '../../lib/index.js'
import { sseItemSchemas } from '../../lib/http/openapi.js'
import { buildApp, Inbox, type Teardown, type TestApp } from '../helpers/app.js'

const clock = defineEvents({
  tick: Type.Object({ now: Type.String({ minLength: 1 }), epochMs: Type.Integer() })
})
const chat = defineEvents({
  message: Type.Object({ from: Type.String(), text: Type.String() }),
  token: Text()
})

/** The parts of an OpenAPI 3 document these tests read. */
interface OpenApiDocument {
  paths: Record<string, Record<string, {
    summary?: string
    responses: Record<string, { description: string, content?: Record<string, { schema: { oneOf?: unknown[] } & Record<string, unknown> }> }>
  }>>
}

/**
 * An app with @fastify/swagger in OpenAPI mode, registered before the routes as it
 * must be. `forceCloseConnections` ends the spare connection undici keeps after a
 * client leaves, so teardown does not wait for its keep-alive.
 */
async function buildDocumented (t: Teardown, sse: SsePluginOptions = {}, openapiVersion?: string): Promise<TestApp> {
  const built = await buildApp(t, { sse: { heartbeatMs: false, ...sse }, fastify: { forceCloseConnections: true } })
  await built.app.register(swagger, {
    openapi: { ...(openapiVersion === undefined ? {} : { openapi: openapiVersion }), info: { title: 'test', version: '1.0.0' } },
    transformObject: sseItemSchemas
  })
  return built
}

/** The control events every stream documents after its catalog's events, in this order. */
const CONTROL_EVENTS = [RESYNC_EVENT, MISSED_EVENT, END_EVENT, REMOVE_EVENT, JOIN_EVENT, LEAVE_EVENT]

function envelope (name: string, data: unknown): unknown {
  return {
    type: 'object',
    title: name,
    required: ['event', 'data'],
    properties: { event: { type: 'string', enum: [name] }, id: { type: 'string' }, data }
  }
}

t.test('a route declared with { sse: catalog } is documented as 200 text/event-stream with every event', async (t) => {
  const { app } = await buildDocumented(t)
  app.get('/time', { sse: clock, schema: { summary: 'The server clock', tags: ['clock'] } }, (_request, reply) => { reply.sse() })
  app.get('/chat', { sse: chat }, (_request, reply) => { reply.sse() })
  await app.ready()
  const document = app.swagger() as unknown as OpenApiDocument

  const time = document.paths['/time'].get
  t.equal(time.summary, 'The server clock', "the route's own schema is kept")
  const media = time.responses['200'].content?.['text/event-stream']
  t.ok(media, '200 text/event-stream')
  t.same(Object.keys(time.responses['200'].content ?? {}), ['text/event-stream'], 'no JSON media type')
  t.match(media?.schema.oneOf, [envelope('tick', {
    type: 'object',
    required: ['now', 'epochMs'],
    properties: { now: { type: 'string', minLength: 1 }, epochMs: { type: 'integer' } }
  })])

  const events = document.paths['/chat'].get.responses['200'].content?.['text/event-stream'].schema.oneOf
  t.match(events, [
    envelope('message', { type: 'object', properties: { from: { type: 'string' }, text: { type: 'string' } } }),
    envelope('token', { type: 'string', 'x-sse-data': 'text' })
  ], 'each event with its schema, Text() marked as raw text')
})

t.test('the documented route still streams, and a JSON reply of the same route is serialized as usual', async (t) => {
  const { app, start } = await buildDocumented(t)
  app.get<{ Querystring: { snapshot?: string }, Reply: { now: string } }>('/time', { sse: clock }, (request, reply) => {
    if (request.query.snapshot !== undefined) return { now: 'json' }
    reply.sse().send('tick', { now: 'x', epochMs: 1 })
  })
  const origin = await start()

  const snapshot = await app.inject({ url: '/time?snapshot' })
  t.equal(snapshot.statusCode, 200)
  t.same(snapshot.json(), { now: 'json' })

  const client = createClient(`${origin}/time`, { catalog: clock, EventSource })
  t.teardown(() => client.close())
  const ticks = new Inbox<number>()
  client.on('tick', (tick) => ticks.push(tick.epochMs))
  t.equal(await ticks.next(), 1)
})

t.test("a route's own 200 response wins; shared schema objects are not changed", async (t) => {
  const { app } = await buildDocumented(t)
  const shared = Object.freeze({ tags: ['shared'] })
  app.get('/a', { sse: clock, schema: shared }, (_request, reply) => { reply.sse() })
  app.get('/b', { sse: chat, schema: shared }, (_request, reply) => { reply.sse() })
  app.get('/own', {
    sse: clock,
    schema: { response: { 200: { description: 'Mine', content: { 'text/event-stream': { schema: { type: 'string' } } } } } }
  }, (_request, reply) => { reply.sse() })
  await app.ready()
  const document = app.swagger() as unknown as OpenApiDocument
  t.same(shared, { tags: ['shared'] }, 'the shared object is as it was')
  t.equal(document.paths['/a'].get.responses['200'].content?.['text/event-stream'].schema.oneOf?.length, 1 + CONTROL_EVENTS.length)
  t.equal(document.paths['/b'].get.responses['200'].content?.['text/event-stream'].schema.oneOf?.length, 2 + CONTROL_EVENTS.length)
  const own = document.paths['/own'].get.responses['200']
  t.equal(own.description, 'Mine')
  t.same(own.content?.['text/event-stream'].schema, { type: 'string' })
})

t.test("a route's own 2xx (or 2XX) response wins too: no 200 is added beside it", async (t) => {
  const { app } = await buildDocumented(t)
  for (const range of ['2xx', '2XX']) {
    app.get(`/range-${range}`, {
      sse: clock,
      schema: { response: { [range]: { description: `Mine (${range})`, content: { 'text/event-stream': { schema: { type: 'string' } } } } } }
    }, (_request, reply) => { reply.sse() })
  }
  await app.ready()
  const document = app.swagger() as unknown as OpenApiDocument
  for (const range of ['2xx', '2XX']) {
    const responses = document.paths[`/range-${range}`].get.responses
    t.same(Object.keys(responses), ['2XX'], `${range}: only the route's own range`)
    t.equal(responses['2XX'].description, `Mine (${range})`)
  }
})

t.test('sseResponseSchema documents a route without the sse option, with a description', async (t) => {
  const { app } = await buildDocumented(t)
  app.get('/time', {
    schema: { response: { 200: sseResponseSchema(clock, { description: 'One tick per second' }) } }
  }, (_request, reply) => { reply.sse(clock) })
  await app.ready()
  const response = (app.swagger() as unknown as OpenApiDocument).paths['/time'].get.responses['200']
  t.equal(response.description, 'One tick per second')
  t.match(response.content?.['text/event-stream'].schema.oneOf, [envelope('tick', { type: 'object' })])
})

t.test('the control events sse:resync, sse:missed, sse:end, sse:remove, sse:join and sse:leave are documented after the catalog, with their schemas', async (t) => {
  const { app } = await buildDocumented(t)
  app.get('/time', { sse: clock }, (_request, reply) => { reply.sse() })
  await app.ready()
  const oneOf = (app.swagger() as unknown as OpenApiDocument).paths['/time'].get.responses['200'].content?.['text/event-stream'].schema.oneOf as Array<{ title: string, description: string }>
  t.same(oneOf.map((entry) => entry.title), ['tick', ...CONTROL_EVENTS])
  t.match(oneOf.slice(1), [
    envelope(RESYNC_EVENT, { type: 'object', required: ['channel', 'lastEventId', 'reason'], properties: { reason: { anyOf: [{ enum: ['unknown'] }, { enum: ['evicted'] }, { enum: ['gap'] }] } } }),
    envelope(MISSED_EVENT, { type: 'object', required: ['dropped'], properties: { dropped: { type: 'integer', minimum: 1 } } }),
    envelope(END_EVENT, { type: 'object', properties: {} }),
    envelope(REMOVE_EVENT, { type: 'object', required: ['key'], properties: { key: { type: 'string' } } }),
    envelope(JOIN_EVENT, { type: 'object', required: ['id', 'info'], properties: { id: { type: 'string' } } }),
    envelope(LEAVE_EVENT, { type: 'object', required: ['id'], properties: { id: { type: 'string' } } })
  ])
  for (const entry of oneOf.slice(1)) t.match(entry.description, /^Control event "sse:[a-z]+", sent by the library when /, entry.title)
  t.same([ResyncSchema.required, MissedSchema.required, EndSchema.required], [['channel', 'lastEventId', 'reason'], ['dropped'], undefined], 'the schemas of lib/control.ts')
})

/** The parts of an OpenAPI 3.2 event stream these tests read. */
interface ItemSchema {
  type: string
  required: string[]
  properties: Record<string, unknown>
  oneOf: Array<{ title: string, required: string[], properties: { event: unknown, data: Record<string, unknown> } }>
}

t.test('in an OpenAPI 3.2 document, sseItemSchemas describes each event with itemSchema', async (t) => {
  const { app } = await buildDocumented(t, {}, '3.2.0')
  app.get('/chat', { sse: chat }, (_request, reply) => { reply.sse() })
  app.get('/own', {
    schema: { response: { 200: { description: 'Mine', content: { 'text/event-stream': { schema: { type: 'string' } } } } } }
  }, (_request, reply) => { reply.sse(chat) })
  await app.ready()
  const document = app.swagger() as unknown as OpenApiDocument & { openapi: string }
  t.equal(document.openapi, '3.2.0')
  const media = document.paths['/chat'].get.responses['200'].content?.['text/event-stream'] as unknown as { schema?: unknown, itemSchema: ItemSchema }
  t.equal(media.schema, undefined, 'the stream as a whole is text: no schema')
  const item = media.itemSchema
  t.same(item.required, ['data'])
  t.same(Object.keys(item.properties), ['event', 'data', 'id', 'retry'], 'the fields of an event (HTML §9.2.6)')
  t.same(item.oneOf.map((member) => member.title), ['message', 'token', ...CONTROL_EVENTS], 'one member per event, control events too')
  const [message, token, resync] = item.oneOf
  t.same(message.properties.event, { const: 'message' })
  t.match(message.properties.data, {
    type: 'string',
    contentMediaType: 'application/json',
    contentSchema: { type: 'object', properties: { from: { type: 'string' }, text: { type: 'string' } } }
  }, 'JSON data: the string on the wire, its content described by the schema')
  t.same(token.properties.data, { type: 'string', 'x-sse-data': 'text' }, 'Text() data: the string itself')
  t.match(resync.properties.data, { contentMediaType: 'application/json', contentSchema: { required: ['channel', 'lastEventId', 'reason'] } })
  t.same(document.paths['/own'].get.responses['200'].content?.['text/event-stream'], { schema: { type: 'string' } }, 'a stream documented by hand is left alone')
})

t.test('sseItemSchemas leaves a hand-written oneOf of a 3.2 event stream alone', async (t) => {
  const { app } = await buildDocumented(t, {}, '3.2.0')
  const handWritten = { oneOf: [{ type: 'object', title: 'ping', properties: { event: { type: 'string' } } }] }
  app.get('/own', {
    schema: { response: { 200: { description: 'Mine', content: { 'text/event-stream': { schema: handWritten } } } } }
  }, (_request, reply) => { reply.sse(chat) })
  await app.ready()
  const media = (app.swagger() as unknown as OpenApiDocument).paths['/own'].get.responses['200'].content?.['text/event-stream']
  t.same(media, { schema: handWritten }, 'no itemSchema made from a oneOf this library did not write')
})

t.test('sseItemSchemas leaves OpenAPI 3.0 and 3.1 documents as they are', async (t) => {
  for (const version of ['3.0.3', '3.1.0']) {
    const { app } = await buildDocumented(t, {}, version)
    app.get('/time', { sse: clock }, (_request, reply) => { reply.sse() })
    await app.ready()
    const media = (app.swagger() as unknown as OpenApiDocument).paths['/time'].get.responses['200'].content?.['text/event-stream']
    t.equal(media?.schema.oneOf?.length, 1 + CONTROL_EVENTS.length, version)
    t.notOk(media !== undefined && 'itemSchema' in media, `${version}: no itemSchema`)
  }
  const swagger2 = { swagger: '2.0', paths: {} }
  t.equal(sseItemSchemas({ swaggerObject: swagger2 }), swagger2, 'Swagger 2.0 untouched')
})
