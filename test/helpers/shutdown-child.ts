/**
 * A server run as a child process by test/load/shutdown.test.ts: it holds an event stream
 * open (default heartbeat, a deadline timer, an interval producer) and on SIGTERM
 * calls `app.close()` and nothing else. The process must then exit by itself.
 * Prints its origin on stdout once listening.
 */
import Fastify from 'fastify'
import sse, { defineEvents, Type } from '../../lib/index.js'

const events = defineEvents({ tick: Type.Integer() })
const app = Fastify()
await app.register(sse)
app.get('/s', (_request, reply) => {
  const stream = reply.sse(events, { maxDurationMs: 3_600_000 })
  let count = 0
  stream.send('tick', count++)
  const timer = setInterval(() => stream.send('tick', count++), 50)
  stream.signal.addEventListener('abort', () => clearInterval(timer))
})
const origin = await app.listen({ port: 0, host: '127.0.0.1' })
process.once('SIGTERM', () => { void app.close() })
process.stdout.write(origin + '\n')
