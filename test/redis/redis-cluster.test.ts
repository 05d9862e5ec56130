/**
 * The Redis engine on a real Redis Cluster (3 masters, 3 replicas on loopback, one
 * cluster for the whole file): sharded pub/sub, channels spread over every master,
 * two instances, exactly-once in-order delivery; a slot moved; a resubscribe one master
 * confirms while another does not answer; and a master killed (kill -9) while
 * publishing: publishes reject with the coded error (never hang), delivery resumes on
 * the promoted replica, and every channel has every acknowledged message or was told
 * of the gap. Each instance is subscribed before anything is published: a message
 * published before an instance's first subscription is not owed to it.
 */
import { Cluster, Redis } from 'ioredis'
import t, { type Test } from 'tap'
import type { EngineChannel, SseEngine } from '../../lib/engine/engine.js'
import { defineEvents, Type } from '../../lib/index.js'
import { channelKey } from '../../lib/engine/redis/keys.js'
import { redisEngine } from '../../lib/redis.js'
import { compareIds } from '../../lib/engine/redis/ids.js'
import { buildApp, sleep, waitUntil } from '../helpers/app.js'
import { Recorder, REDIS_MISSING, startCluster, type RedisCluster } from '../helpers/redis.js'
import { openTracked, seqs } from '../helpers/client.js'
import { dropShardSubscribers } from '../helpers/redis-cluster.js'
import { readAll } from '../helpers/engine.js'

const ENGINE_UNAVAILABLE = 'TYPED_SSE_ENGINE_UNAVAILABLE'
const HISTORY = { maxEvents: 100_000, maxAgeMs: false } as const
const CHANNELS = Array.from({ length: 9 }, (_, i) => `room${i}`)
const COMMAND_TIMEOUT_MS = 1000
const FAILOVER_TRIALS = 5
const RECOVERY_MS = 20_000

if (REDIS_MISSING !== undefined) t.comment(REDIS_MISSING)
const cluster = REDIS_MISSING === undefined ? await startCluster(t) : undefined as unknown as RedisCluster

function engine (t: Test, prefix: string, viaClient: boolean): SseEngine {
  let made: SseEngine
  if (viaClient) {
    // A Cluster of the user's: the engine duplicates it, and never closes it.
    const client = new Cluster(cluster.nodes, { lazyConnect: true })
    t.teardown(() => client.disconnect())
    made = redisEngine({ client, prefix, commandTimeoutMs: COMMAND_TIMEOUT_MS })
  } else {
    made = redisEngine({ cluster: { nodes: cluster.nodes }, prefix, commandTimeoutMs: COMMAND_TIMEOUT_MS })
  }
  t.teardown(async () => await made.close())
  return made
}

/** The master port serving each slot, from CLUSTER SLOTS on a node. */
async function slotOwners (admin: Redis): Promise<(slot: number) => number> {
  const ranges = await admin.cluster('SLOTS') as unknown as Array<[number, number, [string, number]]>
  return (slot) => {
    const range = ranges.find(([from, to]) => slot >= from && slot <= to)
    if (range === undefined) throw new Error(`slot ${slot} is not served`)
    return range[2][1]
  }
}

interface Side {
  channels: Map<string, EngineChannel>
  seen: Map<string, Recorder>
}

/** How long the first subscriptions of an instance may take on a busy machine. */
const SUBSCRIBE_DEADLINE_MS = 30_000

/**
 * Resolves once the instance hears every channel (a read waits for the subscription,
 * up to the command timeout: tried again until a deadline). A message published elsewhere
 * before an instance's first subscription is not owed to it: its streams start there. So
 * a test publishes only once both instances are subscribed.
 */
async function subscribed (side: Side): Promise<void> {
  const deadline = Date.now() + SUBSCRIBE_DEADLINE_MS
  await Promise.all([...side.channels.values()].map(async (channel) => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await readAll(channel, undefined)
      } catch (err) {
        if (Date.now() > deadline || attempt === 100) throw err
        await sleep(100)
      }
    }
  }))
}

function open (made: SseEngine): Side {
  const channels = new Map<string, EngineChannel>()
  const seen = new Map<string, Recorder>()
  for (const name of CHANNELS) {
    const recorder = new Recorder()
    seen.set(name, recorder)
    channels.set(name, made.channel(name, HISTORY, recorder))
  }
  return { channels, seen }
}

t.test('channels spread over the 3 masters; two instances get every message once, in order; shard channels only', { skip: REDIS_MISSING }, async (t) => {
  const prefix = 'spread:'
  const a = engine(t, prefix, false)
  const b = engine(t, prefix, true)
  await Promise.all([a.ready?.(), b.ready?.()])
  const onA = open(a)
  const onB = open(b)
  await Promise.all([subscribed(onA), subscribed(onB)])
  const admin = new Redis(cluster.nodes[0].port, '127.0.0.1')
  t.teardown(() => admin.disconnect())
  const owner = await slotOwners(admin)
  const keys = CHANNELS.map((name) => channelKey(prefix, name))
  const slots = await Promise.all(keys.map(async (key) => await admin.cluster('KEYSLOT', key) as number))
  const masters = new Set(slots.map(owner))
  t.equal(masters.size, 3, `the ${CHANNELS.length} channels live on all 3 masters (slots ${slots.join(', ')})`)

  const acked = new Map<string, string[]>(CHANNELS.map((name) => [name, []]))
  await Promise.all(CHANNELS.map(async (name) => {
    for (let seq = 0; seq < 100; seq++) {
      const side = seq % 2 === 0 ? onA : onB
      acked.get(name)?.push(await side.channels.get(name)?.publish({ event: 'score', data: String(seq) }) as string)
    }
  }))
  for (const [label, side] of [['A', onA], ['B', onB]] as const) {
    await waitUntil(() => CHANNELS.every((name) => side.seen.get(name)?.messages.length === 100), 30_000, `${label}: 100 messages on every channel`)
  }
  await sleep(100)
  for (const name of CHANNELS) {
    t.same(onA.seen.get(name)?.ids, acked.get(name), `A, ${name}: every message once, in publish order`)
    t.same(onB.seen.get(name)?.ids, acked.get(name), `B, ${name}: the same`)
    t.same(onB.seen.get(name)?.messages.map((message) => message.data), Array.from({ length: 100 }, (_, i) => String(i)))
  }

  const shardChannels: string[] = []
  for (const port of masters) {
    const node = new Redis(port, '127.0.0.1')
    t.teardown(() => node.disconnect())
    const listed = await node.pubsub('SHARDCHANNELS') as string[]
    t.ok(listed.every((key) => owner(slots[keys.indexOf(key)]) === port), `master ${port} lists only its own channels`)
    shardChannels.push(...listed)
    t.same(await node.pubsub('CHANNELS'), [], `master ${port}: no classic pub/sub channel`)
  }
  t.same(shardChannels.sort(), [...keys].sort(), 'PUBSUB SHARDCHANNELS on the masters lists every channel')
})

t.test('two Fastify apps on the cluster: clients on B get every event published on A, once, in order, on each of 4 channels', { skip: REDIS_MISSING }, async (t) => {
  const scores = defineEvents({ score: Type.Object({ seq: Type.Integer() }) })
  const names = CHANNELS.slice(0, 4)
  async function app (made: SseEngine): Promise<{ port: number, publish: (name: string, seq: number) => Promise<unknown>, size: (name: string) => number }> {
    const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, engine: made } })
    const channels = new Map(names.map((name) => [name, app.sse.channel(name, scores, { history: true })]))
    app.get('/:name', async (request, reply) => {
      const channel = channels.get((request.params as { name: string }).name)
      if (channel !== undefined) await channel.subscribe(reply.sse(scores))
    })
    await start()
    return {
      port: (app.server.address() as { port: number }).port,
      publish: async (name, seq) => await channels.get(name)?.publish('score', { seq }),
      size: (name) => channels.get(name)?.size ?? 0
    }
  }
  const a = await app(redisEngine({ cluster: { nodes: cluster.nodes }, prefix: 'apps:' }))
  const b = await app(redisEngine({ cluster: { nodes: cluster.nodes }, prefix: 'apps:' }))
  // Last-Event-ID 0-0 (every entry ever added): the stream replays from the start, so it
  // holds what A publishes even before B's own subscription to the channel is up.
  const clients = names.map((name) => openTracked(t, b.port, `/${name}`, '0-0'))
  await waitUntil(() => names.every((name) => b.size(name) === 1), 3000, 'subscribed on B')
  await Promise.all(names.map(async (name) => { for (let seq = 0; seq < 50; seq++) await a.publish(name, seq) }))
  await Promise.all(clients.map(async (client) => await client.waitForEvents(50, 5000)))
  await sleep(100)
  for (const [i, client] of clients.entries()) t.same(seqs(client), Array.from({ length: 50 }, (_, seq) => seq), `${names[i]}: 50 events once, in order`)
})

/** Moves every key of `slot` from `node` to the master on `port` (what `redis-cli --cluster reshard` does). */
async function migrateSlot (node: Redis, port: number, slot: number): Promise<void> {
  for (let round = 0; round < 100; round++) {
    const keys = await node.cluster('GETKEYSINSLOT', slot, 100) as string[]
    if (keys.length === 0) return
    await node.call('MIGRATE', '127.0.0.1', String(port), '', '0', '5000', 'KEYS', ...keys)
  }
  throw new Error(`slot ${slot} still holds keys after 100 rounds`)
}

t.test('a slot moved to another master (Redis unsubscribes its shard channels): the channel is resubscribed there and caught up, every message once, in order', { skip: REDIS_MISSING }, async (t) => {
  const prefix = 'moving:'
  const key = channelKey(prefix, 'room')
  const a = engine(t, prefix, false)
  const b = engine(t, prefix, true)
  await Promise.all([a.ready?.(), b.ready?.()])
  const onA = new Recorder()
  const onB = new Recorder()
  const publisher = a.channel('room', HISTORY, onA)
  const subscriber = b.channel('room', HISTORY, onB)
  const acked: string[] = [await subscriber.publish({ event: 'score', data: 'start' }) as string]
  const masters = await cluster.masters()
  const admin = new Redis(masters[0], '127.0.0.1')
  t.teardown(() => admin.disconnect())
  const slot = await admin.cluster('KEYSLOT', key) as number
  const owner = await slotOwners(admin)
  const source = owner(slot)
  const target = masters.find((port) => port !== source) as number
  const nodes = new Map(await Promise.all(masters.map(async (port) => {
    const node = new Redis(port, '127.0.0.1')
    t.teardown(() => node.disconnect())
    return [port, { node, id: await node.cluster('MYID') as string }] as const
  })))
  const from = nodes.get(source) as { node: Redis, id: string }
  const to = nodes.get(target) as { node: Redis, id: string }

  let rejected = 0
  let isPublishing = true
  const publishing = (async () => {
    for (let tick = 0; isPublishing && tick < 1000; tick++) {
      await Promise.all(Array.from({ length: 5 }, async (_, i) => {
        await publisher.publish({ event: 'score', data: `${tick}.${i}` }).then((id) => { acked.push(id as string) }, () => { rejected++ })
      }))
      await sleep(10)
    }
  })()
  await sleep(200)
  // The documented way to move a slot: importing, migrating, its keys (the channel's
  // stream and its publish ids), then the new owner everywhere.
  await to.node.cluster('SETSLOT', slot, 'IMPORTING', from.id)
  await from.node.cluster('SETSLOT', slot, 'MIGRATING', to.id)
  await migrateSlot(from.node, target, slot)
  for (const { node } of nodes.values()) await node.cluster('SETSLOT', slot, 'NODE', to.id)
  await sleep(500)
  isPublishing = false
  await publishing
  acked.sort(compareIds)
  const last = acked[acked.length - 1]
  for (const [label, seen] of [['A', onA], ['B', onB]] as const) {
    await waitUntil(() => seen.ids.includes(last) || seen.gaps > 0, RECOVERY_MS, `${label}: the last message`)
    t.ok(seen.ids.every((id, i) => i === 0 || compareIds(seen.ids[i - 1], id) < 0), `${label}: in order, nothing twice`)
    t.ok(acked.every((id) => seen.ids.includes(id)) || seen.gaps > 0, `${label}: every acknowledged message (${seen.ids.length} of ${acked.length}), or a gap reported (${seen.gaps})`)
  }
  t.comment(`slot ${slot} moved from ${source} to ${target}; ${rejected} publishes rejected during the move`)
  t.same(await to.node.pubsub('SHARDCHANNELS'), [key], 'subscribed on the new owner')
  t.same(await from.node.pubsub('SHARDCHANNELS'), [], 'and no longer on the old one')
  // Let the next test find the slot where the cluster had it: move it back.
  await from.node.cluster('SETSLOT', slot, 'IMPORTING', to.id)
  await to.node.cluster('SETSLOT', slot, 'MIGRATING', from.id)
  await migrateSlot(to.node, source, slot)
  for (const { node } of nodes.values()) await node.cluster('SETSLOT', slot, 'NODE', from.id)
  await Promise.all([a.close(), b.close()])
})

t.test('a resubscribe refused by one master but confirmed by another: messages the confirmed one hears before the retry neither skip the outage nor leave a hole (no silent loss)', { skip: REDIS_MISSING }, async (t) => {
  const prefix = 'partial:'
  const name = 'partial-b'
  const masters = await cluster.masters()
  const admins = new Map(masters.map((port) => {
    const admin = new Redis(port, '127.0.0.1')
    t.teardown(() => admin.disconnect())
    return [port, admin] as const
  }))
  const admin = admins.get(masters[0]) as Redis
  const owner = await slotOwners(admin)
  // "frozen" on one master; "live" and "fresh" on another.
  const ports = new Map<string, number>()
  for (let i = 0; i < 100; i++) ports.set(`room${i}`, owner(await admin.cluster('KEYSLOT', channelKey(prefix, `room${i}`)) as number))
  const [frozen, frozenPort] = [...ports][0]
  const [live, livePort] = [...ports].find(([, port]) => port !== frozenPort) as [string, number]
  const [fresh] = [...ports].find(([channel, port]) => port === livePort && channel !== live) as [string, number]
  const a = engine(t, prefix, false)
  // B's connections carry a name, so the test can drop B's subscriptions and nobody else's.
  const b = redisEngine({ cluster: { nodes: cluster.nodes, options: { redisOptions: { connectionName: name } } }, prefix, commandTimeoutMs: 500 })
  t.teardown(async () => await b.close())
  await Promise.all([a.ready?.(), b.ready?.()])
  const onB = new Map([frozen, live, fresh].map((channel) => [channel, new Recorder()]))
  for (const channel of [frozen, live]) await readAll(b.channel(channel, HISTORY, onB.get(channel) as Recorder), undefined)
  const publishers = [live, fresh].map((channel) => a.channel(channel, HISTORY, new Recorder()))
  for (const publisher of publishers) await readAll(publisher, undefined)

  const acked = new Map<string, string[]>([[live, []], [fresh, []]])
  let isPublishing = true
  const publishing = (async () => {
    for (let i = 0; isPublishing && i < 1500; i++) {
      await Promise.all(publishers.map(async (publisher, j) => {
        acked.get(j === 0 ? live : fresh)?.push(await publisher.publish({ event: 'score', data: String(i) }) as string)
      }))
      await sleep(2)
    }
  })()
  await sleep(100)
  // B loses both subscriptions at once; its retry subscribes them in one call, which the
  // frozen master fails (its clients are paused past B's wait) while the live one confirms.
  const killed = await Promise.all([
    dropShardSubscribers(admins.get(frozenPort) as Redis, name, 1500),
    dropShardSubscribers(admins.get(livePort) as Redis, name)
  ])
  t.same(killed, [1, 1], `B's shard subscriptions dropped on ${frozenPort} (then paused 1500 ms) and on ${livePort}`)
  // Opened while B waits to retry: its first subscription joins that same call.
  b.channel(fresh, HISTORY, onB.get(fresh) as Recorder)
  await sleep(2500)
  isPublishing = false
  await publishing
  for (const channel of [live, fresh]) {
    const seen = onB.get(channel) as Recorder
    const all = acked.get(channel) as string[]
    const last = all[all.length - 1]
    await waitUntil(() => seen.ids.includes(last) || seen.gaps > 0, RECOVERY_MS, `B, ${channel}: the last message`)
    t.ok(seen.ids.every((id, i) => i === 0 || compareIds(seen.ids[i - 1], id) < 0), `B, ${channel}: in order, nothing twice`)
    // "fresh" is owed what follows the first message it delivered.
    const owed = channel === live || seen.ids.length === 0 ? all : all.filter((id) => compareIds(id, seen.ids[0]) >= 0)
    const missing = owed.filter((id) => !seen.ids.includes(id))
    t.ok(missing.length === 0 || seen.gaps > 0, `B, ${channel}: every one of ${owed.length} acknowledged messages owed, or a gap reported (${seen.gaps})`,
      { missing: missing.slice(0, 10), missingCount: missing.length })
  }
  await Promise.all([a.close(), b.close()])
})

interface FailoverOutcome {
  rejected: number
  slowestMs: number
  exact: number
  gapped: number
}

/**
 * One failover trial: A and B serve every channel, A publishes on all of them (about
 * 450 a second), a master is killed with SIGKILL, publishing goes on until the
 * promoted replica accepts that master's channels again; then every channel on both
 * instances must hold every acknowledged message once and in order, or have been told
 * of the gap.
 */
async function failover (t: Test, trial: number): Promise<FailoverOutcome> {
  const prefix = `failover${trial}:`
  const a = engine(t, prefix, false)
  const b = engine(t, prefix, true)
  await Promise.all([a.ready?.(), b.ready?.()])
  const onA = open(a)
  const onB = open(b)
  await Promise.all([subscribed(onA), subscribed(onB)])
  const acked = new Map<string, string[]>(CHANNELS.map((name) => [name, []]))
  for (const name of CHANNELS) acked.get(name)?.push(await onB.channels.get(name)?.publish({ event: 'score', data: 'start' }) as string)

  const masters = await cluster.masters()
  const admin = new Redis(masters[(trial + 1) % masters.length], '127.0.0.1')
  t.teardown(() => admin.disconnect())
  const owner = await slotOwners(admin)
  const victim = masters[trial % masters.length]
  const slots = await Promise.all(CHANNELS.map(async (name) => await admin.cluster('KEYSLOT', channelKey(prefix, name)) as number))
  const onVictim = CHANNELS.filter((_, i) => owner(slots[i]) === victim)
  t.ok(onVictim.length > 0, `trial ${trial}: channels on master ${victim}: ${onVictim.join(', ')}`)

  const codes: Array<string | undefined> = []
  let slowestMs = 0
  let killedAt = 0
  let backAt = 0
  const publishes: Array<Promise<void>> = []
  const deadline = Date.now() + RECOVERY_MS
  for (let tick = 0; (backAt === 0 || Date.now() < backAt + 300) && Date.now() < deadline; tick++) {
    for (const name of CHANNELS) {
      const startedAt = Date.now()
      publishes.push(onA.channels.get(name)?.publish({ event: 'score', data: String(tick) }).then((id) => {
        acked.get(name)?.push(id as string)
        if (killedAt > 0 && onVictim.includes(name) && startedAt > killedAt && backAt === 0) backAt = Date.now()
      }, (err: { code?: string }) => { codes.push(err.code) }).finally(() => {
        slowestMs = Math.max(slowestMs, Date.now() - startedAt)
      }) as Promise<void>)
    }
    if (tick === 25) {
      await cluster.server(victim).kill('SIGKILL')
      killedAt = Date.now()
    }
    await sleep(20)
  }
  await Promise.all(publishes)
  t.ok(backAt > 0, `trial ${trial}: the promoted replica accepted publishes ${backAt - killedAt} ms after the kill`)
  t.ok(codes.every((code) => code === ENGINE_UNAVAILABLE), `trial ${trial}: ${codes.length} publishes rejected, each with ${ENGINE_UNAVAILABLE}`)
  t.ok(slowestMs < COMMAND_TIMEOUT_MS + 1500, `trial ${trial}: every publish settled within the command timeout (slowest ${slowestMs} ms)`)

  let exact = 0
  let gapped = 0
  // Redis replicates asynchronously: a publish the killed master acknowledged may never have
  // reached the replica that took over. Such a message is lost to Redis itself (no stream
  // holds it, so nobody can replay it); the engine's promise is about what Redis kept.
  const reader = new Cluster(cluster.nodes)
  t.teardown(() => reader.disconnect())
  let lostByRedis = 0
  for (const [label, side] of [['A', onA], ['B', onB]] as const) {
    for (const name of CHANNELS) {
      const seen = side.seen.get(name) as Recorder
      const kept = new Set((await reader.xrange(channelKey(prefix, name), '-', '+')).map(([id]) => id))
      const all = (acked.get(name) as string[]).sort(compareIds)
      const expected = all.filter((id) => kept.has(id) || seen.ids.includes(id))
      if (label === 'A') lostByRedis += all.length - expected.length
      const last = expected[expected.length - 1]
      await waitUntil(() => seen.ids.includes(last) || seen.gaps > 0, RECOVERY_MS, `trial ${trial}, ${label}, ${name}: the last message`)
      const ids = seen.ids
      t.ok(ids.every((id, i) => i === 0 || compareIds(ids[i - 1], id) < 0), `trial ${trial}, ${label}, ${name}: in order, nothing twice`)
      const hasAll = expected.every((id) => ids.includes(id))
      const missing = expected.filter((id) => !ids.includes(id))
      t.ok(hasAll || seen.gaps > 0, `trial ${trial}, ${label}, ${name}: every acknowledged message, or a gap reported`,
        { missing: missing.slice(0, 10), missingCount: missing.length, of: expected.length })
      if (seen.gaps > 0) gapped++
      else if (hasAll) exact++
    }
  }
  if (lostByRedis > 0) t.comment(`trial ${trial}: ${lostByRedis} acknowledged publishes were lost by Redis's asynchronous replication (in no stream after the failover)`)
  await cluster.server(victim).start() // comes back as a replica of the promoted node
  await cluster.settled()
  await Promise.all([a.close(), b.close()])
  return { rejected: codes.length, slowestMs, exact, gapped }
}

t.test(`a master killed (kill -9) while publishing: publishes reject with the code, never hang; delivery resumes; every channel complete or told of the gap (${FAILOVER_TRIALS} trials)`, { skip: REDIS_MISSING }, async (t) => {
  const outcomes: FailoverOutcome[] = []
  for (let trial = 0; trial < FAILOVER_TRIALS; trial++) outcomes.push(await failover(t, trial))
  const exact = outcomes.reduce((sum, outcome) => sum + outcome.exact, 0)
  const gapped = outcomes.reduce((sum, outcome) => sum + outcome.gapped, 0)
  t.comment(`${FAILOVER_TRIALS} failovers: ${outcomes.map((outcome) => outcome.rejected).join('/')} publishes rejected, slowest settle ${Math.max(...outcomes.map((outcome) => outcome.slowestMs))} ms; ` +
    `channel copies complete: ${exact}, told of a gap: ${gapped} (of ${FAILOVER_TRIALS * CHANNELS.length * 2})`)
})
