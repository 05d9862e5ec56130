/**
 * What keyed state costs. Fan-out: one app, a channel with history, subscribers on raw
 * sockets in this process, every publish awaited and one per event-loop turn
 * (publish-cost.ts, as redis-overhead.ts measures engines), with and without `state` in turns: the CPU per publish side
 * by side and their ratio (the target: state within 10 % of the plain channel). Memory:
 * the heap one key of state costs in the memory engine (KEYS distinct keys published on
 * a channel with `state`, against the same publishes without), and, with redis-server
 * installed, the bytes of the state hash per key in Redis (MEMORY USAGE).
 *
 *   npm run build && node --expose-gc dist/bench/state.js
 *
 * Options (env): EVENTS (5000), SUBSCRIBERS (100), KEYS (100; fan-out), MEMORY_KEYS
 * (50000), ROUNDS (5).
 */
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import sse, { memoryEngine, type SseEngine } from '../lib/index.js'
import { redisEngine } from '../lib/redis.js'
import { freePort, REDIS_MISSING, RedisServer } from '../test/helpers/redis.js'
import { makeScore } from './payload.js'
import { publishCost } from './publish-cost.js'
import { benchEvents } from './servers/catalog.js'

const EVENTS = Number(process.env.EVENTS ?? 5000)
const SUBSCRIBERS = Number(process.env.SUBSCRIBERS ?? 100)
const KEYS = Number(process.env.KEYS ?? 100)
const MEMORY_KEYS = Number(process.env.MEMORY_KEYS ?? 50_000)
const ROUNDS = Number(process.env.ROUNDS ?? 5)
/** Deadline of one round's deliveries. */
const TIMEOUT_MS = 120_000

/** The bench score, its match one of `keys`: the state key. */
function score (seq: number, keys: number): ReturnType<typeof makeScore> {
  return { ...makeScore(seq, 0), match: `M${seq % keys}` }
}

/** CPU of this process per publish (us), from the first publish to the last delivery. */
async function fanout (isKeyed: boolean): Promise<number> {
  const channel = isKeyed ? { history: true, state: { score: (d: ReturnType<typeof makeScore>) => d.match } } : { history: true }
  const { userUs, systemUs } = await publishCost({ engine: memoryEngine(), channel, subscribers: SUBSCRIBERS, events: EVENTS, timeoutMs: TIMEOUT_MS, score: (seq) => score(seq, KEYS) })
  return userUs + systemUs
}

function heapUsed (): number {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) throw new Error('run with node --expose-gc')
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

/** Heap after MEMORY_KEYS distinct keys were published (history as large, so only the state differs). */
async function heapWith (isKeyed: boolean): Promise<number> {
  const app = Fastify({ logger: false })
  await app.register(sse, { heartbeatMs: false, engine: memoryEngine() })
  const history = { maxEvents: MEMORY_KEYS }
  const channel = app.sse.channel('memory', benchEvents, isKeyed ? { history, state: { score: (d) => d.match }, maxKeys: MEMORY_KEYS } : { history })
  const before = heapUsed()
  for (let seq = 0; seq < MEMORY_KEYS; seq++) await channel.publish('score', score(seq, MEMORY_KEYS))
  const bytes = heapUsed() - before
  await app.close()
  return bytes
}

/** Bytes per key of a state hash in Redis, as MEMORY USAGE counts it. */
async function redisBytesPerKey (): Promise<number> {
  const server = new RedisServer(await freePort())
  await server.start()
  const engine: SseEngine = redisEngine({ url: server.url, prefix: 'bench:' })
  const app = Fastify({ logger: false })
  await app.register(sse, { heartbeatMs: false, engine })
  const admin = new Redis(server.url)
  try {
    const keys = Math.min(MEMORY_KEYS, 10_000)
    const channel = app.sse.channel('memory', benchEvents, { history: { maxEvents: 1 }, state: { score: (d) => d.match }, maxKeys: keys })
    for (let seq = 0; seq < keys; seq++) await channel.publish('score', score(seq, keys))
    const bytes = Number(await admin.call('MEMORY', 'USAGE', 'bench:ch:{memory}:state', 'SAMPLES', '0'))
    return bytes / keys
  } finally {
    admin.disconnect()
    await app.close()
    await server.kill('SIGTERM')
  }
}

function median (values: number[]): number {
  return [...values].sort((a, b) => a - b)[values.length >> 1]
}

const plain: number[] = []
const keyed: number[] = []
// In turns, so drift (other load on the machine) touches both alike.
for (let round = 0; round < ROUNDS; round++) {
  plain.push(await fanout(false))
  keyed.push(await fanout(true))
}
const plainHeap = await heapWith(false)
const keyedHeap = await heapWith(true)
const lines = [
  `Fan-out, CPU per awaited publish, ${SUBSCRIBERS} subscribers, ${EVENTS} events over ${KEYS} keys, median of ${ROUNDS}:`,
  `  plain channel (history):   ${median(plain).toFixed(1)} us`,
  `  channel with state:        ${median(keyed).toFixed(1)} us`,
  `  ratio state / plain:       ${(median(keyed) / median(plain)).toFixed(3)} (target <= 1.10)`,
  `Memory per key, memory engine (${MEMORY_KEYS} keys, beside a history of as many events): ${((keyedHeap - plainHeap) / MEMORY_KEYS).toFixed(0)} B`
]
if (REDIS_MISSING === undefined) lines.push(`Memory per key, Redis state hash (MEMORY USAGE, bench payload of about 300 B): ${(await redisBytesPerKey()).toFixed(0)} B`)
console.log(lines.join('\n'))
