/**
 * OpenAPI documentation of event streams, from the catalog that types them.
 *
 * OpenAPI 3.0 and 3.1 have no vocabulary for Server-Sent Events, so a stream is
 * described the way generators and readers understand best: a 200 response of media
 * type `text/event-stream` whose schema is a `oneOf` of one object per event,
 * `{ event: <name>, id?: string, data: <the event's schema> }`, the library's control
 * events included. `@fastify/swagger` copies a response's `content` map as given
 * (only when it has a `schema`), and turns `const` into `enum`.
 *
 * OpenAPI 3.2 has the vocabulary (§4.14.2, sequential media types): `itemSchema`
 * describes each event, with `data` a string whose JSON content is described by
 * `contentMediaType`/`contentSchema`. The route schema is built before anyone knows
 * the document's version, so {@link sseItemSchemas} rewrites a finished 3.2 document.
 */
import type { FastifySchema } from 'fastify'
import type { TSchema } from '@sinclair/typebox'
import { TEXT_KEYWORD, type EventCatalog } from '../core/catalog.js'
import {
  END_EVENT, EndSchema, JOIN_EVENT, JoinSchema, LEAVE_EVENT, LeaveSchema, MISSED_EVENT, MissedSchema, REMOVE_EVENT, RemoveSchema, RESYNC_EVENT, ResyncSchema
} from '../core/control.js'

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
 * The events the library sends itself, on any stream: a route cannot know in advance
 * whether it will (that depends on the queue policy, the channels it joins, the
 * client's Last-Event-ID), so each is documented with when it is sent.
 */
const CONTROL_EVENTS: ReadonlyArray<{ name: string, schema: TSchema, when: string }> = [
  { name: RESYNC_EVENT, schema: ResyncSchema, when: "a channel cannot replay from the client's Last-Event-ID (unknown, evicted) or lost live events (gap): fetch a full snapshot" },
  { name: MISSED_EVENT, schema: MissedSchema, when: "a stream with the 'drop-oldest' queue policy dropped `dropped` events while its client did not read" },
  { name: END_EVENT, schema: EndSchema, when: 'the server ended the stream for good (its id is also sse:end; a reconnect with it gets 204)' },
  { name: REMOVE_EVENT, schema: RemoveSchema, when: 'a channel with keyed state deleted `key` (channel.remove): drop it from the client\'s state' },
  { name: JOIN_EVENT, schema: JoinSchema, when: 'a member (`id`, with its `info`) opened its first connection to a channel with presence events, on any instance' },
  { name: LEAVE_EVENT, schema: LeaveSchema, when: 'a member closed its last connection to a channel with presence events (or its instance stopped renewing its lease)' }
]

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
        schema: {
          oneOf: [
            ...catalog.names.map((name) => eventEnvelope(name, catalog.schemas[name], eventDescription(name, catalog.schemas[name]))),
            ...CONTROL_EVENTS.map(({ name, schema, when }) => eventEnvelope(name, schema, `Control event "${name}", sent by the library when ${when}. Its data is one line of JSON.`))
          ]
        }
      }
    }
  }
}

function isText (schema: object): boolean {
  return (schema as Record<string, unknown>)[TEXT_KEYWORD] === 'text'
}

function eventDescription (name: string, schema: object): string {
  return isText(schema)
    ? `Event "${name}": its data is raw text, one \`data:\` line per line.`
    : `Event "${name}": its data is one line of JSON.`
}

function eventEnvelope (name: string, schema: object, description: string): object {
  return {
    type: 'object',
    title: name,
    description,
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

/** The parts of an OpenAPI document {@link sseItemSchemas} reads. */
interface OpenApiShape {
  openapi?: string
  paths?: Record<string, Record<string, { responses?: Record<string, { content?: Record<string, Record<string, unknown>> }> } | unknown>>
}

/** An event's envelope as @fastify/swagger emits it (`const` may have become `enum`). */
interface EmittedEnvelope {
  title?: string
  description?: string
  properties?: { event?: { const?: string, enum?: string[] }, data?: Record<string, unknown> }
}

/**
 * For `@fastify/swagger`'s `transformObject`: in an OpenAPI 3.2 (or later) document,
 * rewrites every event stream documented by this library to 3.2's own form, an
 * `itemSchema` with one `oneOf` member per event (§4.14.2): `data` is the string on
 * the wire, its JSON described by `contentMediaType: application/json` and
 * `contentSchema`, `Text()` data by the string schema itself. Documents of other
 * versions are returned unchanged, so it is safe to leave in place.
 *
 * @example
 * await app.register(swagger, {
 *   openapi: { openapi: '3.2.0', info: { title: 'api', version: '1' } },
 *   transformObject: sseItemSchemas
 * })
 */
export function sseItemSchemas<O extends object, S extends object> (documentObject: { openapiObject: O } | { swaggerObject: S }): O | S {
  if (!('openapiObject' in documentObject)) return documentObject.swaggerObject
  const document = documentObject.openapiObject as OpenApiShape
  if (!isAtLeast32(document.openapi)) return documentObject.openapiObject
  for (const operations of Object.values(document.paths ?? {})) {
    for (const operation of Object.values(operations)) {
      for (const response of Object.values((operation as { responses?: Record<string, { content?: Record<string, Record<string, unknown>> }> }).responses ?? {})) {
        const media = response.content?.[EVENT_STREAM_MEDIA_TYPE]
        const envelopes = (media?.schema as { oneOf?: EmittedEnvelope[] } | undefined)?.oneOf
        if (media === undefined || envelopes === undefined || !envelopes.every(isEnvelope)) continue
        delete media.schema
        media.itemSchema = itemSchema(envelopes)
      }
    }
  }
  return documentObject.openapiObject
}

function isAtLeast32 (version: string | undefined): boolean {
  const [major, minor] = (version ?? '').split('.').map(Number)
  return major > 3 || (major === 3 && minor >= 2)
}

/** Only what {@link sseResponseSchema} wrote is rewritten, never a stream documented by hand. */
function isEnvelope (envelope: EmittedEnvelope): boolean {
  const event = envelope.properties?.event
  return typeof envelope.title === 'string' && (event?.const ?? event?.enum?.[0]) === envelope.title && envelope.properties?.data !== undefined
}

function itemSchema (envelopes: EmittedEnvelope[]): object {
  return {
    type: 'object',
    required: ['data'],
    properties: {
      event: { type: 'string' },
      data: { type: 'string' },
      id: { type: 'string', description: 'The event id, when it has one (always on channels with history). Sent back as Last-Event-ID on reconnect.' },
      retry: { type: 'integer', minimum: 0 }
    },
    oneOf: envelopes.map(({ title, description, properties }) => {
      const data = properties?.data ?? {}
      return {
        title,
        description,
        required: ['event', 'data'],
        properties: {
          event: { const: title },
          data: data[TEXT_KEYWORD] === 'text' ? data : { type: 'string', contentMediaType: 'application/json', contentSchema: data }
        }
      }
    })
  }
}
