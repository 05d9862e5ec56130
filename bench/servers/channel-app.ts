/**
 * The server both channel contenders run (`typed-sse-channel`, `typed-sse-metrics`):
 * every client's `reply.sse(catalog)` stream subscribes to one channel, and `publish`
 * validates once, encodes once and writes the same Buffer to every stream. They differ
 * only in the plugin options, so what they measure differs only there.
 */
import Fastify from 'fastify'
import sse, { type SsePluginOptions } from '../../lib/index.js'
import type { Score, Token } from '../payload.js'
import { benchEvents } from './catalog.js'
import { heartbeatMs, runContender, Unavailable } from './harness.js'

/**
 * Runs the channel contender with these plugin options (over the harness's heartbeat).
 *
 * @example
 * runChannelContender({ metrics: { registry } })
 */
export function runChannelContender (options: SsePluginOptions = {}): void {
  let publish: ((kind: 'score' | 'token', data: Score | Token) => void) | undefined
  runContender({
    listen: async (track) => {
      const app = Fastify({ logger: false })
      await app.register(sse, { heartbeatMs: heartbeatMs(), ...options })
      if (typeof app.sse?.channel !== 'function') throw new Unavailable('app.sse.channel() is not in lib/ yet')
      const channel = app.sse.channel('bench', benchEvents)
      app.get('/sse', (_request, reply) => {
        void channel.subscribe(reply.sse(benchEvents))
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
}
