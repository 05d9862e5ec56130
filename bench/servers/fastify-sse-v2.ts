/**
 * Contender `fastify-sse-v2` (4.x), used as its README shows for individual events:
 * `reply.sse({ event, data })` per client, `data` a string (stringified once per
 * event here, as its users must). The first call opens the stream; it has no
 * backpressure signal of its own, so the harness watches the socket.
 */
import { createRequire } from 'node:module'
import Fastify from 'fastify'
import { runContender } from './harness.js'
import type { SseV2Module, SseV2Send } from './peer-types.js'

const require = createRequire(import.meta.url)
const senders = new Set<SseV2Send>()

runContender({
  listen: async (track) => {
    const app = Fastify({ logger: false })
    await app.register((require('fastify-sse-v2') as SseV2Module).FastifySSEPlugin)
    app.get('/sse', (_request, reply) => {
      const send: SseV2Send = (reply as unknown as { sse: SseV2Send }).sse.bind(reply)
      // Opens the stream: headers and the plugin's default `retry: 3000`.
      send({ comment: 'open' })
      senders.add(send)
      reply.raw.once('close', () => senders.delete(send))
      track(reply.raw)
    })
    await app.listen({ port: 0, host: '127.0.0.1' })
    return (app.server.address() as { port: number }).port
  },
  publish: (kind, data) => {
    const json = JSON.stringify(data)
    for (const send of senders) send({ event: kind, data: json })
  }
})
