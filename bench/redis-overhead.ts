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
import Fastify from 'fastify'
import { connect, type Socket } from 'node:net'
import { setImmediate as nextTurn } from 'node:timers/promises'
import sse, { memoryEngine, type SseEngine } from '../lib/index.js'
import { redisEngine } from '../lib/redis.js'
import { freePort, REDIS_MISSING, RedisServer } from '../test/helpers/redis.js'
import { ResponseParser } from './client/parser.js'
import { makeScore } from './payload.js'
import { benchEvents } from './servers/catalog.js'

const EVENTS = Number(process.env.EVENTS ?? 5000)
const SUBSCRIBERS = Number(process.env.SUBSCRIBERS ?? 1)
const ROUNDS = Number(process.env.ROUNDS ?? 5)
/** Deadline of one round's deliveries. */
const TIMEOUT_MS = 60_000

interface Cost {
  userUs: number
  systemUs: number
}

async function openClients (port: number, onEvent: () => void): Promise<Socket[]> {
  return await Promise.all(Array.from({ length: SUBSCRIBERS }, async () => await new Promise<Socket>((resolve, reject) => {
    const parser = new ResponseParser(onEvent)
    const socket = connect({ host: '127.0.0.1', port })
    parser.onOpen = () => resolve(socket)
    socket.on('data', (chunk: Buffer) => parser.feed(chunk))
    socket.on('error', reject)
    socket.write('GET /sse HTTP/1.1\r\nhost: 127.0.0.1\r\naccept: text/event-stream\r\n\r\n')
  })))
}

/** CPU of this process per publish, from the first publish to the last delivery. */
async function measure (engine: SseEngine): Promise<Cost> {
  const app = Fastify({ logger: false })
  await app.register(sse, { heartbeatMs: false, engine })
  const channel = app.sse.channel('bench', benchEvents, { history: true })
  app.get('/sse', async (_request, reply) => { await channel.subscribe(reply.sse(benchEvents)) })
  await app.listen({ port: 0, host: '127.0.0.1' })
  try {
    let received = 0
    let done: (() => void) | undefined
    const all = new Promise<void>((resolve, reject) => {
      done = resolve
      setTimeout(() => reject(new Error(`${received} of ${EVENTS * SUBSCRIBERS} deliveries within ${TIMEOUT_MS} ms`)), TIMEOUT_MS).unref()
    })
    const sockets = await openClients((app.server.address() as { port: number }).port, () => { if (++received === EVENTS * SUBSCRIBERS) done?.() })
    for (let turn = 0; channel.size < SUBSCRIBERS; turn++) {
      if (turn > 1000) throw new Error(`${channel.size} of ${SUBSCRIBERS} subscribed after 1000 turns`)
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    const before = process.cpuUsage()
    for (let seq = 0; seq < EVENTS; seq++) {
      await channel.publish('score', makeScore(seq, 0))
      await nextTurn()
    }
    await all
    const { user, system } = process.cpuUsage(before)
    for (const socket of sockets) socket.destroy()
    return { userUs: user / EVENTS, systemUs: system / EVENTS }
  } finally {
    await app.close()
  }
}

function median (values: number[]): number {
  return [...values].sort((a, b) => a - b)[values.length >> 1]
}

function summary (costs: Cost[]): string {
  const user = median(costs.map((cost) => cost.userUs))
  const system = median(costs.map((cost) => cost.systemUs))
  return `${(user + system).toFixed(1)} us (user ${user.toFixed(1)}, system ${system.toFixed(1)})`
}

if (REDIS_MISSING !== undefined) throw new Error(REDIS_MISSING)
const server = new RedisServer(await freePort())
await server.start()
try {
  const memory: Cost[] = []
  const redis: Cost[] = []
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
