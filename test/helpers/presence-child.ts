/**
 * An app instance run as a child process by test/state-redis.test.ts, so the test can
 * kill it (SIGKILL, by PID) while it holds presence members: a Redis engine with a
 * short presence lease, the channel `room` with presence events, a route `/room?user=`
 * that joins as that user. Prints its origin on stdout once listening.
 *
 * Usage: presence-child.ts <redis url> <presenceLeaseMs>
 */
import Fastify from 'fastify'
import sse, { defineEvents, Type } from '../../lib/index.js'
import { redisEngine } from '../../lib/redis.js'

const [url, presenceLeaseMs] = process.argv.slice(2)
const room = defineEvents({ chat: Type.Object({ text: Type.String() }) })
const app = Fastify()
await app.register(sse, { heartbeatMs: false, engine: redisEngine({ url, presenceLeaseMs: Number(presenceLeaseMs) }) })
const channel = app.sse.channel('room', room, { history: true, presence: { info: Type.Object({ name: Type.String() }), events: true } })
app.get('/room', async (request, reply) => {
  const { user } = request.query as { user: string }
  await channel.subscribe(reply.sse(room), { presence: { id: user, info: { name: user } } })
})
const origin = await app.listen({ port: 0, host: '127.0.0.1' })
process.stdout.write(origin + '\n')
