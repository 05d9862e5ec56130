/**
 * `maxStreamsPerKey` across instances on a real Redis Cluster (3 masters, 3 replicas on
 * loopback): the lease sets of keys on three different masters, two app instances, the
 * limit held per key on either instance, a closed stream's slot freed everywhere, and
 * leases renewed on every master.
 * One cluster for the file (about 10-20 s to start).
 */
import { Cluster } from 'ioredis'
import t from 'tap'
import { defineEvents, Type } from '../../lib/index.js'
import { redisEngine } from '../../lib/redis.js'
import { slotOf } from '../../lib/engine/redis/slot.js'
import { buildApp, sleep, type Teardown } from '../helpers/app.js'
import { openStream, type StreamClient } from '../helpers/client.js'
import { REDIS_MISSING, startCluster } from '../helpers/redis.js'

const events = defineEvents({ ready: Type.Boolean() })
const LIMIT = 2
const LEASE_TTL_MS = 1500

t.test('streams per key counted across two instances on a cluster, keys on every master', { skip: REDIS_MISSING }, async (t) => {
  const cluster = await startCluster(t)
  const admin = new Cluster(cluster.nodes)
  t.teardown(() => admin.disconnect())
  const ranges = await admin.cluster('SLOTS') as unknown as Array<[number, number, [string, number]]>
  const ownerOf = (key: string): number => {
    const slot = slotOf(key)
    return (ranges.find(([from, to]) => slot >= from && slot <= to) as [number, number, [string, number]])[2][1]
  }
  // One user whose lease set lives on each master.
  const users = new Map<number, string>()
  for (let i = 0; i < 200 && users.size < 3; i++) {
    const owner = ownerOf(`sse:admission:{user${i}}`)
    if (!users.has(owner)) users.set(owner, `user${i}`)
  }
  t.equal(users.size, 3, `users on 3 masters: ${[...users.values()].join(', ')}`)
  for (const user of users.values()) {
    t.equal(await admin.cluster('KEYSLOT', `sse:admission:{${user}}`), slotOf(user), `${user}: the stream key is the hash tag`)
  }

  async function instance (): Promise<string> {
    const { app, start } = await buildApp(t, {
      sse: {
        heartbeatMs: false,
        maxStreamsPerKey: LIMIT,
        streamKey: (request) => String(request.headers['x-user']),
        engine: redisEngine({ cluster: { nodes: cluster.nodes }, admission: { leaseTtlMs: LEASE_TTL_MS } })
      }
    })
    app.get('/s', { sse: events }, (_request, reply) => { reply.sse().send('ready', true) })
    return await start()
  }
  const origins = [await instance(), await instance()]
  async function open (tt: Teardown, origin: string, user: string): Promise<StreamClient> {
    const client = await openStream(tt, `${origin}/s`, { 'x-user': user })
    if (client.statusCode === 200) await client.events(1, 5000)
    return client
  }

  for (const user of users.values()) {
    const first = await open(t, origins[0], user)
    t.equal(first.statusCode, 200, `${user}: one stream on instance 1`)
    t.equal((await open(t, origins[1], user)).statusCode, 200, `${user}: one on instance 2`)
    t.equal((await open(t, origins[0], user)).statusCode, 503, `${user}: a third is refused on instance 1`)
    t.equal((await open(t, origins[1], user)).statusCode, 503, `${user}: and on instance 2`)
    t.equal(await admin.zcard(`sse:admission:{${user}}`), LIMIT, `${user}: ${LIMIT} leases in Redis`)
    first.destroy()
    const deadline = Date.now() + 5000
    while (await admin.zcard(`sse:admission:{${user}}`) !== 1 && Date.now() < deadline) await sleep(20)
    t.equal((await open(t, origins[1], user)).statusCode, 200, `${user}: the slot freed on instance 1 is taken on instance 2`)
  }
  // Renewals reach every master: past twice the time to live, every lease is still there.
  await sleep(2 * LEASE_TTL_MS)
  for (const user of users.values()) {
    t.equal(await admin.zcard(`sse:admission:{${user}}`), LIMIT, `${user}: leases renewed on its master`)
  }
})
