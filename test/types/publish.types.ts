/**
 * Type test, checked by `tsc --noEmit` (never run): what `publish()` resolves with follows
 * the channel's `history` option: the event's id (`string`) with history, `undefined`
 * without, either when the compiler cannot know.
 */
import Fastify from 'fastify'
import sse, { defineEvents, Type, type ChannelOptions, type EventCatalog } from '../../lib/index.js'

const scores = defineEvents({ score: Type.Object({ home: Type.Integer() }) })

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
function expectType<T extends true> (_value?: T): void {}

export async function publishFollowsHistory (options: ChannelOptions<EventCatalog<typeof scores.schemas>>): Promise<void> {
  const app = Fastify()
  await app.register(sse)
  const withHistory = await app.sse.channel('a', scores, { history: true }).publish('score', { home: 1 })
  expectType<Equal<typeof withHistory, string>>()
  const bounded = await app.sse.channel('b', scores, { history: { maxEvents: 10 } }).publish('score', { home: 1 })
  expectType<Equal<typeof bounded, string>>()
  const without = await app.sse.channel('c', scores).publish('score', { home: 1 })
  expectType<Equal<typeof without, undefined>>()
  const explicitlyWithout = await app.sse.channel('d', scores, { history: false, idleMs: 1000 }).publish('score', { home: 1 })
  expectType<Equal<typeof explicitlyWithout, undefined>>()
  const unknown = await app.sse.channel('e', scores, options).publish('score', { home: 1 })
  expectType<Equal<typeof unknown, string | undefined>>()
  // @ts-expect-error without history there is no id to use
  const id: string = await app.sse.channel('f', scores).publish('score', { home: 1 })
  void id
}
