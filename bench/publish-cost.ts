/**
 * The CPU one awaited publish costs this process: an app with one channel, subscribers on
 * raw sockets in this process, every publish awaited and one per event-loop turn (as in
 * the fan-out benchmark), timed from the first publish to the last delivery. The engine,
 * the channel's options and the payload are the caller's: `redis-overhead.ts` compares
 * engines with it, `state.ts` a channel with and without keyed state.
 */
import Fastify from 'fastify'
import { connect, type Socket } from 'node:net'
import { setImmediate as nextTurn } from 'node:timers/promises'
import sse, { type ChannelOptions, type SseEngine } from '../lib/index.js'
import { ResponseParser } from './client/parser.js'
import type { Score } from './payload.js'
import { benchEvents } from './servers/catalog.js'

/** One measurement: CPU per publish, in µs. */
export interface PublishCost {
  userUs: number
  systemUs: number
}

/** What to measure. */
export interface PublishCostOptions {
  engine: SseEngine
  channel: ChannelOptions<typeof benchEvents>
  subscribers: number
  events: number
  /** Deadline of all deliveries. */
  timeoutMs: number
  /** The score published as event `seq`. */
  score: (seq: number) => Score
}

async function openClients (port: number, count: number, onEvent: () => void): Promise<Socket[]> {
  return await Promise.all(Array.from({ length: count }, async () => await new Promise<Socket>((resolve, reject) => {
    const parser = new ResponseParser(onEvent)
    const socket = connect({ host: '127.0.0.1', port })
    parser.onOpen = () => resolve(socket)
    socket.on('data', (chunk: Buffer) => parser.feed(chunk))
    socket.on('error', reject)
    socket.write('GET /sse HTTP/1.1\r\nhost: 127.0.0.1\r\naccept: text/event-stream\r\n\r\n')
  })))
}

/**
 * Publishes `events` scores, each awaited, to `subscribers` sockets, and returns this
 * process's CPU per publish.
 *
 * @throws when the deliveries do not all arrive within `timeoutMs`
 * @example
 * const cost = await publishCost({ engine: memoryEngine(), channel: { history: true }, subscribers: 1, events: 5000, timeoutMs: 60_000, score: (seq) => makeScore(seq, 0) })
 */
export async function publishCost ({ engine, channel: options, subscribers, events, timeoutMs, score }: PublishCostOptions): Promise<PublishCost> {
  const app = Fastify({ logger: false })
  await app.register(sse, { heartbeatMs: false, engine })
  const channel = app.sse.channel('bench', benchEvents, options)
  app.get('/sse', async (_request, reply) => { await channel.subscribe(reply.sse(benchEvents)) })
  await app.listen({ port: 0, host: '127.0.0.1' })
  try {
    let received = 0
    let done: (() => void) | undefined
    const all = new Promise<void>((resolve, reject) => {
      done = resolve
      setTimeout(() => reject(new Error(`${received} of ${events * subscribers} deliveries within ${timeoutMs} ms`)), timeoutMs).unref()
    })
    const sockets = await openClients((app.server.address() as { port: number }).port, subscribers, () => { if (++received === events * subscribers) done?.() })
    for (let turn = 0; channel.size < subscribers; turn++) {
      if (turn > 1000) throw new Error(`${channel.size} of ${subscribers} subscribed after 1000 turns`)
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    const before = process.cpuUsage()
    for (let seq = 0; seq < events; seq++) {
      await channel.publish('score', score(seq))
      await nextTurn()
    }
    await all
    const { user, system } = process.cpuUsage(before)
    for (const socket of sockets) socket.destroy()
    return { userUs: user / events, systemUs: system / events }
  } finally {
    await app.close()
  }
}
