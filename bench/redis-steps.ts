/**
 * Where the Redis engine's microseconds of one small-streams message go, step by step,
 * against what the floor (`ioredis-floor`) does for the same message: each step alone
 * in a tight loop, with the library's and ioredis's own code, no socket (an ioredis
 * command is built and written to its RESP text, as ioredis does before the write).
 * CPU time per call, median of ROUNDS. The socket writes, reads and wake-ups are left
 * out: `npm run bench -- small-streams` measures them with the rest, and
 * `bench/redis-streams-ab.ts` measures the engine against the floor over real Redis.
 *
 *   npm run build && node dist/bench/redis-steps.js
 *
 * Options (env): CALLS (200000), ROUNDS (5).
 */
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { encode, decode } from '../lib/engine/redis/codec.js'
import { publishArgument, publishLimits } from '../lib/engine/redis/scripts.js'
import { channelKeys } from '../lib/engine/redis/keys.js'
import { makeToken } from './payload.js'
import { printSteps, type Step } from './steps.js'


/** ioredis's command class: what `defineCommand`'s EVALSHA builds per call. */
interface RedisCommand { promise: Promise<unknown>, toWritable: (socket: object) => string }
const Command = (createRequire(import.meta.url)('ioredis/built/Command.js') as { default: new (name: string, args: unknown[]) => RedisCommand }).default

const SHA = 'f'.repeat(40)
const keys = channelKeys('bench:ch:{s7}')
const texts = Array.from({ length: 1000 }, (_, seq) => JSON.stringify(makeToken(seq, 1_765_000_000_000 + seq)))
const publisher = randomBytes(9).toString('base64url')
const limits = publishLimits(1000, 0, 86_400_000)
const floorHeard = texts.map((text, i) => `1765000000000-${i}\ntoken\n${text}`)
const engineHeard = texts.map((text, i) => encode(`1765000000000-${i} ${publisher}.${i.toString(36)} ${publisher}.${(i + 1).toString(36)}`, 'token', text, Date.now()))

/** Builds a command and its RESP text, as ioredis does before it writes; the promise is handled (never settled). */
function command (args: unknown[]): string {
  const built = new Command('evalsha', args)
  built.promise.catch(noop)
  return built.toWritable({})
}

const steps: Step[] = [
  ['publish, floor: the command (EVALSHA, 1 key, 3 arguments, one a number)', (i) => command([SHA, 1, keys.stream, 'token', texts[i % 1000], 1000])],
  ['publish, engine: the publish id and the publish argument', (i) => publishArgument(limits, `${publisher}.${i.toString(36)}`, '1765000000000-0', 1_765_000_000_000 + i)],
  ['publish, engine: the command (EVALSHA, 3 keys, 3 arguments)', (i) => command([SHA, 3, keys.stream, keys.published, keys.publishedBefore, 'token', texts[i % 1000], `${limits} ${publisher}.${i} 1765000000000-0 1765000000000`])],
  ['publish, engine before: the command (3 keys, 8 arguments, 3 numbers)', (i) => command([SHA, 3, keys.stream, keys.published, keys.publishedBefore, 'token', texts[i % 1000], 1000, 0, '1765000000000', `${publisher}.${i}`, '1765000000000-0', 86_400_000])],
  ['publish, engine before: ioredis\'s command timer (setTimeout + clearTimeout)', () => clearTimeout(setTimeout(noop, 2000))],
  ['receive, floor: split the id and the event out of a message', (i) => {
    const message = floorHeard[i % 1000]
    const idEnd = message.indexOf('\n')
    const eventEnd = message.indexOf('\n', idEnd + 1)
    return message.slice(0, idEnd) + message.slice(idEnd + 1, eventEnd)
  }],
  ['receive, engine: decode a heard message (id, chain, timestamp, checked)', (i) => decode(engineHeard[i % 1000])]
]

function noop (): void {}

await printSteps(steps)
