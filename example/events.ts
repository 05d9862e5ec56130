/**
 * The example's event catalogs, in a module of their own so the server, the tests
 * and (later) the typed browser client share one definition.
 */
import { defineEvents, Type } from '../lib/index.js'

/**
 * Events of `GET /time`: one `tick` per second with the server's clock.
 *
 * @example
 * stream.send('tick', { now: new Date().toISOString(), epochMs: Date.now() })
 */
export const clock = defineEvents({
  tick: Type.Object({
    /** ISO 8601 time on the server. */
    now: Type.String(),
    /** The same instant in ms since the epoch, for clients that format it themselves. */
    epochMs: Type.Integer()
  })
})

/** One match's score: every event carries the whole score, so the latest one per match is the state. */
export const Score = Type.Object({
  match: Type.String({ minLength: 1, maxLength: 40 }),
  home: Type.Integer({ minimum: 0, maximum: 999 }),
  away: Type.Integer({ minimum: 0, maximum: 999 })
})

/**
 * Events of `GET /scores`: the live scoreboard, broadcast on the `scores` channel.
 *
 * @example
 * await scores.publish('score', { match: 'AUS-NZL', home: 2, away: 1 })
 */
export const scoreboard = defineEvents({ score: Score })

/** What a page watching the scoreboard tells about itself (the "who is watching" card). */
export const Viewer = Type.Object({ name: Type.String({ minLength: 1, maxLength: 40 }) })

/**
 * Events of `GET /stats`: the server's own figures, from `app.sse.stats()`, once per
 * period, for the page's live view of the server.
 *
 * @example
 * stream.send('figures', { openStreams: 3, eventsPerSecond: 12, bytesPerSecond: 900, replays: 1, atMs: Date.now() })
 */
export const serverFigures = defineEvents({
  figures: Type.Object({
    /** Streams open now on this instance. */
    openStreams: Type.Integer({ minimum: 0 }),
    /** Events sent to clients per second over the last period. */
    eventsPerSecond: Type.Number({ minimum: 0 }),
    /** Bytes written to clients per second over the last period (heartbeats included). */
    bytesPerSecond: Type.Number({ minimum: 0 }),
    /** Replays served since start (reconnects that got what they missed). */
    replays: Type.Integer({ minimum: 0 }),
    /** When these figures were taken, in ms since the epoch. */
    atMs: Type.Integer()
  })
})
