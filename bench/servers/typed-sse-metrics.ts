/**
 * Contender `typed-sse-metrics`: `typed-sse-channel` with Prometheus metrics on, in a
 * registry of its own scraped every second (Prometheus scrapes every 15 s or so: this
 * is the pessimistic case). Compared with `typed-sse-channel`, it shows what metrics cost.
 */
import Fastify from 'fastify'
import { Registry } from 'prom-client'
import sse from '../../lib/index.js'
import type { Score, Token } from '../payload.js'
import { benchEvents } from './catalog.js'
import { runContender } from './harness.js'

/** How often the registry is scraped while the benchmark runs. */
const SCRAPE_MS = 1000

let publish: ((kind: 'score' | 'token', data: Score | Token) => void) | undefined

runContender({
  listen: async (track) => {
    const registry = new Registry()
    const app = Fastify({ logger: false })
    await app.register(sse, { metrics: { registry } })
    const channel = app.sse.channel('bench', benchEvents)
    app.get('/sse', (_request, reply) => {
      const stream = reply.sse(benchEvents)
      void channel.subscribe(stream)
      track(reply.raw)
    })
    publish = (kind, data) => {
      if (kind === 'score') void channel.publish('score', data as Score)
      else void channel.publish('token', data as Token)
    }
    // unref(): the scrape never keeps the server process alive.
    setInterval(() => { void registry.metrics() }, SCRAPE_MS).unref()
    await app.listen({ port: 0, host: '127.0.0.1' })
    return (app.server.address() as { port: number }).port
  },
  publish: (kind, data) => publish?.(kind, data)
})
