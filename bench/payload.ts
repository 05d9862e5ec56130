/**
 * What the contenders publish, and the clock both sides read.
 *
 * Every payload starts with `{"seq":<integer>,"t":<ms>,`: the load generator reads
 * those two fields straight from the bytes to check order and loss (`seq`) and to
 * measure publish-to-receive latency (`t`), without parsing the rest of the JSON.
 */
import { performance } from 'node:perf_hooks'

/**
 * Milliseconds since the epoch with sub-millisecond resolution. Each process takes
 * its `timeOrigin` from the wall clock at start and adds its monotonic clock, so the
 * server and the load generator on one machine agree to a few microseconds.
 */
export function clockMs (): number {
  return performance.timeOrigin + performance.now()
}

/** The two kinds of event: a ~200 B score update (fan-out, latency) and a ~50 B token (single stream). */
export type PayloadKind = 'score' | 'token'

/** A live sports score, about 200 bytes of JSON. */
export interface Score {
  seq: number
  t: number
  match: string
  competition: string
  home: { team: string, score: number }
  away: { team: string, score: number }
  minute: number
  status: 'live' | 'half-time' | 'full-time'
  lastEvent: string
}

/** A small event, such as one token of a streamed answer. */
export interface Token {
  seq: number
  t: number
  token: string
}

const LAST_EVENTS = ['try', 'conversion', 'penalty goal', 'drop goal', 'yellow card', 'scrum']
const TOKENS = ['the', ' quick', ' brown', ' fox', ' jumps', ' over', ' the', ' lazy', ' dog', '.']

/** A score update: fields change with `seq`, as a real feed's would. */
export function makeScore (seq: number, t: number): Score {
  return {
    seq,
    t,
    match: 'AUS-NZL-2025-08-16',
    competition: 'The Rugby Championship',
    home: { team: 'Australia', score: (seq * 3) % 61 },
    away: { team: 'New Zealand', score: (seq * 7) % 59 },
    minute: seq % 81,
    status: 'live',
    lastEvent: LAST_EVENTS[seq % LAST_EVENTS.length]
  }
}

/** A token event. */
export function makeToken (seq: number, t: number): Token {
  return { seq, t, token: TOKENS[seq % TOKENS.length] }
}

/** The payload of kind `kind` for event `seq`, stamped with the publish time `t`. */
export function makePayload (kind: PayloadKind, seq: number, t: number): Score | Token {
  return kind === 'score' ? makeScore(seq, t) : makeToken(seq, t)
}
