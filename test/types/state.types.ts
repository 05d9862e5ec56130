/**
 * Type test, checked by `tsc --noEmit` (never run): a channel's `state` key functions
 * get their event's data; presence info is typed by its schema at subscribe and in
 * `presence()`; the client's `state()` map is typed from the catalog.
 */
import Fastify from 'fastify'
import { createClient } from '../../lib/client.js'
import sse, { defineEvents, Type, type SseStream } from '../../lib/index.js'

const prices = defineEvents({
  price: Type.Object({ symbol: Type.String(), value: Type.Number() }),
  halt: Type.Object({ symbol: Type.String() })
})

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
function expectType<T extends true> (_value?: T): void {}

export async function stateIsTyped (stream: SseStream<typeof prices>): Promise<void> {
  const app = Fastify()
  await app.register(sse)
  const channel = app.sse.channel('prices', prices, { history: true, state: { price: (d) => d.symbol, halt: (d) => d.symbol } })
  // @ts-expect-error the key function gets the event's data: `price` has no `name`
  app.sse.channel('p2', prices, { history: true, state: { price: (d) => d.name } })
  // @ts-expect-error an event the catalog does not declare
  app.sse.channel('p3', prices, { history: true, state: { tick: (d: any) => d.symbol } })
  await channel.subscribe(stream, { snapshot: true })
  const [entry] = await channel.state()
  expectType<Equal<typeof entry.key, string>>()
  expectType<Equal<typeof entry.id, string>>()

  const room = app.sse.channel('room', prices, { history: true, presence: { info: Type.Object({ name: Type.String() }), events: true } })
  await room.subscribe(stream, { presence: { id: 'u1', info: { name: 'Ann' } } })
  // @ts-expect-error info is typed by the presence schema
  await room.subscribe(stream, { presence: { id: 'u1', info: { name: 1 } } })
  const [member] = await room.presence()
  expectType<Equal<typeof member.info, { name: string }>>()
  expectType<Equal<typeof member.connections, number>>()
}

export function clientStateIsTyped (): void {
  const client = createClient<typeof prices>('/prices')
  const map = client.state('price', (d) => d.symbol)
  expectType<Equal<typeof map, ReadonlyMap<string, { symbol: string, value: number }>>>()
  // @ts-expect-error the key function gets the event's data
  client.state('price', (d) => d.name)
  // @ts-expect-error an event the catalog does not declare
  client.state('tick', (d: any) => d)
  const present = client.presence<{ name: string }>()
  expectType<Equal<typeof present, ReadonlyMap<string, { name: string }>>>()
}
