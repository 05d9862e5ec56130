/**
 * Contender `typed-sse`: this plugin, one `reply.sse(catalog)` stream per client and
 * `stream.send()` to each, so every event is validated and encoded once per client.
 * The pattern of per-client streams (an LLM answer, a user's own feed).
 */
import Fastify from 'fastify'
import sse, { type SseStream } from '../../lib/index.js'
import type { Score, Token } from '../payload.js'
import { benchEvents, type BenchSchemas } from './catalog.js'
import { heartbeatMs, runContender } from './harness.js'

const streams = new Set<SseStream<BenchSchemas>>()

runContender({
  listen: async (track) => {
    const app = Fastify({ logger: false })
    await app.register(sse, { heartbeatMs: heartbeatMs() })
    app.get('/sse', (_request, reply) => {
      const stream = reply.sse(benchEvents)
      streams.add(stream)
      stream.onClose(() => streams.delete(stream))
      track(reply.raw)
    })
    await app.listen({ port: 0, host: '127.0.0.1' })
    return (app.server.address() as { port: number }).port
  },
  publish: (kind, data) => {
    if (kind === 'score') {
      for (const stream of streams) stream.send('score', data as Score)
    } else {
      for (const stream of streams) stream.send('token', data as Token)
    }
  }
})
