/**
 * A resumable LLM-style stream across two instances on one Redis: a POST starts a
 * response that is produced once into its own channel with history; the client's
 * connection to instance A is cut mid-stream, its reconnect (same POST, same body,
 * Last-Event-ID) lands on instance B, and it gets the rest of the tokens exactly
 * once, then the end, and stops. The producer runs once.
 */
import t from 'tap'
import { createClient, type ClientStatus } from '../../lib/client.js'
import { defineEvents, Text, Type, type Channel } from '../../lib/index.js'
import { redisEngine } from '../../lib/redis.js'
import { buildApp, Inbox, sleep, withTimeout } from '../helpers/app.js'
import { REDIS_MISSING, startRedis, type RedisServer } from '../helpers/redis.js'

const llm = defineEvents({
  token: Text(),
  done: Type.Object({ tokens: Type.Integer() })
})

const TOKENS = ['Once', ' upon', ' a', ' time', ',', ' a', ' stream', ' was', ' resumed', '.']
/** The connection to A is cut after this many tokens reached it. */
const CUT_AFTER = 4

// Under CI a missing redis-server fails the test instead of skipping it.
const skip = REDIS_MISSING !== undefined && process.env.CI === undefined ? REDIS_MISSING : false
const redis = REDIS_MISSING === undefined ? await startRedis(t) : undefined as unknown as RedisServer

interface Instance {
  origin: string
  requests: Array<{ lastEventId: string | undefined, body: unknown }>
}

t.test('a POST stream cut on instance A resumes on instance B: every token once, then the end', { skip }, async (t) => {
  const prefix = `resume${process.pid}:`
  let producerRuns = 0

  async function produce (channel: Channel<typeof llm>): Promise<void> {
    producerRuns++
    for (const token of TOKENS) {
      await sleep(15)
      await channel.publish('token', token)
    }
    await channel.publish('done', { tokens: TOKENS.length })
    // Every follower, on every instance, gets sse:end.
    await channel.end()
  }

  async function instance (cutAfter: number | undefined): Promise<Instance> {
    const { app, start } = await buildApp(t, {
      sse: { heartbeatMs: false, retryMs: 20, engine: redisEngine({ url: redis.url, prefix }) },
      fastify: { forceCloseConnections: true }
    })
    const requests: Instance['requests'] = []
    app.post<{ Body: { conversation: string } }>('/chat', async (request, reply) => {
      const lastEventId = request.headers['last-event-id'] as string | undefined
      requests.push({ lastEventId, body: request.body })
      const channel = app.sse.channel(`chat:${request.body.conversation}`, llm, { history: true })
      const stream = reply.sse(llm)
      let delivered = 0
      await channel.subscribe(stream, {
        replayAll: true,
        filter: (message) => {
          if (message.event === 'token' && ++delivered === cutAfter) {
            // After this token is flushed (the publish uncorks on nextTick): the network drops the connection.
            setImmediate(() => { request.raw.socket.destroy() })
          }
          return true
        }
      })
      if (lastEventId === undefined) void produce(channel)
    })
    return { origin: await start(), requests }
  }

  const a = await instance(CUT_AFTER)
  const b = await instance(undefined)
  // The load balancer: the first request goes to A, every later one to B.
  let routed = 0
  const balancer = (url: string, init: RequestInit): Promise<Response> =>
    fetch(routed++ === 0 ? url : url.replace(a.origin, b.origin), init)

  const client = createClient(`${a.origin}/chat`, {
    catalog: llm,
    body: JSON.stringify({ conversation: 'c1', prompt: 'tell me a story' }),
    headers: { 'content-type': 'application/json' },
    fetch: balancer,
    reconnectDelayMs: 20
  })
  t.teardown(() => { client.close() })
  const tokens: Array<[string, string | undefined]> = []
  const done = new Inbox<number>()
  const seen: ClientStatus[] = []
  client.on('token', (text, meta) => tokens.push([text, meta.id]))
  client.on('done', (info) => done.push(info.tokens))
  let receivedBeforeCut = -1
  client.onStatus((status) => {
    seen.push(status)
    if (status === 'connecting') receivedBeforeCut = tokens.length
  })
  const ended = new Promise<void>((resolve) => { client.onEnd(resolve) })

  t.equal(await done.next(10_000), TOKENS.length)
  await withTimeout(ended, 5000, 'onEnd')
  t.same(tokens.map(([text]) => text), TOKENS, 'every token exactly once, in order')
  t.equal(new Set(tokens.map(([, id]) => id)).size, TOKENS.length, 'each with its own channel id')
  t.equal(client.status, 'closed')
  t.same(seen, ['open', 'connecting', 'open', 'closed'], 'one drop, one resume, then the end')
  t.equal(a.requests.length, 1)
  t.equal(b.requests.length, 1)
  t.ok(receivedBeforeCut >= 1 && receivedBeforeCut <= CUT_AFTER, `cut mid-stream, after ${receivedBeforeCut} tokens`)
  t.equal(b.requests[0].lastEventId, tokens[receivedBeforeCut - 1][1], 'B was asked to resume after the last token the client had')
  t.same(b.requests[0].body, a.requests[0].body, 'the same POST body')
  await sleep(200) // ten retry periods: no reconnect after the end
  t.equal(a.requests.length + b.requests.length, 2)
  t.equal(producerRuns, 1, 'the response was produced once')
})
