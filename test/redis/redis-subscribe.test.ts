/**
 * When subscribe() resolves, the stream is live everywhere: a message published on
 * any instance after that reaches it. The first stream of a channel made on demand
 * is the case to get right: its instance must first subscribe in Redis, and another
 * instance may publish meanwhile. A proxy delays one instance's link to Redis, so its
 * subscription arrives after the other's publish unless subscribe() waits for it.
 */
import t from 'tap'
import { defineEvents, Type } from '../../lib/index.js'
import { redisEngine } from '../../lib/redis.js'
import { buildApp, Inbox } from '../helpers/app.js'
import { openStream } from '../helpers/client.js'
import { delayProxy } from '../helpers/delay-proxy.js'
import { REDIS_MISSING, startRedis, type RedisServer } from '../helpers/redis.js'

const room = defineEvents({ line: Type.Object({ text: Type.String() }) })
const DELAY_MS = 250

if (REDIS_MISSING !== undefined) t.comment(REDIS_MISSING)
const redis = REDIS_MISSING === undefined ? await startRedis(t) : undefined as unknown as RedisServer

for (const history of [false, true]) {
  t.test(`a channel made on demand (history: ${history}): what is published elsewhere once subscribe() resolved arrives`, { skip: REDIS_MISSING }, async (t) => {
    const prefix = `subscribe-${String(history)}:`
    const slowLink = await delayProxy(t, redis.port, DELAY_MS)
    const a = await buildApp(t, { sse: { heartbeatMs: false, engine: redisEngine({ url: `redis://127.0.0.1:${slowLink}`, prefix }) } })
    const b = await buildApp(t, { sse: { heartbeatMs: false, engine: redisEngine({ url: redis.url, prefix }) } })
    const subscribed = new Inbox<string>()
    a.app.get('/rooms/:id', async (request, reply) => {
      const { id } = request.params as { id: string }
      await a.app.sse.channel(`room:${id}`, room, { history }).subscribe(reply.sse(room))
      subscribed.push(id)
    })
    const origin = await a.start()
    await b.app.ready()
    const onB = b.app.sse.channel('room:1', room, { history })
    await onB.publish('line', { text: 'before' }) // B is subscribed and Redis knows the channel

    const client = await openStream(t, `${origin}/rooms/1`)
    t.equal(await subscribed.next(15_000), '1')
    await onB.publish('line', { text: 'after' })
    const [event] = await client.events(1, 15_000)
    t.same([event.type, event.data], ['line', '{"text":"after"}'], 'published on B after subscribe() resolved on A: delivered')
  })
}
