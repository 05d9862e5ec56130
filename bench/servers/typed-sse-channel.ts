/**
 * Contender `typed-sse-channel`: this plugin's broadcast, `app.sse.channel(name,
 * catalog)`. Each client's `reply.sse(catalog)` stream subscribes; `publish`
 * validates once, encodes once and writes the same Buffer to every stream.
 */
import Fastify from 'fastify'
import sse from '../../lib/index.js'
import type { Score, Token } from '../payload.js'
import { benchEvents } from './catalog.js'
import { heartbeatMs, runContender, Unavailable } from './harness.js'

let publish: ((kind: 'score' | 'token', data: Score | Token) => void) | undefined

runContender({
  listen: async (track) => {
    const app = Fastify({ logger: false })
    await app.register(sse, { heartbeatMs: heartbeatMs() })
    if (typeof app.sse?.channel !== 'function') throw new Unavailable('app.sse.channel() is not in lib/ yet')
    const channel = app.sse.channel('bench', benchEvents)
    app.get('/sse', (_request, reply) => {
      const stream = reply.sse(benchEvents)
      void channel.subscribe(stream)
      track(reply.raw)
    })
    publish = (kind, data) => {
      // Validation errors throw synchronously; the promise only reports delivery to other instances.
      if (kind === 'score') void channel.publish('score', data as Score)
      else void channel.publish('token', data as Token)
    }
    await app.listen({ port: 0, host: '127.0.0.1' })
    return (app.server.address() as { port: number }).port
  },
  publish: (kind, data) => publish?.(kind, data)
})
