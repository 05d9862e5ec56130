/**
 * Where the microseconds of one small-streams publish go, step by step: each step of
 * the plugin's path (and the raw floor's) run alone in a tight loop over 200 channels'
 * worth of tokens, with the library's own functions. CPU time per call, median of
 * ROUNDS. A profile (`npm run bench -- small-streams --cpu-prof`) shows the same steps
 * inside the real run, mixed with the socket writes; this separates them.
 *
 *   npm run build && node dist/bench/streams-breakdown.js
 *
 * Options (env): CALLS (200000), ROUNDS (5).
 */
import { randomBytes } from 'node:crypto'
import { compiledEvent, serializePayload } from '../lib/core/catalog.js'
import { decode, encode } from '../lib/engine/redis/codec.js'
import { eventText } from '../lib/core/frame.js'
import { RingHistory } from '../lib/engine/history.js'
import { parsePayload } from '../lib/core/catalog.js'
import { makeToken } from './payload.js'
import { printSteps, type Step } from './steps.js'
import { benchEvents } from './servers/catalog.js'

const CHANNELS = 200

const compiled = compiledEvent(benchEvents, 'token')
const tokens = Array.from({ length: 1000 }, (_, seq) => makeToken(seq, 1_765_000_000_000 + seq))
const texts = tokens.map((token) => serializePayload(compiled, token))
const boot = Date.now().toString(36) + randomBytes(3).toString('hex')
const rings = Array.from({ length: CHANNELS }, () => new RingHistory({ maxEvents: 1000, maxAgeMs: false }, (at) => `${boot}_${at}`))
const heard = texts.map((text, i) => encode(`1765000000000-${i}`, 'token', text, 1_765_000_000_000))

const steps: Step[] = [
  ['raw floor: JSON.stringify + frame template + Buffer.from', (i) => Buffer.from(`event: token\ndata: ${JSON.stringify(tokens[i % 1000])}\n\n`)],
  ['validation (TypeBox Check)', (i) => compiled.check.Check(tokens[i % 1000])],
  ['validation + serialization (serializePayload)', (i) => serializePayload(compiled, tokens[i % 1000])],
  ['serialization alone (JSON.stringify, for scale)', (i) => JSON.stringify(tokens[i % 1000])],
  ['frame without id (eventText + Buffer.from)', (i) => Buffer.from(eventText('token', texts[i % 1000]))],
  ['frame with id (eventText + Buffer.from)', (i) => Buffer.from(eventText('token', texts[i % 1000], `${boot}_${i + 1}`))],
  ['the id string (boot_position)', (i) => `${boot}_${i + 1}`],
  ['the ring (RingHistory.append, 200 rings of 1000)', (i) => rings[i % CHANNELS].append(i + 1, { id: undefined, event: 'token', data: texts[i % 1000] })],
  ['the promise (Promise.resolve)', (i) => Promise.resolve(i)],
  ['the engine message object', (i) => ({ id: undefined, event: 'token', data: texts[i % 1000], payload: tokens[i % 1000], publishedAt: i })],
  ['Date.now() (publishedAt)', () => Date.now()],
  ['cork scheduling: a nextTick per publish (before)', () => process.nextTick(noop)],
  ['Redis: decode a heard message (codec)', (i) => decode(heard[i % 1000])],
  ['Redis: parse + check a heard payload (parsePayload)', (i) => parsePayload(compiled, texts[i % 1000])]
]

function noop (): void {}

await printSteps(steps)
