/**
 * Contender `ioredis-floor`: the Redis floor of the streams scenario. Bare ioredis
 * doing the round trips the engine does, nothing more: per token one script (XADD to
 * the channel's stream, capped, then PUBLISH of the id and the event on a channel
 * named like the stream) on one command connection, awaited; one subscriber connection
 * subscribed to every channel; each message written by hand as an SSE frame with its
 * id to the stream of that channel. No validation, no catch-up, no replay.
 */
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Redis } from 'ioredis'
import { heartbeatMs, runContender } from './harness.js'
import { SSE_HEADERS, startHeartbeat } from './wire.js'

const APPEND = `
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'e', ARGV[1], 'd', ARGV[2])
redis.call('PUBLISH', KEYS[1], id .. '\\n' .. ARGV[1] .. '\\n' .. ARGV[2])
return id
`

interface Floor extends Redis {
  benchAppend (key: string, event: string, data: string, maxLen: number): Promise<string>
}

const url = process.env.BENCH_REDIS_URL
if (url === undefined || url === '') throw new Error('BENCH_REDIS_URL is not set: the runner starts redis-server and passes its URL')
const prefix = process.env.BENCH_REDIS_PREFIX ?? 'bench:'
const commands = new Redis(url) as Floor
commands.defineCommand('benchAppend', { numberOfKeys: 1, lua: APPEND })
const subscriber = new Redis(url)
const keys: string[] = []
const byKey = new Map<string, ServerResponse>()
const responses = new Set<ServerResponse>()
startHeartbeat(responses, heartbeatMs())

subscriber.on('message', (key: string, message: string) => {
  const response = byKey.get(key)
  if (response === undefined) return
  const idEnd = message.indexOf('\n')
  const eventEnd = message.indexOf('\n', idEnd + 1)
  response.write(`id: ${message.slice(0, idEnd)}\nevent: ${message.slice(idEnd + 1, eventEnd)}\ndata: ${message.slice(eventEnd + 1)}\n\n`)
})

runContender({
  listen: (track) => new Promise((resolve, reject) => {
    const server = createServer((request, response) => {
      if (request.url !== '/sse') {
        response.writeHead(404).end()
        return
      }
      const key = `${prefix}s${keys.length}`
      keys.push(key)
      subscriber.subscribe(key).then(() => {
        response.writeHead(200, SSE_HEADERS)
        response.flushHeaders()
        byKey.set(key, response)
        responses.add(response)
        response.once('close', () => {
          responses.delete(response)
          byKey.delete(key)
        })
        track(response)
      }, (err: unknown) => response.destroy(err as Error))
    })
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port))
  }),
  publish: () => { throw new Error('ioredis-floor runs the streams scenario only') },
  publishTo: (index, kind, data) => commands.benchAppend(keys[index], kind, JSON.stringify(data), 1000)
})
