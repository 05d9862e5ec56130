/**
 * Contender `fastify-hijack`: a Fastify route that hijacks the reply and writes like
 * `raw` (one Buffer per event, shared by every socket). The gap to `raw` is
 * Fastify's own cost per connection; the gap from here to the plugin is ours.
 */
import type { ServerResponse } from 'node:http'
import Fastify from 'fastify'
import { heartbeatMs, runContender } from './harness.js'
import { encodeFrame, SSE_HEADERS, startHeartbeat } from './wire.js'

const responses = new Set<ServerResponse>()
startHeartbeat(responses, heartbeatMs())

runContender({
  listen: async (track) => {
    const app = Fastify({ logger: false })
    app.get('/sse', (_request, reply) => {
      reply.hijack()
      const response = reply.raw
      response.writeHead(200, SSE_HEADERS)
      response.flushHeaders()
      responses.add(response)
      response.once('close', () => responses.delete(response))
      track(response)
    })
    await app.listen({ port: 0, host: '127.0.0.1' })
    return (app.server.address() as { port: number }).port
  },
  publish: (kind, data) => {
    const frame = encodeFrame(kind, data)
    for (const response of responses) response.write(frame)
  }
})
