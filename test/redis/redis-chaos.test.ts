/**
 * The chaos run (bench/chaos-run.ts), short: three instances on a real redis-server
 * and on a real Redis Cluster, SSE clients over real sockets, faults chosen by a fixed
 * seed; the delivery checker (bench/chaos-check.ts) must find nothing. And the checker
 * itself, shown to catch each kind of broken promise planted in a recording.
 */
import t, { type Test } from 'tap'
import { checkDeliveries, describeViolations, type ChannelTruth, type Recording, type Seen } from '../../bench/chaos-check.js'
import { runChaos, type Topology } from '../../bench/chaos-run.js'
import { REDIS_MISSING } from '../helpers/redis.js'

if (REDIS_MISSING !== undefined) t.comment(REDIS_MISSING)

const message = (id: string, data: string): Seen => ({ kind: 'message', id, data })
const GAP: Seen = { kind: 'gap' }

/** A channel with five kept entries, all acknowledged. */
function truth (): Map<string, ChannelTruth> {
  const kept = new Map([['1-0', 'a'], ['2-0', 'b'], ['3-0', 'c'], ['4-0', 'd'], ['5-0', 'e']])
  return new Map([['room', { attempted: new Set(['a', 'b', 'c', 'd', 'e', 'x']), acked: new Map(kept), kept }]])
}

function check (seen: Seen[], truths = truth(), extra: Partial<Recording> = {}): string[] {
  return checkDeliveries([{ label: 'c', channel: 'room', seen, ...extra }], truths).violations.map((violation) => `${violation.kind} ${violation.id}`)
}

const all = [message('1-0', 'a'), message('2-0', 'b'), message('3-0', 'c'), message('4-0', 'd'), message('5-0', 'e')]

t.test('the checker passes a faithful recording and catches each planted fault', async (t) => {
  t.same(check(all), [], 'everything once, in order')
  t.same(check([all[0], all[1], GAP, all[3], all[4]]), [], 'a hole with a resync where it is: covered')
  t.same(check([all[0], all[1], all[3], all[4]]), ['missing 3-0'], 'dropped')
  t.same(check([all[0], all[1], all[2], all[2], all[3], all[4]]), ['duplicated 3-0'], 'duplicated by id')
  t.same(check([all[0], all[1], all[2], message('3-1', 'c'), all[3], all[4]]), ['duplicated 3-1', 'stale 3-1'], 'duplicated by content (one publish appended twice, seen twice)')
  t.same(check([all[0], all[2], all[1], all[3], all[4]]), ['reordered 2-0'], 'reordered')
  t.same(check([...all, message('6-0', 'never')]), ['invented 6-0'], 'invented: nobody published it')
  t.same(check([all[0], all[1], GAP, all[2], all[4]]), ['missing 4-0'], 'a resync before the hole covers nothing')
  t.same(check([all[0], all[1], all[3], GAP, all[4]]), ['missing 3-0'], 'nor does one after a later message')
  t.same(check([all[0], all[1], message('2-5', 'x'), all[2], all[3], all[4]]), ['stale 2-5'], 'stale: a message Redis did not keep, delivered as if current')
  t.same(check([all[0], all[1], message('2-5', 'x'), GAP, all[2], all[3], all[4]]), [], 'the same followed by a resync: covered')
  // A woken master and its successor give out ids from one clock: the same id, other data.
  t.same(check([all[0], all[1], message('3-0', 'x'), GAP, all[2], all[3], all[4]]), [], "a woken master's message with the id its successor gave, a resync, then the kept copy: once, in order")
  t.same(check([all[0], all[1], message('3-0', 'x'), all[3], all[4]]), ['stale 3-0', 'missing 3-0'], 'a stale copy with a kept id is not that entry: missing')
  t.same(check([all[0], all[1], all[3], message('3-0', 'x'), GAP, all[2], all[4]]), ['reordered 3-0', 'reordered 3-0'], 'after a resync, order goes on from the kept messages')
  const doubled = truth()
  const room = doubled.get('room') as ChannelTruth
  doubled.set('room', { ...room, kept: new Map([...room.kept, ['6-0', 'e']]) })
  t.same(check([...all, message('6-0', 'e')], doubled), ['duplicated 6-0', 'duplicated 6-0'], 'appended twice in Redis, and seen twice')
  t.same(check(all.slice(2), truth(), { from: '2-0' }), [], 'owed only what followed its start')
  t.same(check(all.slice(0, 3), truth(), { isCut: true }), [], 'a killed subscriber is owed up to its last message')
  const lost = truth()
  const acked = new Map((lost.get('room') as ChannelTruth).acked)
  acked.set('9-0', 'x')
  lost.set('room', { ...(lost.get('room') as ChannelTruth), acked })
  const report = checkDeliveries([{ label: 'c', channel: 'room', seen: all }], lost)
  t.same([report.violations, report.lostByRedis], [[], 1], "an acknowledged publish in no stream is Redis's loss, counted apart")
  t.match(describeViolations(checkDeliveries([{ label: 'c', channel: 'room', seen: [all[1], all[0]] }], truth()).violations), /reordered: 1 .*missing: 3/)
})

async function chaos (t: Test, topology: Topology, seed: number, durationMs: number): Promise<void> {
  const result = await runChaos({
    seed, topology, durationMs, instances: 3, channels: 3, clientsPerChannel: 2, publishEveryMs: 40,
    faultGapMs: topology === 'cluster' ? [2000, 4000] : [800, 2000]
  })
  const { report } = result
  t.ok(result.faults.length >= 3, `${result.faults.length} faults: ${result.faults.join('; ')}`)
  t.ok(report.delivered > 1000, `${report.delivered} deliveries of ${result.acked} acknowledged publishes (${result.rejected} rejected)`)
  t.same(describeViolations(report.violations), '', `seed ${seed}: every kept message delivered once, in order, or covered by a resync (${report.gaps} resyncs covering ${report.covered}); ` +
    `${report.lostByRedis} acknowledged publishes lost by Redis itself`)
}

t.test('chaos on one Redis (restarts without persistence, hangs, connection kills, instance kills, client drops), seed 11', { skip: REDIS_MISSING }, async (t) => {
  await chaos(t, 'single', 11, 15_000)
})

t.test('chaos on a Redis Cluster (failovers, woken masters, kill -9 of masters, connection kills, instance kills, client drops), seed 3', { skip: REDIS_MISSING }, async (t) => {
  await chaos(t, 'cluster', 3, 20_000)
})
