/**
 * Type tests of the typed client, checked by `tsc --noEmit` (npm run typecheck);
 * tap does not run this file. Each `@ts-expect-error` line must fail to compile:
 * if it ever compiles, the directive itself becomes the error.
 */
import { EventSource as NodeEventSource } from 'eventsource'
import { createClient, END_EVENT, type ClientStatus, type EventSourceConstructor, type SseClient, type UnauthorizedInfo } from '../../lib/client.js'
import { defineEvents, Text, Type } from '../../lib/index.js'

/** `true` only when A and B are the same type (not merely assignable). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
function expectType<A, B> (_proof: Equal<A, B>): void {}

const chat = defineEvents({
  message: Type.Object({ from: Type.String(), at: Type.Integer() }),
  token: Text()
})
const clock = defineEvents({ tick: Type.Object({ now: Type.String(), epochMs: Type.Integer() }) })
const url = 'http://127.0.0.1:3000/chat'

// With the catalog value: data and meta typed per event.
const client = createClient(url, { catalog: chat, EventSource: NodeEventSource })
client.on('message', (data, meta) => {
  expectType<typeof data, { from: string, at: number }>(true)
  expectType<typeof meta.event, 'message'>(true)
  expectType<typeof meta.id, string | undefined>(true)
})
client.on('token', (data) => { expectType<typeof data, string>(true) })
// @ts-expect-error an event the catalog does not declare
client.on('typing', () => {})
// @ts-expect-error a handler expecting another data type
client.on('message', (data: string) => data)
// @ts-expect-error a property the schema does not have
client.on('message', (data) => data.text)
// @ts-expect-error a Text() event's data is a string, not an object
client.on('token', (data: { text: string }) => data)
client.off('message', (data) => { expectType<typeof data.at, number>(true) })
// @ts-expect-error off() checks names too
client.off('typing', () => {})
expectType<typeof client.status, ClientStatus>(true)

// Control events are typed from lib/control.ts.
client.onResync((info) => { expectType<typeof info.reason, 'unknown' | 'evicted' | 'gap'>(true) })
client.onMissed((info) => { expectType<typeof info.dropped, number>(true) })

// The validator sees the catalog's names.
createClient(url, {
  catalog: chat,
  validate: (event, data) => { expectType<typeof event, 'message' | 'token'>(true); return data !== null }
})

// Type only: the same types, nothing loaded at run time; the Text() events must be listed.
const typeOnly = createClient<typeof chat>(url, { text: { token: true } })
expectType<typeof typeOnly, SseClient<typeof chat>>(true)
typeOnly.on('message', (data) => { expectType<typeof data.from, string>(true) })
// @ts-expect-error type only: an unknown event
typeOnly.on('typing', () => {})
// @ts-expect-error type only, catalog with Text() events: `text` is required
createClient<typeof chat>(url)
// @ts-expect-error type only: `text` must list every Text() event
createClient<typeof chat>(url, { text: {} })
// @ts-expect-error type only: `text` lists only Text() events
createClient<typeof chat>(url, { text: { token: true, message: true } })
// @ts-expect-error with the catalog value, the text events come from it
createClient(url, { catalog: chat, text: { token: true } })

// A catalog without Text() events needs no options at all.
createClient<typeof clock>('/time').on('tick', (tick) => { expectType<typeof tick.epochMs, number>(true) })
// @ts-expect-error no Text() events: nothing to list
createClient<typeof clock>('/time', { text: { tick: true } })

// Both EventSource implementations fit.
const fromNode: EventSourceConstructor = NodeEventSource
const fromBrowser: EventSourceConstructor = EventSource
void fromNode
void fromBrowser

// Node: headers on every (re)connect through a subclass; it still fits the option.
const token = 'secret'
const WithToken: EventSourceConstructor = class extends NodeEventSource {
  constructor (url: string, init?: { withCredentials?: boolean }) {
    super(url, { ...init, fetch: (input, request) => fetch(input, { ...request, headers: { ...request.headers, authorization: `Bearer ${token}` } }) })
  }
}
createClient(url, { catalog: clock, EventSource: WithToken })

// Untyped (no catalog, no type): any name, data `unknown` until checked.
createClient(url, { EventSource: NodeEventSource }).on('anything', (data) => { expectType<typeof data, unknown>(true) })

// The fetch transport's options.
const fetchClient = createClient(url, {
  catalog: chat,
  transport: 'fetch',
  method: 'POST',
  body: JSON.stringify({ prompt: 'hi' }),
  headers: async () => ({ authorization: `Bearer ${token}` }),
  credentials: 'include',
  signal: new AbortController().signal,
  reconnectDelayMs: 500,
  maxReconnectDelayMs: 10_000,
  responseTimeoutMs: 5000,
  maxEventBytes: 65_536,
  pauseWhenHidden: true,
  onUnauthorized: (info) => { expectType<typeof info, UnauthorizedInfo>(true); return info.statusCode === 401 }
})
fetchClient.onEnd(() => {})
expectType<typeof fetchClient.isLeader, boolean>(true)
expectType<ClientStatus, 'connecting' | 'open' | 'paused' | 'closed'>(true)
expectType<typeof END_EVENT, 'sse:end'>(true)
createClient(url, { catalog: chat, headers: { authorization: 'Bearer x' }, shared: true })
// @ts-expect-error no such transport
createClient(url, { catalog: chat, transport: 'websocket' })
// @ts-expect-error header values are strings
createClient(url, { catalog: chat, headers: { 'x-count': 1 } })
// @ts-expect-error a stream body cannot be sent again on reconnect
createClient(url, { catalog: chat, body: new ReadableStream() })
// @ts-expect-error onUnauthorized says whether to retry
createClient(url, { catalog: chat, onUnauthorized: () => 'yes' })
// @ts-expect-error onEnd listeners get nothing
fetchClient.onEnd((reason: string) => reason)
