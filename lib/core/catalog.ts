/**
 * Event catalogs: a map of event name -> TypeBox schema, compiled once where it is
 * defined into a checker (TypeBox's TypeCompiler) and a serializer (fast-json-stringify,
 * Fastify's own response serializer). Sending checks, then writes the data by its
 * schema, and never compiles again.
 */
import { FormatRegistry, Kind, Type, type Static, type StringOptions, type TSchema, type TString } from '@sinclair/typebox'
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler'
import buildSerializer from 'fast-json-stringify'
import { eventField, type EventId } from './frame.js'
import { InvalidPayloadError, UnknownEventError, UnknownFormatError, UnserializableSchemaError } from './errors.js'

/** Event name -> payload schema. */
export type EventSchemas = Record<string, TSchema>

/** The names of a catalog's events. */
export type EventName<E extends EventSchemas> = keyof E & string

/** The payload type of event `K`, derived from its schema. */
export type EventData<E extends EventSchemas, K extends EventName<E>> = Static<E[K]>

/** The JSON Schema keyword that marks an event as raw text (see {@link Text}). */
export const TEXT_KEYWORD = 'x-sse-data'

/** A string schema whose value is sent as raw text, not as JSON. */
export type TText = TString & { [TEXT_KEYWORD]: 'text' }

/**
 * A payload schema for raw text events (LLM tokens, log lines): the string is
 * written as is, not JSON-encoded, so `data: hello` instead of `data: "hello"`.
 * Line breaks become separate `data:` lines and arrive as LF.
 *
 * @example
 * const llm = defineEvents({ token: Text(), done: Type.Object({ tokens: Type.Integer() }) })
 * stream.send('token', 'Hel')
 */
export function Text (options: StringOptions = {}): TText {
  return Type.String({ ...options, [TEXT_KEYWORD]: 'text' }) as TText
}

/** One event of a catalog, ready to validate and serialize. */
export interface CompiledEvent {
  readonly name: string
  readonly isText: boolean
  readonly check: TypeCheck<TSchema>
  /** Writes a checked value as JSON by the schema; `undefined` for `Text()` events. */
  readonly stringify: ((data: unknown) => string) | undefined
  /**
   * The schema leaves some value open (`Type.Unknown()`, `Type.Any()`,
   * `additionalProperties: true`): fast-json-stringify writes those with
   * JSON.stringify, which gives `undefined` for a function, a symbol or `undefined`.
   */
  readonly hasOpenValues: boolean
}

/**
 * A message of a catalog: one of its events with matching data. Takes the catalog's
 * type (`SseMessage<typeof clock>`) or its schemas.
 */
export type SseMessage<C extends EventSchemas | EventCatalog<any>> = MessageOf<C extends EventCatalog<infer E> ? E : C>

type MessageOf<E extends EventSchemas> = {
  [K in EventName<E>]: { event: K, data: Static<E[K]>, id?: EventId, retry?: number }
}[EventName<E>]

/** Per-event options of `send` and `publish`. */
export interface SendOptions {
  /** The event id. `''` resets the client's last id; numbers are written in decimal. */
  id?: EventId
  /** Ask the client to wait this many ms before reconnecting. */
  retry?: number
}

const kEvents = Symbol('fastify-typed-sse.events')

/**
 * A compiled set of typed events. Create one with {@link defineEvents} at module
 * level and share it between routes, channels and the typed client.
 */
export interface EventCatalog<E extends EventSchemas = EventSchemas> {
  /** The schemas as given, for documentation (OpenAPI) and clients. */
  readonly schemas: Readonly<E>
  /** The event names, in declaration order. */
  readonly names: ReadonlyArray<EventName<E>>
  /** @internal compiled events by name */
  readonly [kEvents]: ReadonlyMap<string, CompiledEvent>
}

/** Names an event may not have: `sse:` is the library's prefix; EventSource dispatches `error` and `open` itself. */
type ReservedEventName = `sse:${string}` | 'error' | 'open'

/** Values no JSON text can carry, as the compiler sees a schema's static type. */
type NotJson = Date | Uint8Array | bigint | symbol | ((...args: any[]) => unknown)

/**
 * `true` when a value of type `T` may hold something JSON cannot carry, looked for a few
 * levels deep (recursive schemas stop there; the run-time check sees everything).
 */
type HoldsNotJson<T, Depth extends unknown[] = []> =
  0 extends (1 & T) ? false // any: the schema leaves it open (Type.Any())
    : Depth['length'] extends 6 ? false
      : T extends NotJson ? true
        : T extends readonly unknown[] ? HoldsNotJson<T[number], [...Depth, unknown]>
          : T extends object ? true extends { [P in keyof T]-?: HoldsNotJson<T[P], [...Depth, unknown]> }[keyof T] ? true : false
            : false

/**
 * The schemas as `defineEvents` accepts them: an event with a reserved name, or whose
 * schema holds a type JSON cannot carry, is replaced by a message that the compiler
 * shows ("Type 'TObject<...>' is not assignable to type '"Event name ...'").
 */
export type CheckedSchemas<E extends EventSchemas> = {
  [K in keyof E]: K extends ReservedEventName
    ? `Event name "${K & string}" is reserved: "sse:" names are the library's, and EventSource dispatches "error" and "open" itself. Rename the event.`
    : true extends HoldsNotJson<Static<E[K]>>
      ? `Event "${K & string}" has a schema JSON cannot carry (a Date, Uint8Array, bigint, symbol or function): use Type.String() and date.toISOString(), or Type.Integer() for epoch ms.`
      : E[K]
}

/**
 * Declares a catalog of events, each with a TypeBox schema, and compiles every
 * schema once. A reserved name or a schema JSON cannot carry is a compile error where
 * the compiler can see it, and a coded error at run time always. The result types `stream.send()`, `channel.publish()` and the client.
 *
 * @throws TYPED_SSE_INVALID_EVENT_NAME for a name that is empty, holds CR or LF, or
 *   starts with the reserved `sse:` prefix; TYPED_SSE_UNKNOWN_FORMAT for a string
 *   `format` with no checker in TypeBox's FormatRegistry; TYPED_SSE_UNSERIALIZABLE_SCHEMA
 *   for a type JSON cannot carry (`Type.Date()`, `Type.Uint8Array()`, `Type.BigInt()`…).
 * @example
 * import { defineEvents, Type } from 'fastify-typed-sse'
 * export const clock = defineEvents({
 *   tick: Type.Object({ now: Type.String(), epochMs: Type.Integer() }),
 * })
 */
export function defineEvents<const E extends EventSchemas> (schemas: E & CheckedSchemas<E>): EventCatalog<E> {
  const events = new Map<string, CompiledEvent>()
  for (const [name, schema] of Object.entries(schemas)) {
    eventField(name) // throws for a name that cannot be written
    assertFormatsKnown(name, schema)
    const isText = (schema as Record<string, unknown>)[TEXT_KEYWORD] === 'text'
    events.set(name, Object.freeze({
      name,
      isText,
      check: TypeCompiler.Compile(schema),
      stringify: isText ? undefined : compileSerializer(name, schema),
      hasOpenValues: hasOpenValues(schema)
    }))
  }
  return Object.freeze({
    schemas: Object.freeze({ ...schemas }),
    names: Object.freeze([...events.keys()]) as ReadonlyArray<EventName<E>>,
    [kEvents]: events
  })
}

/**
 * TypeBox ships no string formats: a schema with `format: 'email'` compiles, then
 * fails every value. Say so where the catalog is defined, not at the first send.
 */
function assertFormatsKnown (event: string, schema: unknown): void {
  if (schema === null || typeof schema !== 'object') return
  const { format } = schema as { format?: unknown }
  if (typeof format === 'string' && !FormatRegistry.Has(format)) throw new UnknownFormatError(event, format, format)
  for (const value of Object.values(schema)) assertFormatsKnown(event, value)
}

/**
 * fast-json-stringify writes only what the schema declares, as Fastify does for
 * responses. It picks the member of a union with Ajv, which must know the formats
 * TypeBox checks (else it warns, and ignores them).
 */
function compileSerializer (event: string, schema: TSchema): (data: unknown) => string {
  try {
    return buildSerializer(schema, { ajv: { formats: Object.fromEntries(FormatRegistry.Entries()) } })
  } catch (err) {
    throw new UnserializableSchemaError(event, (err as Error).message)
  }
}

function hasOpenValues (schema: unknown): boolean {
  if (schema === null || typeof schema !== 'object') return false
  const { [Kind]: kind, additionalProperties } = schema as { [Kind]?: unknown, additionalProperties?: unknown }
  if (kind === 'Unknown' || kind === 'Any' || additionalProperties === true) return true
  return Object.values(schema).some(hasOpenValues)
}

/** The event schemas of a catalog type: `Events<typeof clock>`. */
export type Events<C extends EventCatalog<any>> = C extends EventCatalog<infer E> ? E : EventSchemas

/**
 * True for a catalog made by `defineEvents()`.
 *
 * @example
 * isCatalog(defineEvents({ tick: Type.Object({}) })) // true
 */
export function isCatalog (value: unknown): value is EventCatalog<any> {
  return value !== null && typeof value === 'object' && 'schemas' in value && Array.isArray((value as { names?: unknown }).names)
}

/**
 * Returns the compiled event `name` of a catalog.
 *
 * @throws TYPED_SSE_UNKNOWN_EVENT
 * @example
 * compiledEvent(clock, 'tick').isText // false
 */
export function compiledEvent (catalog: EventCatalog, name: string): CompiledEvent {
  const compiled = catalog[kEvents].get(name)
  if (compiled === undefined) throw new UnknownEventError(String(name), catalog.names.join(', '))
  return compiled
}

/**
 * A `validate` function for the typed client that checks payloads with the
 * catalog's schemas, compiled once by {@link defineEvents}. For Node clients, or
 * browser bundles that may include TypeBox; a plain browser page cannot load it.
 *
 * @returns `(event, data) => true | reason`, the reason naming the first failing path
 * @example
 * import { EventSource } from 'eventsource'
 * import { createClient } from 'fastify-typed-sse/client'
 * const client = createClient(url, { catalog: clock, EventSource, validate: eventValidator(clock) })
 */
export function eventValidator (catalog: EventCatalog): (event: string, data: unknown) => true | string {
  return (event, data) => {
    const compiled = catalog[kEvents].get(event)
    if (compiled === undefined) return `"${event}" is not in the catalog (known: ${catalog.names.join(', ')})`
    if (compiled.check.Check(data)) return true
    const { path, message } = firstError(compiled, data)
    return `${path}: ${message}`
  }
}

/** The first schema error of a value that failed `Check` (Errors runs only on failure). */
function firstError (compiled: CompiledEvent, data: unknown): { path: string, message: string } {
  const first = compiled.check.Errors(data).First()
  return { path: first?.path || '/', message: first?.message ?? 'does not match the schema' }
}

/**
 * Returns the compiled event `name` of a catalog, or `undefined` when it has none
 * (an event published by another version of the application).
 *
 * @example
 * findEvent(clock, 'tock') // undefined
 */
export function findEvent (catalog: EventCatalog, name: string): CompiledEvent | undefined {
  return catalog[kEvents].get(name)
}

/**
 * Validates `data` against its event's schema and returns the text that goes on the
 * wire as the event's data: the raw string for `Text()` events, otherwise JSON written
 * by the schema (fast-json-stringify): properties the schema does not declare are left
 * out, a value with `toJSON()` is written from what it returns, and values the schema
 * leaves open are written as JSON.stringify writes them (a `Date` as its ISO string).
 * JSON text holds no raw line break (control characters are escaped), so a JSON
 * payload is always one `data:` line.
 *
 * @throws TYPED_SSE_INVALID_PAYLOAD when the check fails or JSON cannot hold the value
 * @example
 * serializePayload(compiledEvent(clock, 'tick'), { now: 'x', epochMs: 1, passwordHash: 'h' }) // '{"now":"x","epochMs":1}'
 */
export function serializePayload (compiled: CompiledEvent, data: unknown): string {
  if (!compiled.check.Check(data)) {
    const { path, message } = firstError(compiled, data)
    throw new InvalidPayloadError(compiled.name, path, message)
  }
  if (compiled.stringify === undefined) return data as string
  let json: string
  try {
    json = compiled.stringify(data)
    // An open value JSON cannot hold is written as the bare word `undefined`: only
    // then does the text need parsing (the word may also sit inside a string).
    if (compiled.hasOpenValues && json.includes('undefined')) JSON.parse(json)
  } catch (err) {
    throw new InvalidPayloadError(compiled.name, '/', `not serializable as JSON (${(err as Error).message})`)
  }
  return json
}

/**
 * Reads back a payload serialized by {@link serializePayload} (a message another
 * instance published, or one read from history) and checks it against the schema.
 *
 * @returns the payload, or `undefined` when the text is not valid for this event
 * @example
 * parsePayload(compiledEvent(clock, 'tick'), '{"now":"x","epochMs":1}') // { now: 'x', epochMs: 1 }
 */
export function parsePayload (compiled: CompiledEvent, text: string): unknown {
  let data: unknown
  if (compiled.isText) {
    data = text
  } else {
    try {
      data = JSON.parse(text)
    } catch {
      return undefined
    }
  }
  return compiled.check.Check(data) ? data : undefined
}
