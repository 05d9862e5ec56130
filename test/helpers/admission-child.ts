/**
 * An app instance run as a child process by test/redis/admission-redis.test.ts, so the test
 * can kill it (SIGKILL, by PID) with streams open: a Redis engine with the cluster-wide
 * count of streams per key, a `{ sse }` route `/s` keyed by the `x-user` header.
 * Prints its origin on stdout once listening.
 *
 * Usage: admission-child.ts <redis url> <maxStreamsPerKey> <leaseTtlMs>
 */
import Fastify from 'fastify'
import sse, { defineEvents, Type } from '../../lib/index.js'
import { redisEngine } from '../../lib/redis.js'

const [url, limit, leaseTtlMs] = process.argv.slice(2)
const events = defineEvents({ ready: Type.Boolean() })
const app = Fastify()
await app.register(sse, {
  heartbeatMs: false,
  maxStreamsPerKey: Number(limit),
  streamKey: (request) => String(request.headers['x-user']),
  engine: redisEngine({ url, admission: { leaseTtlMs: Number(leaseTtlMs) } })
})
app.get('/s', { sse: events }, (_request, reply) => {
  reply.sse().send('ready', true)
})
const origin = await app.listen({ port: 0, host: '127.0.0.1' })
process.stdout.write(origin + '\n')
