/**
 * The server of the plugin's `streams` contenders: one channel per stream (stream `i`,
 * in the order streams opened, subscribes to channel `s<i>`), and `publishTo(i)`
 * publishes one token on channel `i` only, validated, encoded and framed by the
 * plugin. The contenders differ in history and engine only.
 */
import Fastify from 'fastify'
import sse, { type SseEngine } from '../../lib/index.js'
import type { Token } from '../payload.js'
import { benchEvents } from './catalog.js'
import { heartbeatMs, runContender, Unavailable } from './harness.js'

/** How a `streams` contender runs its channels. */
export interface StreamsOptions {
  /** Channels keep history (ids, replay). */
  history: boolean
  /** The engine (in memory when absent); its publishes are awaited when set. */
  engine?: () => SseEngine
}

/**
 * Runs a `streams` contender.
 *
 * @example
 * runStreamsContender({ history: true })
 */
export function runStreamsContender (options: StreamsOptions): void {
  const channels: Array<{ publish: (event: 'token', data: Token) => Promise<unknown> }> = []
  const isAwaited = options.engine !== undefined
  runContender({
    listen: async (track) => {
      const app = Fastify({ logger: false })
      await app.register(sse, { heartbeatMs: heartbeatMs(), engine: options.engine?.() })
      if (typeof app.sse?.channel !== 'function') throw new Unavailable('app.sse.channel() is not in lib/ yet')
      app.get('/sse', async (_request, reply) => {
        const index = channels.length
        const channel = app.sse.channel(`s${index}`, benchEvents, { history: options.history })
        channels.push(channel)
        // The subscription is ready before the stream is counted, so the first token reaches it.
        await channel.subscribe(reply.sse(benchEvents))
        track(reply.raw)
      })
      await app.listen({ port: 0, host: '127.0.0.1' })
      return (app.server.address() as { port: number }).port
    },
    publish: () => { throw new Error('the streams contenders run the streams scenario only') },
    publishTo: (index, _kind, data) => {
      // Validation errors throw synchronously. In memory the promise only reports
      // delivery to other instances (none), as an application would leave it; on
      // Redis the application awaits the append.
      const sent = channels[index].publish('token', data as Token)
      return isAwaited ? sent : undefined
    }
  })
}
