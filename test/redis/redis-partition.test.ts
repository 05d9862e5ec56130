/**
 * A partition on a real Redis Cluster (3 masters, 3 replicas, cluster-node-timeout
 * 1000 ms): a master frozen (SIGSTOP) well past the node timeout is failed over to its
 * replica, then woken (SIGCONT) while two instances go on publishing and listening.
 * The woken master runs the publishes waiting in its sockets and tells the
 * subscriptions still open on it; ioredis resends a command whose connection closed.
 * Every message the cluster kept must reach both instances once and in order, or be
 * covered by a resync reported where it would have been; nothing may be appended
 * twice (bench/chaos-check.ts judges).
 */
import { Cluster, Redis } from 'ioredis'
import t, { type Test } from 'tap'
import type { EngineChannel, SseEngine } from '../../lib/engine/engine.js'
import { redisEngine } from '../../lib/redis.js'
import { channelKey, channelKeys } from '../../lib/engine/redis/keys.js'
import { defineScripts, publishLimits } from '../../lib/engine/redis/scripts.js'
import { checkDeliveries, describeViolations, type ChannelTruth, type Recording, SequenceRecorder } from '../../bench/chaos-check.js'
import { sleep } from '../helpers/app.js'
import { REDIS_MISSING, startCluster, type RedisCluster } from '../helpers/redis.js'

const HISTORY = { maxEvents: 100_000, maxAgeMs: false } as const
const CHANNELS = Array.from({ length: 9 }, (_, i) => `room${i}`)
const COMMAND_TIMEOUT_MS = 1000
const TRIALS = 5
/** 3x the cluster's node timeout: the replica is promoted while the master sleeps. */
const PAUSE_MS = 3000
/** Publishing goes on this long after the master wakes. */
const AFTER_WAKE_MS = 2000
const RECOVERY_MS = 30_000

if (REDIS_MISSING !== undefined) t.comment(REDIS_MISSING)
const cluster = REDIS_MISSING === undefined ? await startCluster(t) : undefined as unknown as RedisCluster

interface Instance {
  readonly engine: SseEngine
  readonly channels: Map<string, EngineChannel>
  readonly recorders: Map<string, SequenceRecorder>
}

function instance (t: Test, prefix: string): Instance {
  const engine = redisEngine({ cluster: { nodes: cluster.nodes }, prefix, commandTimeoutMs: COMMAND_TIMEOUT_MS })
  t.teardown(async () => await engine.close())
  const recorders = new Map(CHANNELS.map((name) => [name, new SequenceRecorder()]))
  const channels = new Map(CHANNELS.map((name) => [name, engine.channel(name, HISTORY, recorders.get(name) as SequenceRecorder)]))
  return { engine, channels, recorders }
}

/** Resolves once the instance hears every channel (retried: a busy machine may need more than one command timeout). */
async function subscribed (side: Instance): Promise<void> {
  await Promise.all([...side.channels.values()].map(async (channel) => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await channel.readPage(undefined, { maxEvents: 1, maxBytes: 0 })
      } catch (err) {
        if (attempt === 100) throw err
        await sleep(100)
      }
    }
  }))
}

interface TrialOutcome {
  acked: number
  rejected: number
  lostByRedis: number
  gaps: number
  covered: number
  failures: number
}

async function trial (t: Test, n: number): Promise<TrialOutcome> {
  const prefix = `pause${n}:`
  const a = instance(t, prefix)
  const b = instance(t, prefix)
  await Promise.all([a.engine.ready?.(), b.engine.ready?.()])
  await Promise.all([subscribed(a), subscribed(b)])
  const masters = await cluster.masters()
  const victim = masters[n % masters.length]
  const attempted = new Map(CHANNELS.map((name) => [name, new Set<string>()]))
  const acked = new Map(CHANNELS.map((name) => [name, new Map<string, string>()]))
  let rejected = 0
  const publishes: Array<Promise<void>> = []
  let pausedAt = 0
  let wokenAt = 0
  const deadline = Date.now() + RECOVERY_MS
  for (let tick = 0; (wokenAt === 0 || Date.now() < wokenAt + AFTER_WAKE_MS) && Date.now() < deadline; tick++) {
    for (const [i, name] of CHANNELS.entries()) {
      // Both instances publish, so both command connections meet the frozen master.
      const side = (tick + i) % 2 === 0 ? a : b
      const data = `${n}.${tick}.${name}`
      attempted.get(name)?.add(data)
      publishes.push((side.channels.get(name) as EngineChannel).publish({ event: 'score', data }).then(
        (id) => { acked.get(name)?.set(id as string, data) },
        () => { rejected++ }))
    }
    if (tick === 20) {
      cluster.server(victim).signal('SIGSTOP')
      pausedAt = Date.now()
    }
    if (pausedAt > 0 && wokenAt === 0 && Date.now() > pausedAt + PAUSE_MS) {
      cluster.server(victim).signal('SIGCONT')
      wokenAt = Date.now()
    }
    await sleep(20)
  }
  if (wokenAt === 0) cluster.server(victim).signal('SIGCONT')
  await Promise.all(publishes)

  const reader = new Cluster(cluster.nodes)
  t.teardown(() => reader.disconnect())
  const truths = new Map<string, ChannelTruth>()
  for (const name of CHANNELS) {
    const kept = new Map((await reader.xrange(channelKey(prefix, name), '-', '+')).map(([id, fields]) => [id, fields[fields.indexOf('d') + 1]] as const))
    truths.set(name, { attempted: attempted.get(name) as Set<string>, acked: acked.get(name) as Map<string, string>, kept })
  }
  // Both instances have heard the newest kept message of every channel, or reported a gap after their last.
  const sides = [['A', a], ['B', b]] as const
  const settledBy = Date.now() + RECOVERY_MS
  const isSettled = (): boolean => sides.every(([, side]) => CHANNELS.every((name) => {
    const kept = [...(truths.get(name) as ChannelTruth).kept.keys()]
    const seen = (side.recorders.get(name) as SequenceRecorder).seen
    return kept.length === 0 || seen.some((each) => each.kind === 'message' && each.id === kept[kept.length - 1]) || seen[seen.length - 1]?.kind === 'gap'
  }))
  while (!isSettled() && Date.now() < settledBy) await sleep(100)
  await sleep(200)
  const recordings: Recording[] = sides.flatMap(([label, side]) => CHANNELS.map((name) => ({
    label: `${label}/${name}`, channel: name, seen: [...(side.recorders.get(name) as SequenceRecorder).seen]
  })))
  const report = checkDeliveries(recordings, truths)
  const total = [...acked.values()].reduce((sum, map) => sum + map.size, 0)
  t.same(describeViolations(report.violations), '', `trial ${n} (master ${victim} frozen ${wokenAt - pausedAt} ms): ${total} acknowledged; ` +
    `every kept message delivered once and in order, or covered by a resync; nothing twice (${report.delivered} deliveries, ${report.gaps} resyncs covering ${report.covered})`)
  if (report.lostByRedis > 0) t.comment(`trial ${n}: ${report.lostByRedis} acknowledged publishes are in no stream (lost by Redis's asynchronous replication)`)
  // The woken master rejoins as a replica: let the cluster settle before the next trial.
  await cluster.settled()
  await Promise.all([a.engine.close(), b.engine.close()])
  return { acked: total, rejected, lostByRedis: report.lostByRedis, gaps: report.gaps, covered: report.covered, failures: report.violations.length }
}

t.test(`a master frozen past cluster-node-timeout, failed over, then woken, while publishing: no silent gap, nothing twice (${TRIALS} trials)`, { skip: REDIS_MISSING }, async (t) => {
  const outcomes: TrialOutcome[] = []
  for (let n = 0; n < TRIALS; n++) outcomes.push(await trial(t, n))
  const sum = (pick: (outcome: TrialOutcome) => number): number => outcomes.reduce((total, outcome) => total + pick(outcome), 0)
  t.comment(`${TRIALS} pauses of ${PAUSE_MS} ms: ${sum((o) => o.acked)} acknowledged, ${sum((o) => o.rejected)} rejected, ` +
    `${sum((o) => o.lostByRedis)} lost by Redis, ${sum((o) => o.gaps)} resyncs covering ${sum((o) => o.covered)} messages, ${sum((o) => o.failures)} violations`)
})

t.test('the keys of a trial live on every master, so each pause meets some of them', { skip: REDIS_MISSING }, async (t) => {
  const admin = new Redis(cluster.nodes[0].port, '127.0.0.1')
  t.teardown(() => admin.disconnect())
  const slots = await Promise.all(CHANNELS.map(async (name) => await admin.cluster('KEYSLOT', `{pause0:${name}}`) as number))
  const ranges = await admin.cluster('SLOTS') as unknown as Array<[number, number, [string, number]]>
  const owners = new Set(slots.map((slot) => ranges.findIndex(([from, to]) => slot >= from && slot <= to)))
  t.equal(owners.size, 3, `${CHANNELS.length} channels over the 3 slot ranges`)
})

t.test('one publish sent twice (a client that retries the script) is appended and published once; another publish is appended', { skip: REDIS_MISSING }, async (t) => {
  const connection = new Cluster(cluster.nodes)
  const listener = new Cluster(cluster.nodes, { shardedSubscribers: true })
  t.teardown(() => { connection.disconnect(); listener.disconnect() })
  const key = '{dedupe:room}'
  const keys = channelKeys(key)
  const heard: string[] = []
  listener.on('smessage', (_channel: string, text: string) => heard.push(text))
  await listener.ssubscribe(key)
  const scripts = defineScripts(connection, true)
  const first = await scripts.append(keys, 'score', '1', publishLimits(1000, 0, 60_000), 'pub.1', '0-0')
  const other = await scripts.append(keys, 'score', '2', publishLimits(1000, 0, 60_000), 'pub.2', '0-0')
  // Resent after another publish landed: found among the entries after what the publisher had seen.
  const again = await scripts.append(keys, 'score', '1', publishLimits(1000, 0, 60_000), 'pub.1', '0-0')
  t.equal(again, first, 'the retry answers with the id of the entry already appended')
  t.not(other, first)
  t.same((await connection.xrange(key, '-', '+')).map(([id]) => id), [first, other], 'two entries, not three')
  const third = await scripts.append(keys, 'score', '3', publishLimits(1000, 0, 60_000), 'pub.3', other)
  t.equal(await scripts.append(keys, 'score', '3', publishLimits(1000, 0, 60_000), 'pub.3', other), third, 'the newest entry is always looked at')
  const deadline = Date.now() + 5000
  while (heard.length < 2 && Date.now() < deadline) await sleep(20)
  await sleep(200)
  while (heard.length < 3 && Date.now() < deadline) await sleep(20)
  await sleep(200)
  t.same(heard.map((text) => text.split('\n')[0]), [`${first} pub.1 -`, `${other} pub.2 ${first} pub.1`, `${third} pub.3 ${other} pub.2`], 'published once each, each naming the entry before it (id and publish id)')
})
