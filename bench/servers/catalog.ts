/**
 * The benchmark's events as a fastify-typed-sse catalog: TypeBox schemas matching
 * bench/payload.ts, so every send or publish of the plugin validates the full payload.
 */
import { defineEvents, Type } from '../../lib/index.js'

const Side = Type.Object({ team: Type.String(), score: Type.Integer({ minimum: 0 }) })

const schemas = {
  score: Type.Object({
    seq: Type.Integer({ minimum: 0 }),
    t: Type.Number(),
    match: Type.String(),
    competition: Type.String(),
    home: Side,
    away: Side,
    minute: Type.Integer({ minimum: 0, maximum: 130 }),
    status: Type.Union([Type.Literal('live'), Type.Literal('half-time'), Type.Literal('full-time')]),
    lastEvent: Type.String()
  }),
  token: Type.Object({
    seq: Type.Integer({ minimum: 0 }),
    t: Type.Number(),
    token: Type.String()
  })
}

/** The schemas of {@link benchEvents}. */
export type BenchSchemas = typeof benchEvents

/** The catalog both plugin contenders use. */
export const benchEvents = defineEvents(schemas)
