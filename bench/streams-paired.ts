/**
 * The small-streams scenario with every contender in ONE server process, measured in
 * alternating blocks: raw `node:http` and the plugin's channels (history off, on) share
 * the heap, the GC and the CPU caches, and each block of the plugin is set against the
 * block of raw next to it. `npm run bench -- small-streams` runs each contender in a
 * process of its own, where raw's process is a bare `node:http` with a small heap; this
 * pairs the blocks in time, so load from other processes falls on both sides alike. A
 * scavenge falls in whichever block is running, so short blocks charge part of the
 * channels' garbage to raw: use ROUNDS=100 or more for a fair split (bench/README.md, third
 * round). To compare two builds, `npm run bench -- --compare-build` is the sounder tool.
 *
 *   npm run build && node dist/bench/streams-paired.js
 *
 * Options (env): CHANNELS (200), ROUNDS per block (25), BLOCKS per contender (16),
 * CONTENDERS (raw,off,on). Prints server CPU per message (user, system, the publish
 * loop alone) and the median of the per-block ratios to raw. The client is a child
 * process reading every socket (it only counts the first chunk of each).
 */
import { fork } from 'node:child_process'
import { createServer, type ServerResponse } from 'node:http'
import { connect } from 'node:net'
import { loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import sse, { type Channel } from '../lib/index.js'
import { makeToken, type Token } from './payload.js'
import { benchEvents } from './servers/catalog.js'
import { encodeFrame, SSE_HEADERS } from './servers/wire.js'

const CHANNELS = Number(process.env.CHANNELS ?? 200)
const ROUNDS = Number(process.env.ROUNDS ?? 25)
const BLOCKS = Number(process.env.BLOCKS ?? 16)
const CONTENDERS = (process.env.CONTENDERS ?? 'raw,off,on').split(',')

interface Open { port: number, path: string, count: number }

/** The client: opens `count` streams, says so once each has its headers, then only reads. */
function runClient (): void {
  process.on('message', ({ port, path, count }: Open) => {
    let opened = 0
    for (let i = 0; i < count; i++) {
      const socket = connect(port, '127.0.0.1', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: bench\r\n\r\n`))
      socket.once('data', () => { if (++opened === count) process.send?.('open') })
      socket.on('data', () => {})
    }
  })
}

function median (values: number[]): number {
  return [...values].sort((a, b) => a - b)[values.length >> 1]
}

async function runServer (): Promise<void> {
  const client = fork(fileURLToPath(import.meta.url), ['client'])
  const open = async (request: Open): Promise<void> => {
    const opened = new Promise((resolve) => client.once('message', resolve))
    client.send(request)
    await opened
  }
  const raw: ServerResponse[] = []
  const server = createServer((_request, response) => {
    response.writeHead(200, SSE_HEADERS)
    response.flushHeaders()
    raw.push(response)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const app = Fastify({ logger: false })
  await app.register(sse, { heartbeatMs: 600_000 })
  const channels: Record<string, Array<Channel<typeof benchEvents>>> = { off: [], on: [] }
  for (const name of ['off', 'on']) {
    app.get(`/${name}`, async (_request, reply) => {
      const channel = app.sse.channel(`${name}${channels[name].length}`, benchEvents, { history: name === 'on' })
      channels[name].push(channel)
      await channel.subscribe(reply.sse(benchEvents))
    })
  }
  await app.listen({ port: 0, host: '127.0.0.1' })
  const appPort = (app.server.address() as { port: number }).port
  for (const name of CONTENDERS) await open(name === 'raw' ? { port: (server.address() as { port: number }).port, path: '/', count: CHANNELS } : { port: appPort, path: `/${name}`, count: CHANNELS })

  const publishers: Record<string, (channel: number, token: Token) => void> = {
    raw: (channel, token) => { raw[channel].write(encodeFrame('token', token)) },
    off: (channel, token) => { void channels.off[channel].publish('token', token) },
    on: (channel, token) => { void channels.on[channel].publish('token', token) }
  }
  let seq = 0
  const turn = async (): Promise<void> => await new Promise((resolve) => setImmediate(resolve))
  /** One block: ROUNDS rounds of one token per channel, a round per turn; CPU per message. */
  async function block (name: string): Promise<{ user: number, system: number, loop: number }> {
    const publish = publishers[name]
    const before = process.cpuUsage()
    let loop = 0
    for (let round = 0; round < ROUNDS; round++) {
      if (round > 0) await turn()
      const start = process.cpuUsage()
      for (let channel = 0; channel < CHANNELS; channel++) publish(channel, makeToken(seq++, Date.now()))
      const { user, system } = process.cpuUsage(start)
      loop += user + system
    }
    // The flush of the last round (one tick later) is part of the block.
    await turn()
    const { user, system } = process.cpuUsage(before)
    const messages = ROUNDS * CHANNELS
    return { user: user / messages, system: system / messages, loop: loop / messages }
  }

  for (const name of CONTENDERS) await block(name)
  const results: Record<string, Array<{ user: number, system: number, loop: number }>> = Object.fromEntries(CONTENDERS.map((name) => [name, []]))
  for (let b = 0; b < BLOCKS; b++) {
    // Alternate the order, so neither side always runs right after the other.
    for (const name of b % 2 === 0 ? CONTENDERS : [...CONTENDERS].reverse()) results[name].push(await block(name))
  }
  const lines = [`${CHANNELS} channels x 1 reader, ${BLOCKS} blocks of ${ROUNDS} rounds per contender, one process; load average ${loadavg()[0].toFixed(1)}`]
  for (const name of CONTENDERS) {
    const runs = results[name]
    const total = runs.map((run) => run.user + run.system)
    let line = `  ${name.padEnd(4)} ${median(total).toFixed(2)} us/msg (user ${median(runs.map((run) => run.user)).toFixed(2)}, system ${median(runs.map((run) => run.system)).toFixed(2)}, publish loop ${median(runs.map((run) => run.loop)).toFixed(2)})`
    if (name !== 'raw' && results.raw !== undefined) {
      const ratios = runs.map((run, i) => (run.user + run.system) / (results.raw[i].user + results.raw[i].system))
      line += `  vs raw ${median(ratios).toFixed(2)}x (per block ${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)})`
    }
    lines.push(line)
  }
  console.log(lines.join('\n'))
  client.kill()
  await app.close()
  server.closeAllConnections()
  server.close()
}

if (process.argv[2] === 'client') runClient()
else await runServer()
