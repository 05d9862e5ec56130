/**
 * The Redis engine's figures: publish-to-receive latency across two instances, and
 * events per second through Redis to 100 subscribers. Two Fastify apps (A publishes,
 * B serves the clients) share one Redis; clients are raw sockets in this process.
 *
 *   node --import tsx bench/redis.ts            (starts a private redis-server)
 *   REDIS_URL=redis://127.0.0.1:6379 node --import tsx bench/redis.ts
 *
 * Options (env): LATENCY_EVENTS (2000), THROUGHPUT_EVENTS (20000), SUBSCRIBERS (100).
 */
import Fastify, { type FastifyInstance } from 'fastify'
import { connect } from 'node:net'
import sse, { memoryEngine, type Channel, type SseEngine } from '../lib/index.js'
import { redisEngine } from '../lib/redis.js'
import { freePort, REDIS_MISSING, RedisServer } from '../test/helpers/redis.js'
import { ResponseParser } from './client/parser.js'
import { clockMs, makeScore } from './payload.js'
import { benchEvents, type BenchSchemas } from './servers/catalog.js'

const LATENCY_EVENTS = Number(process.env.LATENCY_EVENTS ?? 2000)
const THROUGHPUT_EVENTS = Number(process.env.THROUGHPUT_EVENTS ?? 20_000)
const SUBSCRIBERS = Number(process.env.SUBSCRIBERS ?? 100)
/** Publishes in flight at once in the throughput run. */
const WINDOW = 256
const WARMUP = 200

interface Instance { app: FastifyInstance, channel: Channel<BenchSchemas>, port: number }

async function instance (engine: SseEngine, history: boolean): Promise<Instance> {
  const app = Fastify({ logger: false })
  await app.register(sse, { heartbeatMs: false, engine })
  const channel = app.sse.channel('bench', benchEvents, { history })
  app.get('/sse', async (_request, reply) => { await channel.subscribe(reply.sse(benchEvents)) })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, channel, port: (app.server.address() as { port: number }).port }
}

/** Opens `count` raw clients on `port`; `onEvent` gets every event's seq and t. */
async function clients (port: number, count: number, onEvent: (seq: number, t: number) => void, readsTime: boolean): Promise<() => void> {
  const sockets = await Promise.all(Array.from({ length: count }, async () => await new Promise<ReturnType<typeof connect>>((resolve, reject) => {
    const parser = new ResponseParser(onEvent)
    parser.readsTime = readsTime
    const socket = connect({ host: '127.0.0.1', port })
    parser.onOpen = () => resolve(socket)
    socket.on('data', (chunk: Buffer) => parser.feed(chunk))
    socket.on('error', reject)
    socket.write(`GET /sse HTTP/1.1\r\nhost: 127.0.0.1\r\naccept: text/event-stream\r\n\r\n`)
  })))
  return () => { for (const socket of sockets) socket.destroy() }
}

function percentile (sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]
}

/** One event at a time, A to a client on B: the unloaded publish-to-receive latency. */
async function latency (a: Instance, b: Instance): Promise<string> {
  let received: (() => void) | undefined
  const samples: number[] = []
  const close = await clients(b.port, 1, (_seq, t) => {
    samples.push(clockMs() - t)
    received?.()
  }, true)
  while (b.channel.size < 1) await new Promise((resolve) => setTimeout(resolve, 5))
  for (let seq = 0; seq < WARMUP + LATENCY_EVENTS; seq++) {
    const arrived = new Promise<void>((resolve) => { received = resolve })
    void a.channel.publish('score', makeScore(seq, clockMs()))
    await arrived
  }
  close()
  const sorted = samples.slice(WARMUP).sort((x, y) => x - y)
  return `p50 ${percentile(sorted, 0.5).toFixed(3)} ms, p99 ${percentile(sorted, 0.99).toFixed(3)} ms, max ${sorted[sorted.length - 1].toFixed(3)} ms (${sorted.length} events)`
}

/** As fast as A can publish, to SUBSCRIBERS clients on B: events/s end to end. */
async function throughput (a: Instance, b: Instance): Promise<string> {
  let deliveries = 0
  const total = THROUGHPUT_EVENTS * SUBSCRIBERS
  let done: (() => void) | undefined
  const allDone = new Promise<void>((resolve) => { done = resolve })
  const close = await clients(b.port, SUBSCRIBERS, () => { if (++deliveries === total) done?.() }, false)
  while (b.channel.size < SUBSCRIBERS) await new Promise((resolve) => setTimeout(resolve, 5))
  const startedAt = clockMs()
  let next = 0
  await Promise.all(Array.from({ length: WINDOW }, async () => {
    while (next < THROUGHPUT_EVENTS) {
      await a.channel.publish('score', makeScore(next++, 0))
      // Let sockets drain now and then, as a live server would between publishes
      // (the in-memory engine's publish never waits, and would fill every queue).
      if (next % 100 === 0) await new Promise((resolve) => setImmediate(resolve))
    }
  }))
  const publishedMs = clockMs() - startedAt
  const timer = setTimeout(() => { console.log(`  incomplete: ${deliveries} of ${total} deliveries, ${b.channel.size} subscribers left`); done?.() }, 60_000)
  await allDone
  clearTimeout(timer)
  const ms = clockMs() - startedAt
  close()
  return `${THROUGHPUT_EVENTS} events to ${SUBSCRIBERS} subscribers in ${ms.toFixed(0)} ms: ` +
    `${Math.round(THROUGHPUT_EVENTS / ms * 1000)} events/s, ${Math.round(total / ms * 1000)} deliveries/s ` +
    `(publishes acknowledged at ${Math.round(THROUGHPUT_EVENTS / publishedMs * 1000)}/s while delivering)`
}

async function run (label: string, makeEngine: () => SseEngine, history: boolean): Promise<void> {
  const a = await instance(makeEngine(), history)
  const b = await instance(makeEngine(), history)
  console.log(`${label}\n  latency:    ${await latency(a, b)}\n  throughput: ${await throughput(a, b)}`)
  await a.app.close()
  await b.app.close()
}

/** The in-memory engine's latency, for scale (one instance: A is B). */
async function baseline (): Promise<void> {
  const a = await instance(memoryEngine(), true)
  console.log(`memory engine, one instance (baseline)\n  latency:    ${await latency(a, a)}`)
  await a.app.close()
}

let server: RedisServer | undefined
let url = process.env.REDIS_URL
if (url === undefined) {
  if (REDIS_MISSING !== undefined) throw new Error(REDIS_MISSING)
  server = new RedisServer(await freePort())
  await server.start()
  url = server.url
}
const redisUrl = url
try {
  await baseline()
  // A and B of one run share a prefix; runs do not.
  await run('redis engine, A -> B, history (XADD + PUBLISH script)', () => redisEngine({ url: redisUrl, prefix: 'bench-history:' }), true)
  await run('redis engine, A -> B, no history (PUBLISH)', () => redisEngine({ url: redisUrl, prefix: 'bench-live:' }), false)
} finally {
  await server?.kill('SIGTERM')
}
