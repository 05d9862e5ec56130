/**
 * The Redis engine's own share of a small-streams message, in CPU: CHANNELS channels,
 * one token per channel per round (a round's publishes in one turn, awaited together),
 * every message heard back on this instance; the engine alone (`redisEngine().channel()`
 * with a listener that only counts), against bare ioredis doing the floor's round trips
 * (`ioredis-floor`: a one-key XADD+PUBLISH script per token, one subscriber connection,
 * the id and event split out of each message). No HTTP, no channel layer, no sockets
 * to readers: what is left is what the engine adds to the floor, user and system time
 * apart, both measured in turns in this process.
 *
 *   npm run build && node dist/bench/redis-streams-ab.js   (starts a private redis-server)
 *
 * Options (env): CHANNELS (200), ROUNDS (300), REPS (5), ONLY (floor or engine: one
 * side alone, e.g. under --cpu-prof).
 */
import { setImmediate as nextTurn } from 'node:timers/promises'
import { loadavg } from 'node:os'
import { Redis } from 'ioredis'
import { redisEngine } from '../lib/redis.js'
import type { EngineChannel, EngineMessage } from '../lib/engine/engine.js'
import { freePort, REDIS_MISSING, RedisServer } from '../test/helpers/redis.js'

const CHANNELS = Number(process.env.CHANNELS ?? 200)
const ROUNDS = Number(process.env.ROUNDS ?? 300)
const REPS = Number(process.env.REPS ?? 5)
const ONLY = process.env.ONLY
const WARMUP_ROUNDS = 50
const HISTORY = { maxEvents: 1000, maxAgeMs: false as const }

interface Cost { userUs: number, systemUs: number }

const APPEND = `
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'e', ARGV[1], 'd', ARGV[2])
redis.call('PUBLISH', KEYS[1], id .. '\\n' .. ARGV[1] .. '\\n' .. ARGV[2])
return id
`

function token (seq: number): string {
  return JSON.stringify({ seq, t: Date.now(), text: ' lorem ipsum' })
}

/** Runs `rounds` rounds; resolves once every message was heard. */
async function drive (publish: (channel: number, seq: number) => Promise<unknown>, heard: () => number, rounds: number, seqStart: number): Promise<void> {
  const target = heard() + rounds * CHANNELS
  for (let round = 0; round < rounds; round++) {
    if (round > 0) await nextTurn()
    const pending: Array<Promise<unknown>> = []
    for (let channel = 0; channel < CHANNELS; channel++) pending.push(publish(channel, seqStart + round))
    await Promise.all(pending)
  }
  for (let turn = 0; heard() < target; turn++) {
    if (turn > 10_000) throw new Error(`${heard()} of ${target} heard`)
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
}

async function measure (run: (rounds: number, seqStart: number) => Promise<void>): Promise<Cost> {
  await run(WARMUP_ROUNDS, 0)
  const before = process.cpuUsage()
  await run(ROUNDS, WARMUP_ROUNDS)
  const { user, system } = process.cpuUsage(before)
  const messages = ROUNDS * CHANNELS
  return { userUs: user / messages, systemUs: system / messages }
}

async function floor (url: string, prefix: string): Promise<Cost> {
  const commands = new Redis(url) as Redis & { benchAppend: (key: string, event: string, data: string, maxLen: number) => Promise<string> }
  commands.defineCommand('benchAppend', { numberOfKeys: 1, lua: APPEND })
  const subscriber = new Redis(url)
  let heard = 0
  let last = ''
  subscriber.on('message', (_key: string, message: string) => {
    const idEnd = message.indexOf('\n')
    const eventEnd = message.indexOf('\n', idEnd + 1)
    last = message.slice(0, idEnd) + message.slice(idEnd + 1, eventEnd)
    heard++
  })
  const keys = Array.from({ length: CHANNELS }, (_, i) => `${prefix}s${i}`)
  await subscriber.subscribe(...keys)
  try {
    return await measure(async (rounds, seqStart) => await drive((channel, seq) => commands.benchAppend(keys[channel], 'token', token(seq), 1000), () => heard, rounds, seqStart))
  } finally {
    if (last === '') throw new Error('nothing heard')
    commands.disconnect()
    subscriber.disconnect()
  }
}

async function engine (url: string, prefix: string): Promise<Cost> {
  const sse = redisEngine({ url, prefix })
  await sse.ready?.()
  let heard = 0
  let last: EngineMessage | undefined
  const listener = { deliver: (message: EngineMessage) => { last = message; heard++ }, gap: () => { throw new Error('gap') } }
  const channels: EngineChannel[] = Array.from({ length: CHANNELS }, (_, i) => sse.channel(`s${i}`, HISTORY, listener))
  await Promise.all(channels.map(async (channel) => await channel.ready?.()))
  try {
    return await measure(async (rounds, seqStart) => await drive((channel, seq) => channels[channel].publish({ event: 'token', data: token(seq), publishedAt: Date.now() }), () => heard, rounds, seqStart))
  } finally {
    if (last === undefined) throw new Error('nothing heard')
    for (const channel of channels) channel.close()
    await sse.close()
  }
}

function median (values: number[]): number {
  return [...values].sort((a, b) => a - b)[values.length >> 1]
}

const show = (cost: Cost): string => `${(cost.userUs + cost.systemUs).toFixed(2)} (user ${cost.userUs.toFixed(2)}, sys ${cost.systemUs.toFixed(2)})`

if (REDIS_MISSING !== undefined) throw new Error(REDIS_MISSING)
const server = new RedisServer(await freePort())
await server.start()
try {
  const floors: Cost[] = []
  const engines: Cost[] = []
  for (let rep = 0; rep < REPS; rep++) {
    floors.push(ONLY === 'engine' ? { userUs: 0, systemUs: 0 } : await floor(server.url, `ab${rep}f:`))
    engines.push(ONLY === 'floor' ? { userUs: 0, systemUs: 0 } : await engine(server.url, `ab${rep}e:`))
    const f = floors[rep]
    const e = engines[rep]
    console.log(`rep ${rep + 1}: floor ${show(f)}  engine ${show(e)}  extra ${(e.userUs + e.systemUs - f.userUs - f.systemUs).toFixed(2)} us (user ${(e.userUs - f.userUs).toFixed(2)})  load ${loadavg()[0].toFixed(1)}`)
  }
  const extra = engines.map((e, i) => e.userUs + e.systemUs - floors[i].userUs - floors[i].systemUs)
  const extraUser = engines.map((e, i) => e.userUs - floors[i].userUs)
  console.log(`median µs per message: floor ${median(floors.map((c) => c.userUs + c.systemUs)).toFixed(2)}, engine ${median(engines.map((c) => c.userUs + c.systemUs)).toFixed(2)}; engine extra ${median(extra).toFixed(2)} (user ${median(extraUser).toFixed(2)})`)
} finally {
  await server.kill('SIGTERM')
}
