/**
 * Keyed state, snapshots, coalescing and presence on a real Redis Cluster (3 masters,
 * 3 replicas on loopback): the scenarios of test/helpers/state.ts with two instances,
 * each its own engine. A channel's stream, state and presence keys share its hash tag,
 * so each script runs on the one shard that owns them.
 */
import t from 'tap'
import { redisEngine } from '../../lib/redis.js'
import { channelKey, channelKeys } from '../../lib/engine/redis/keys.js'
import { slotOf } from '../../lib/engine/redis/slot.js'
import { REDIS_MISSING, startCluster, type RedisCluster } from '../helpers/redis.js'
import { stateScenarios } from '../helpers/state.js'

// Under CI a missing redis-server fails the tests instead of skipping them.
const skip = REDIS_MISSING !== undefined && process.env.CI === undefined ? REDIS_MISSING : false
const cluster = REDIS_MISSING === undefined ? await startCluster(t) : undefined as unknown as RedisCluster
let prefixes = 0

t.test("a channel's keys are in one hash slot", async (t) => {
  for (const name of ['prices', 'room:{7}', 'a}b', 'x{']) {
    const key = channelKey('sse:', name)
    const slots = new Set([key, ...Object.values(channelKeys(key))].map(slotOf))
    t.equal(slots.size, 1, `channel ${JSON.stringify(name)}: one slot`)
  }
})

t.test('on a Redis Cluster', { skip }, async (t) => {
  // A cluster that just settled may not answer a first subscription within the command
  // timeout on a busy machine (the stream is then closed for its client to retry, which
  // the raw test clients do not): one subscribe and publish first, tried until it works.
  const deadline = Date.now() + 60_000
  for (let isWarm = false; !isWarm;) {
    const engine = redisEngine({ cluster: { nodes: cluster.nodes }, prefix: 'warm:' })
    try {
      await engine.ready?.()
      const channel = engine.channel('warm', { maxEvents: 10, maxAgeMs: false }, { deliver () {}, gap () {} })
      await channel.ready?.()
      await channel.publish({ event: 'warm', data: '{}' })
      isWarm = true
    } catch (err) {
      if (Date.now() > deadline) throw err
    } finally {
      await engine.close()
    }
  }
  // Generous timeouts: on a busy 2-core machine a cluster's first subscription can take
  // seconds, and a stream whose subscription times out is closed (raw clients do not retry).
  const timeouts = { connectTimeoutMs: 20_000, commandTimeoutMs: 20_000 }
  stateScenarios(t, () => redisEngine({ cluster: { nodes: cluster.nodes }, prefix: `c${Math.floor(prefixes++ / 2)}:`, ...timeouts }))
})
