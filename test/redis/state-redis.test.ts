/**
 * Keyed state, snapshots, coalescing and presence on a real redis-server: the scenarios
 * of test/helpers/state.ts with two instances on one Redis (each its own engine), and
 * presence with an instance killed (a child process, SIGKILL): its members leave, with
 * `sse:leave`, within the presence lease.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { defineEvents, Type } from '../../lib/index.js'
import { redisEngine } from '../../lib/redis.js'
import { buildApp, childOrigin, sleep, waitUntil, withTimeout } from '../helpers/app.js'
import { openTracked } from '../helpers/client.js'
import { REDIS_MISSING, startRedis, type RedisServer } from '../helpers/redis.js'
import { stateScenarios } from '../helpers/state.js'

// Under CI a missing redis-server fails the tests instead of skipping them.
const skip = REDIS_MISSING !== undefined && process.env.CI === undefined ? REDIS_MISSING : false
const redis = REDIS_MISSING === undefined ? await startRedis(t) : undefined as unknown as RedisServer
let prefixes = 0

t.test('on one Redis', { skip }, async (t) => {
  // A prefix per scenario: each starts from empty keys.
  stateScenarios(t, () => redisEngine({ url: redis.url, prefix: `s${Math.floor(prefixes++ / 2)}:` }))
})

t.test('presence across instances: an instance killed (kill -9), its members leave with sse:leave within the lease', { skip }, async (t) => {
  const LEASE_MS = 1500
  const room = defineEvents({ chat: Type.Object({ text: Type.String() }) })
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, engine: redisEngine({ url: redis.url, presenceLeaseMs: LEASE_MS }) } })
  const channel = app.sse.channel('room', room, { history: true, presence: { info: Type.Object({ name: Type.String() }), events: true } })
  app.get('/room', async (request, reply) => {
    const { user } = request.query as { user?: string }
    await channel.subscribe(reply.sse(room), user === undefined ? {} : { presence: { id: user, info: { name: user } } })
  })
  const port = Number(new URL(await start()).port)
  const watcher = openTracked(t, port, '/room')
  await watcher.ready
  await waitUntil(() => channel.size === 1, 10_000, 'watcher subscribed')
  const bob = openTracked(t, port, '/room?user=bob')
  await bob.ready

  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../helpers/presence-child.ts', import.meta.url)), redis.url, String(LEASE_MS)], {
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)))
  const origin = await childOrigin(child)
  const childPort = Number(new URL(origin).port)
  const alice = openTracked(t, childPort, '/room?user=alice')
  const carol = openTracked(t, childPort, '/room?user=carol')
  const bobToo = openTracked(t, childPort, '/room?user=bob')
  await Promise.all([alice.ready, carol.ready, bobToo.ready])
  const deadline = Date.now() + 10_000
  let members = await channel.presence()
  while (members.reduce((sum, member) => sum + member.connections, 0) < 4 && Date.now() < deadline) {
    await sleep(50)
    members = await channel.presence()
  }
  t.same(members.map((member) => `${member.id}:${member.connections}`).sort(), ['alice:1', 'bob:2', 'carol:1'], 'the members of both instances, bob once with two connections')

  child.kill('SIGKILL')
  t.equal(await withTimeout(exited, 5000, 'child exit'), 'SIGKILL')
  const killedAt = Date.now()
  const leaves = (): string[] => watcher.parser.events.filter((event) => event.type === 'sse:leave').map((event) => JSON.parse(event.data).id as string)
  // Bounded by the lease plus a renewal period, with a margin for a busy machine; polled, not slept.
  await waitUntil(() => leaves().length >= 2, LEASE_MS + 15_000, 'the leaves of the killed instance')
  const tookMs = Date.now() - killedAt
  t.same(leaves().sort(), ['alice', 'carol'], 'alice and carol left, once each; bob did not (he is still here)')
  t.ok(tookMs < LEASE_MS * 2 + 10_000, `announced ${tookMs} ms after the kill (lease ${LEASE_MS} ms)`)
  t.same((await channel.presence()).map((member) => `${member.id}:${member.connections}`), ['bob:1'], 'presence() lists bob alone, with his one connection left')
  await sleep(LEASE_MS)
  t.equal(leaves().length, 2, 'no leave announced twice by later sweeps')
})
