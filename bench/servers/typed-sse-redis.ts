/**
 * Contender `typed-sse-redis`: `typed-sse-channel` on the Redis engine. The channel
 * keeps history (each publish is one Lua script: XADD + PUBLISH), and every publish is
 * awaited, as an application awaiting `publish()` would: the event reaches the
 * streams of this process through its own Redis subscription, like every other
 * instance's. The runner starts the redis-server and passes its URL
 * (`BENCH_REDIS_URL`) and a prefix of its own per process (`BENCH_REDIS_PREFIX`).
 *
 * With `BENCH_REDIS_CLUSTER` (`host:port,...`) it runs on that Redis Cluster instead.
 *
 * With `BENCH_PUBLISHER=0` the process only serves streams (the capacity-redis
 * scenario runs several instances, one of which publishes).
 */
import Fastify from 'fastify'
import sse from '../../lib/index.js'
import { redisEngine } from '../../lib/redis.js'
import type { Score, Token } from '../payload.js'
import { benchEvents } from './catalog.js'
import { heartbeatMs, runContender } from './harness.js'

let publish: ((kind: 'score' | 'token', data: Score | Token) => Promise<void>) | undefined

runContender({
  listen: async (track) => {
    const url = process.env.BENCH_REDIS_URL
    const cluster = process.env.BENCH_REDIS_CLUSTER
    const prefix = process.env.BENCH_REDIS_PREFIX ?? 'bench:'
    let engine
    if (cluster !== undefined && cluster !== '') {
      const nodes = cluster.split(',').map((node) => ({ host: node.split(':')[0], port: Number(node.split(':')[1]) }))
      engine = redisEngine({ cluster: { nodes }, prefix })
    } else {
      if (url === undefined || url === '') throw new Error('BENCH_REDIS_URL is not set: the runner starts redis-server and passes its URL')
      engine = redisEngine({ url, prefix })
    }
    const app = Fastify({ logger: false })
    await app.register(sse, { heartbeatMs: heartbeatMs(), engine })
    const channel = app.sse.channel('bench', benchEvents, { history: true })
    app.get('/sse', async (_request, reply) => {
      const stream = reply.sse(benchEvents)
      // The subscription is ready before the client is counted, so the first event reaches it.
      await channel.subscribe(stream)
      track(reply.raw)
    })
    publish = async (kind, data) => {
      if (kind === 'score') await channel.publish('score', data as Score)
      else await channel.publish('token', data as Token)
    }
    await app.listen({ port: 0, host: '127.0.0.1' })
    return (app.server.address() as { port: number }).port
  },
  publish: async (kind, data) => await publish?.(kind, data)
})
