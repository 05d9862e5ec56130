/**
 * Contender `@fastify/sse` (0.6), used as its README shows: a route declared with
 * `{ sse: true }`, `reply.sse.keepAlive()`, and `reply.sse.send({ event, data })` to
 * every client (the plugin serializes `data` with JSON.stringify, once per client).
 */
import { createRequire } from 'node:module'
import Fastify, { type RouteShorthandOptions } from 'fastify'
import { runContender } from './harness.js'
import type { FastifySseContext, FastifySseModule } from './peer-types.js'

const require = createRequire(import.meta.url)
const contexts = new Set<FastifySseContext>()

function ignore (): void {}

runContender({
  listen: async (track) => {
    const app = Fastify({ logger: false })
    await app.register(require('@fastify/sse') as FastifySseModule)
    // The option as @fastify/sse types it; lib/ types `sse` as a catalog (see peer-types.ts).
    const options = { sse: true } as unknown as RouteShorthandOptions
    app.get('/sse', options, async (_request, reply) => {
      const sse = (reply as unknown as { sse: FastifySseContext }).sse
      sse.keepAlive()
      sse.sendHeaders()
      // @fastify/sse writes no byte before the first event, so a client would not
      // see the stream open; flush the head as the other contenders do.
      reply.raw.flushHeaders()
      contexts.add(sse)
      sse.onClose(() => contexts.delete(sse))
      track(reply.raw)
    })
    await app.listen({ port: 0, host: '127.0.0.1' })
    return (app.server.address() as { port: number }).port
  },
  publish: (kind, data) => {
    // send() rejects once the client is gone; nothing to do about it here.
    for (const sse of contexts) sse.send({ event: kind, data }).catch(ignore)
  }
})
