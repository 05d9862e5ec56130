/**
 * What the Redis engine adds to one publish, in CPU: one app, a channel with history,
 * a few subscribers (raw sockets in this process), every publish awaited and one per
 * event-loop turn (as in the fan-out benchmark), on the in-memory engine and on the
 * Redis engine in turns. The difference per publish is the engine's cost, split into
 * user time (JavaScript: ioredis, the codec, the promise chain) and system time (the
 * kernel: the round trip's writes, reads and wake-ups on loopback), which `npm run
 * bench` cannot separate from the fan-out's socket writes.
 *
 *   npm run build && node dist/bench/redis-overhead.js   (starts a private redis-server)
 *
 * Options (env): EVENTS (5000), SUBSCRIBERS (1), ROUNDS (5).
 */
import { memoryEngine, type SseEngine } from '../lib/index.js'
import { redisEngine } from '../lib/redis.js'
import { freePort, REDIS_MISSING, RedisServer } from '../test/helpers/redis.js'
import { makeScore } from './payload.js'
import { publishCost, type PublishCost } from './publish-cost.js'

const EVENTS = Number(process.env.EVENTS ?? 5000)
const SUBSCRIBERS = Number(process.env.SUBSCRIBERS ?? 1)
const ROUNDS = Number(process.env.ROUNDS ?? 5)
/** Deadline of one round's deliveries. */
const TIMEOUT_MS = 60_000

/** CPU of this process per publish, from the first publish to the last delivery. */
async function measure (engine: SseEngine): Promise<PublishCost> {
  return await publishCost({ engine, channel: { history: true }, subscribers: SUBSCRIBERS, events: EVENTS, timeoutMs: TIMEOUT_MS, score: (seq) => makeScore(seq, 0) })
}

function median (values: number[]): number {
  return [...values].sort((a, b) => a - b)[values.length >> 1]
}

function summary (costs: PublishCost[]): string {
  const user = median(costs.map((cost) => cost.userUs))
  const system = median(costs.map((cost) => cost.systemUs))
  return `${(user + system).toFixed(1)} us (user ${user.toFixed(1)}, system ${system.toFixed(1)})`
}

if (REDIS_MISSING !== undefined) throw new Error(REDIS_MISSING)
const server = new RedisServer(await freePort())
await server.start()
try {
  const memory: PublishCost[] = []
  const redis: PublishCost[] = []
  // In turns, so drift (other load on the machine) touches both alike.
  for (let round = 0; round < ROUNDS; round++) {
    memory.push(await measure(memoryEngine()))
    redis.push(await measure(redisEngine({ url: server.url, prefix: `overhead-${round}:` })))
  }
  const extra = median(redis.map((cost) => cost.userUs + cost.systemUs)) - median(memory.map((cost) => cost.userUs + cost.systemUs))
  console.log([
    `CPU per awaited publish, ${SUBSCRIBERS} subscriber(s), ${EVENTS} events, median of ${ROUNDS}:`,
    `  memory engine: ${summary(memory)}`,
    `  redis engine:  ${summary(redis)}`,
    `  the Redis engine adds ${extra.toFixed(1)} us per publish`
  ].join('\n'))
} finally {
  await server.kill('SIGTERM')
}
