/**
 * Contender `better-sse` (0.16), used as its README and Fastify recipe show: the
 * reply hijacked, `createSession(request.raw, reply.raw)` per client, every session
 * registered with one `createChannel()`, and `channel.broadcast(data, event)`.
 */
import Fastify from 'fastify'
import { createChannel, createSession } from 'better-sse'
import { runContender } from './harness.js'

const channel = createChannel()

runContender({
  listen: async (track) => {
    const app = Fastify({ logger: false })
    app.get('/sse', async (request, reply) => {
      // better-sse writes the response itself.
      reply.hijack()
      const session = await createSession(request.raw, reply.raw)
      channel.register(session)
      track(reply.raw)
    })
    await app.listen({ port: 0, host: '127.0.0.1' })
    return (app.server.address() as { port: number }).port
  },
  publish: (kind, data) => {
    channel.broadcast(data, kind)
  }
})
