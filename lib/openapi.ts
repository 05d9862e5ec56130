/**
 * OpenAPI documentation of event streams, from the catalog that types them.
 *
 * OpenAPI 3.0 and 3.1 have no vocabulary for Server-Sent Events, so a stream is
 * described the way generators and readers understand best: a 200 response of media
 * type `text/event-stream` whose schema is a `oneOf` of one object per event,
 * `{ event: <name>, id?: string, data: <the event's schema> }`. `@fastify/swagger`
 * copies a response's `content` map as given, and turns `const` into `enum`.
 */
import type { FastifySchema } from 'fastify'
import { TEXT_KEYWORD, type EventCatalog } from './catalog.js'

/** The media type of an event stream (WHATWG HTML §9.2.1). */
export const EVENT_STREAM_MEDIA_TYPE = 'text/event-stream'

/** Options of {@link sseResponseSchema}. */
export interface SseResponseOptions {
  /**
   * The response's description.
   * @default 'An event stream (Server-Sent Events): one object of this schema per event.'
   */
  description?: string
}

const DEFAULT_DESCRIPTION = 'An event stream (Server-Sent Events): one object of this schema per event.'

/**
 * The response schema of an event stream of `catalog`, for `schema.response[200]`.
 * Routes declared with `{ sse: catalog }` get it without asking; call it yourself
 * for other routes, or to set the description.
 *
 * Fastify compiles a serializer for it at startup, which is harmless: streams are
 * written directly to the socket, so the serializer never runs for them, and a JSON
 * reply from the same route does not match the `text/event-stream` media type.
 *
 * @example
 * app.get('/time', {
 *   schema: { response: { 200: sseResponseSchema(clock, { description: 'One tick per second' }) } }
 * }, (request, reply) => { reply.sse(clock) })
 */
export function sseResponseSchema (catalog: EventCatalog, options: SseResponseOptions = {}): {
  description: string
  content: { [EVENT_STREAM_MEDIA_TYPE]: { schema: { oneOf: object[] } } }
} {
  return {
    description: options.description ?? DEFAULT_DESCRIPTION,
    content: {
      [EVENT_STREAM_MEDIA_TYPE]: {
        schema: { oneOf: catalog.names.map((name) => eventEnvelope(name, catalog.schemas[name])) }
      }
    }
  }
}

function eventEnvelope (name: string, schema: object): object {
  const isText = (schema as Record<string, unknown>)[TEXT_KEYWORD] === 'text'
  return {
    type: 'object',
    title: name,
    description: isText
      ? `Event "${name}": its data is raw text, one \`data:\` line per line.`
      : `Event "${name}": its data is one line of JSON.`,
    required: ['event', 'data'],
    properties: {
      event: { type: 'string', const: name },
      id: { type: 'string', description: 'The event id, when it has one (always on channels with history). Sent back as Last-Event-ID on reconnect.' },
      data: schema
    }
  }
}

/**
 * @internal used by the plugin's onRoute hook for routes declared with `{ sse: catalog }`.
 * A route's schema with the event stream response of `catalog` added as 200,
 * unless the route declares a 200 (or 2xx) response itself, which then wins. The
 * route's own objects are copied, not changed: they may be shared between routes.
 *
 * @example
 * withSseResponse({ tags: ['clock'] }, clock)
 * // { tags: ['clock'], response: { 200: sseResponseSchema(clock) } }
 */
export function withSseResponse (schema: FastifySchema | undefined, catalog: EventCatalog): FastifySchema {
  const response = schema?.response as Record<string, unknown> | undefined
  if (response !== undefined && ('200' in response || '2xx' in response || '2XX' in response)) return schema as FastifySchema
  return { ...schema, response: { ...response, 200: sseResponseSchema(catalog) } }
}
