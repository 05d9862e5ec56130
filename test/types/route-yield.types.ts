/**
 * Type test, checked by `tsc --noEmit` (never run): a `{ sse }` route generator that
 * declares its yield type gets a wrong yield reported at the yield itself, with the
 * missing property named, under TypeScript 5.9 and 7 alike (without the annotation, 7
 * reports only the last overload's error: "'sse' does not exist in type
 * RouteShorthandOptions"; docs/streams.md says so).
 */
import Fastify from 'fastify'
import sse, { defineEvents, Type, type SseMessage } from '../../lib/index.js'

const clock = defineEvents({ tick: Type.Object({ now: Type.String(), epochMs: Type.Integer() }) })

export async function annotatedYield (): Promise<void> {
  const app = Fastify()
  await app.register(sse)
  app.get('/time', { sse: clock }, async function * (): AsyncGenerator<SseMessage<typeof clock>> {
    yield { event: 'tick', data: { now: 'x', epochMs: 1 } }
    // @ts-expect-error epochMs is missing: reported on this line, not on the route
    yield { event: 'tick', data: { now: 'x' } }
  })
}
