/**
 * Type tests, checked by `tsc --noEmit` (never run). Each `@ts-expect-error` line must
 * fail to compile: if the library stopped rejecting it, tsc would report the unused
 * directive and the type check would fail.
 */
import Fastify from 'fastify'
import sse, { defineEvents, Text, Type, type CloseReason, type EventData, type EventName, type Resync, type SseMessage, type SseStream } from '../../lib/index.js'

const clock = defineEvents({
  tick: Type.Object({ now: Type.String(), epochMs: Type.Integer() }),
  token: Text(),
  done: Type.Object({ tokens: Type.Integer() })
})
type Clock = typeof clock
type ClockSchemas = typeof clock.schemas
const scores = defineEvents({ score: Type.Object({ home: Type.Integer(), away: Type.Integer() }) })
/** A catalog with every event of `scores` and more: its streams may subscribe to a scores channel. */
const scoresAndNotes = defineEvents({ score: scores.schemas.score, note: Text() })

/** Compile-time equality: resolves to true only when A and B are the same type. */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
function expectType<T extends true> (_value?: T): void {}

export async function sendIsTyped (): Promise<void> {
  const app = Fastify()
  await app.register(sse)
  app.get('/time', (request, reply) => {
    const stream = reply.sse(clock)
    expectType<Equal<typeof stream, SseStream<Clock>>>()

    const written: boolean = stream.send('tick', { now: 'x', epochMs: 1 })
    stream.send('token', 'Hel', { id: 0, retry: 1000 })
    stream.send('token', 'lo', { id: '' })
    stream.send('done', { tokens: 2 })

    // @ts-expect-error an event name the catalog does not declare
    stream.send('tock', { now: 'x', epochMs: 1 })
    // @ts-expect-error a payload missing a property
    stream.send('tick', { now: 'x' })
    // @ts-expect-error a property of the wrong type
    stream.send('tick', { now: 'x', epochMs: '1' })
    // @ts-expect-error the payload of another event
    stream.send('tick', { tokens: 2 })
    // @ts-expect-error a text event takes a string
    stream.send('token', 42)
    // @ts-expect-error no payload
    stream.send('done')
    // @ts-expect-error an id is a string or a number
    stream.send('token', 'x', { id: true })
    // @ts-expect-error retry is a number
    stream.send('token', 'x', { retry: '10' })

    const lastId: string | undefined = stream.lastEventId
    // @ts-expect-error lastEventId may be undefined
    const notAlways: string = stream.lastEventId
    const isOpen: boolean = stream.isOpen
    const signal: AbortSignal = stream.signal
    stream.onClose((reason) => { expectType<Equal<typeof reason, CloseReason>>() })
    const drained: Promise<boolean> = stream.drained()
    void [written, lastId, notAlways, isOpen, signal, drained, request]
  })
}

export async function fromIsTyped (stream: SseStream<Clock>): Promise<void> {
  await stream.from([{ event: 'tick', data: { now: 'x', epochMs: 1 } }, { event: 'token', data: 'a', id: 3 }])
  async function * tokens (): AsyncGenerator<SseMessage<Clock>> {
    yield { event: 'token', data: 'a' }
    // @ts-expect-error a message whose data does not match its event
    yield { event: 'token', data: { tokens: 1 } }
  }
  await stream.from(tokens())
  // @ts-expect-error a message of an undeclared event
  await stream.from([{ event: 'tock', data: 1 }])
}

export function helperTypes (): void {
  expectType<Equal<EventName<ClockSchemas>, 'tick' | 'token' | 'done'>>()
  expectType<Equal<EventData<ClockSchemas, 'tick'>, { now: string, epochMs: number }>>()
  expectType<Equal<EventData<ClockSchemas, 'token'>, string>>()
  // @ts-expect-error EventData of an undeclared event
  expectType<Equal<EventData<ClockSchemas, 'tock'>, never>>()
  expectType<Equal<SseMessage<Clock>, SseMessage<ClockSchemas>>>()
}

export async function routeOptionIsTyped (): Promise<void> {
  const app = Fastify()
  await app.register(sse)
  app.get('/gen', { sse: clock }, async function * () {
    yield { event: 'token', data: 'a' }
  })
  // @ts-expect-error a generator handler's yields are checked against the route's catalog
  app.get('/tock', { sse: clock }, async function * () { yield { event: 'tock', data: 1 } })
  // @ts-expect-error ... their data too
  app.get('/bad-data', { sse: clock }, async function * () { yield { event: 'tick', data: { now: 1 } } })
  // @ts-expect-error the route option takes a catalog
  app.get('/bad', { sse: { tick: Type.String() } }, async () => {})

  app.get('/time', { sse: clock }, (request, reply) => {
    // reply.sse() takes no catalog in a { sse } route, and returns a stream of the route's catalog.
    const stream = reply.sse()
    expectType<Equal<typeof stream, SseStream<Clock>>>()
    stream.send('tick', { now: 'x', epochMs: 1 })
    reply.sse({ maxDurationMs: 60_000 })
    // @ts-expect-error another catalog than the route's
    reply.sse(scores)
    void request
  })
  // A route declaring its Reply may also answer JSON (a snapshot for non-stream requests).
  app.get<{ Reply: { now: string } }>('/snapshot', { sse: clock }, async () => ({ now: 'x' }))
}

export async function channelsAreTyped (): Promise<void> {
  const app = Fastify()
  await app.register(sse)
  const channel = app.sse.channel('scores', scores, {
    history: true,
    onResync (stream, info) {
      // onResync's stream is typed by the channel's catalog.
      expectType<Equal<typeof stream, SseStream<typeof scores>>>()
      expectType<Equal<typeof info, Resync>>()
      stream.send('score', { home: 0, away: 0 })
      // @ts-expect-error an event the channel's catalog does not declare
      stream.send('snapshot', {})
    }
  })
  await channel.publish('score', { home: 1, away: 0 })
  // @ts-expect-error publish checks the payload against the channel's catalog
  await channel.publish('score', { home: '1', away: 0 })
  app.get('/scores', (request, reply) => {
    void channel.subscribe(reply.sse(scores))
    // A stream whose catalog declares every event of the channel's (and more) may subscribe.
    void channel.subscribe(reply.sse(scoresAndNotes), { filter: (message) => message.data.home > 0 })
    // @ts-expect-error a clock stream cannot subscribe to the scores channel
    void channel.subscribe(reply.sse(clock))
    void request
  })
}
