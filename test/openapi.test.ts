/**
 * OpenAPI documents from the catalogs: a route declared with `{ sse: catalog }` is
 * documented by @fastify/swagger (OpenAPI 3) as a 200 `text/event-stream` response
 * with one object per event, and still streams (the response schema Fastify compiles
 * for it is never used on the stream).
 */
import swagger from '@fastify/swagger'
import { EventSource } from 'eventsource'
import t from 'tap'
import { createClient } from '../lib/client.js'
import { defineEvents, sseResponseSchema, Text, Type, type SsePluginOptions } from '../lib/index.js'
import { buildApp, Inbox, type Teardown, type TestApp } from './helpers/app.js'

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
async function buildDocumented (t: Teardown, sse: SsePluginOptions = {}): Promise<TestApp> {
  const built = await buildApp(t, { sse: { heartbeatMs: false, ...sse }, fastify: { forceCloseConnections: true } })
  await built.app.register(swagger, { openapi: { info: { title: 'test', version: '1.0.0' } } })
  return built
}

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
  t.equal(document.paths['/a'].get.responses['200'].content?.['text/event-stream'].schema.oneOf?.length, 1)
  t.equal(document.paths['/b'].get.responses['200'].content?.['text/event-stream'].schema.oneOf?.length, 2)
  const own = document.paths['/own'].get.responses['200']
  t.equal(own.description, 'Mine')
  t.same(own.content?.['text/event-stream'].schema, { type: 'string' })
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
