/**
 * Scenarios of keyed state, snapshots, coalescing and presence, run against every
 * engine (test/state.test.ts in memory, test/state-redis.test.ts on a real Redis and a
 * real Redis Cluster): two app instances on one backend, real sockets read by the spec
 * parser. `makeEngine` is called once per instance.
 */
import type { Test } from 'tap'
import { defineEvents, REMOVE_EVENT, RESYNC_EVENT, Type, type SseEngine } from '../../lib/index.js'
import { buildApp, sleep, waitUntil, type TestApp } from './app.js'
import { openRawStream, openTracked, type RawStream } from './client.js'
import type { ParsedEvent } from './parser.js'

export const prices = defineEvents({
  price: Type.Object({ symbol: Type.String(), seq: Type.Integer(), pad: Type.Optional(Type.String()) }),
  note: Type.Object({ text: Type.String() })
})

const KEYS = 20

export interface Instance extends TestApp {
  port: number
  /** Subscriptions of `/prices` and `/slow` that are live (subscribe() resolved: snapshot sent, engine subscribed). */
  readonly live: number
}

/** An app with a `/prices` route subscribing with `snapshot: true` (and a paused-reader route under 'coalesce'). */
export async function instance (t: Test, engine: SseEngine, options: { maxEvents?: number, maxKeys?: number } = {}): Promise<Instance> {
  const built = await buildApp(t, { sse: { heartbeatMs: false, engine } })
  const channel = built.app.sse.channel('prices', prices, { history: { maxEvents: options.maxEvents ?? 1000 }, state: { price: (d) => d.symbol }, maxKeys: options.maxKeys })
  let live = 0
  built.app.get('/prices', async (_request, reply) => {
    await channel.subscribe(reply.sse(prices), { snapshot: true })
    live++
  })
  built.app.get('/plain', async (_request, reply) => { await channel.subscribe(reply.sse(prices)) })
  built.app.get('/slow', async (_request, reply) => {
    await channel.subscribe(reply.sse(prices, { queuePolicy: 'coalesce' }))
    live++
  })
  const origin = await built.start()
  return { ...built, port: Number(new URL(origin).port), get live () { return live } }
}

/** The prices channel of an instance (as declared by {@link instance}). */
export function pricesOf (app: Instance, options: { maxEvents?: number, maxKeys?: number } = {}) {
  return app.app.sse.channel('prices', prices, { history: { maxEvents: options.maxEvents ?? 1000 }, state: { price: (d) => d.symbol }, maxKeys: options.maxKeys })
}

/** {@link waitUntil} for a condition that has to ask (an engine read). */
async function waitFor (condition: () => Promise<boolean>, timeoutMs: number, label: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${label}: not met after ${timeoutMs} ms`)
    await sleep(20)
  }
}

const data = (event: ParsedEvent): { symbol: string, seq: number } => JSON.parse(event.data)

/** Registers the scenarios of one engine on `t`. */
export function stateScenarios (t: Test, makeEngine: () => SseEngine): void {
  t.test('keyed state across two instances: state(), remove() with sse:remove, maxKeys refused with a code', async (t) => {
    const a = await instance(t, makeEngine(), { maxKeys: 3 })
    const b = await instance(t, makeEngine(), { maxKeys: 3 })
    const onA = pricesOf(a, { maxKeys: 3 })
    const onB = pricesOf(b, { maxKeys: 3 })
    const watcher = openTracked(t, b.port, '/prices')
    await watcher.ready
    // Live on b before a publishes: a busy cluster may take a while to subscribe.
    await waitUntil(() => b.live === 1, 20_000, 'the watcher is live on b')
    await onA.publish('price', { symbol: 'ACME', seq: 1 })
    await onA.publish('price', { symbol: 'INIT', seq: 2 })
    await onA.publish('price', { symbol: 'ACME', seq: 3 })
    await onA.publish('note', { text: 'unkeyed' })
    const state = await onB.state()
    t.same(state.map(({ key, event, data }) => ({ key, event, data })), [
      { key: 'INIT', event: 'price', data: { symbol: 'INIT', seq: 2 } },
      { key: 'ACME', event: 'price', data: { symbol: 'ACME', seq: 3 } }
    ], 'the latest event of each key, oldest first, read on the other instance')
    t.ok(state.every((entry) => typeof entry.id === 'string' && entry.id.length > 0), 'each with its id')

    await onA.publish('price', { symbol: 'ZETA', seq: 4 })
    const refused = await onA.publish('price', { symbol: 'OMEGA', seq: 5 }).then(() => undefined, (err: { code?: string }) => err)
    t.equal(refused?.code, 'TYPED_SSE_TOO_MANY_KEYS', 'a fourth key past maxKeys 3 is refused with its code')
    await onA.publish('price', { symbol: 'ACME', seq: 6 })
    t.pass('a known key is still updated at the limit')

    const removedId = await onB.remove('INIT')
    t.type(removedId, 'string', 'remove() resolves with the id of sse:remove')
    t.same((await onA.state()).map((entry) => entry.key), ['ZETA', 'ACME'], 'the key is gone on every instance')
    await onA.publish('price', { symbol: 'OMEGA', seq: 7 })
    t.same((await onB.state()).map((entry) => entry.key).sort(), ['ACME', 'OMEGA', 'ZETA'], 'a removed key makes room')

    const events = await watcher.waitForEvents(7, 30_000)
    const removal = events.find((event) => event.type === REMOVE_EVENT)
    t.same(removal === undefined ? undefined : JSON.parse(removal.data), { key: 'INIT' }, 'subscribers got sse:remove with the key')
    t.equal(removal?.lastEventId, removedId, 'carrying its id')
    t.equal(events.filter((event) => event.type === 'price').length, 5, 'and every accepted price, none of the refused one')
    t.throws(() => onA.remove(''), { code: 'TYPED_SSE_INVALID_STATE_KEY' }, 'an empty key is refused')
    t.throws(() => onA.publish('price', { symbol: '', seq: 8 }), { code: 'TYPED_SSE_INVALID_STATE_KEY' }, 'a key function giving an empty key is refused, nothing published')
  })

  t.test('snapshots taken while another instance publishes: each client has no gap and no duplicate', async (t) => {
    const a = await instance(t, makeEngine())
    const b = await instance(t, makeEngine())
    const onA = pricesOf(a)
    const TOTAL = 600
    const clients: RawStream[] = []
    let seq = 0
    const publishing = (async () => {
      for (; seq < TOTAL; seq++) {
        await onA.publish('price', { symbol: `K${seq % KEYS}`, seq })
        if (seq % 50 === 0) await sleep(5)
      }
    })()
    // Clients open at spread moments while the publishes run, alternately on each instance.
    for (let i = 0; i < 12; i++) {
      const target = i % 2 === 0 ? b : a
      const client = openTracked(t, target.port, '/prices')
      clients.push(client)
      await waitUntil(() => seq >= (i + 1) * (TOTAL / 14), 30_000, `publish ${(i + 1) * (TOTAL / 14)}`)
    }
    await publishing
    const final = new Map((await onA.state()).map((entry) => [entry.key, (entry.data as { seq: number }).seq]))
    t.equal(final.size, KEYS, 'the final state has every key')
    for (const [i, client] of clients.entries()) {
      // Every client ends with the last publish: wait for it, then judge what it got.
      await waitUntil(() => client.parser.events.some((event) => data(event).seq === TOTAL - 1), 30_000, `client ${i} reaches the end`)
      const got = client.parser.events.map(data)
      const seqs = got.map((entry) => entry.seq)
      const isIncreasing = seqs.every((value, j) => j === 0 || value > seqs[j - 1])
      t.ok(isIncreasing, `client ${i}: ${seqs.length} events, strictly increasing (no duplicate)`)
      const ids = client.parser.events.map((event) => event.lastEventId)
      t.equal(new Set(ids).size, ids.length, `client ${i}: every id once`)
      // No gap: a publish the client did not get was replaced by a later one of its key that it did get.
      const received = new Set(seqs)
      const newestOf = new Map<string, number>()
      for (const entry of got) newestOf.set(entry.symbol, entry.seq)
      const missing = Array.from({ length: TOTAL }, (_, s) => s).filter((s) => !received.has(s) && !((newestOf.get(`K${s % KEYS}`) ?? -1) > s))
      t.same(missing, [], `client ${i}: nothing missing that its view does not supersede`)
      t.same(newestOf, final, `client ${i}: its view is the final state`)
      t.ok(seqs.length < TOTAL || i === 0, `client ${i}: it got a snapshot, not the whole history (${seqs.length} of ${TOTAL})`)
    }
  })

  t.test('an id that cannot be replayed gets sse:resync then the state; a replayable id gets the replay', async (t) => {
    const a = await instance(t, makeEngine(), { maxEvents: 5 })
    const b = await instance(t, makeEngine(), { maxEvents: 5 })
    const onA = pricesOf(a, { maxEvents: 5 })
    const ids: string[] = []
    for (let seq = 0; seq < 30; seq++) ids.push(await onA.publish('price', { symbol: `K${seq % 3}`, seq }))

    const evicted = openTracked(t, b.port, '/prices', ids[2])
    const events = await evicted.waitForEvents(4, 10_000)
    t.equal(events[0].type, RESYNC_EVENT, 'sse:resync first')
    t.match(JSON.parse(events[0].data), { reason: 'evicted', lastEventId: ids[2] })
    t.same(events.slice(1).map((event) => data(event).seq), [27, 28, 29], 'then the state, one event per key')
    t.same(events.slice(1).map((event) => event.lastEventId), ids.slice(27), 'with their ids')
    await onA.publish('price', { symbol: 'K0', seq: 30 })
    const [live] = (await evicted.waitForEvents(5, 10_000)).slice(4)
    t.equal(data(live).seq, 30, 'then live events')

    const replayable = openTracked(t, b.port, '/prices', ids[27])
    const replayed = await replayable.waitForEvents(3, 10_000)
    t.same(replayed.map((event) => data(event).seq), [28, 29, 30], 'a replayable id replays as before, no snapshot')

    const unknown = openTracked(t, a.port, '/prices', 'not-an-id')
    const resynced = await unknown.waitForEvents(4, 10_000)
    t.equal(resynced[0].type, RESYNC_EVENT)
    t.same(resynced.slice(1).map((event) => data(event).seq), [28, 29, 30], 'an unknown id: resync, then the state')
  })

  t.test("a reader that never reads under 'coalesce': 10,000 updates over 10 keys, not closed, at most 10 held, the latest of each when it reads", async (t) => {
    // History longer than the run: should the engine of b catch up after a gap in its
    // subscription (a busy machine), the read finds every update and nothing is resynced.
    const history = { maxEvents: 20_000 }
    const a = await instance(t, makeEngine(), history)
    const b = await instance(t, makeEngine(), history)
    const onA = pricesOf(a, history)
    const reader = openRawStream(b.port, '/slow', { paused: true })
    t.teardown(() => reader.close())
    const onB = pricesOf(b, history)
    // Live on b (its engine subscribed) before a publishes: otherwise the first updates
    // are published before b listens, and b never delivers them.
    await waitUntil(() => onB.size === 1 && b.live === 1, 20_000, 'subscribed')
    const [stream] = [...onB.subscribers()]
    // A 2 KB pad fills the socket buffers within the first few thousand updates.
    const pad = 'x'.repeat(2000)
    const UPDATES = 10_000
    let maxQueued = 0
    for (let seq = 0; seq < UPDATES; seq++) {
      await onA.publish('price', { symbol: `K${seq % 10}`, seq, pad })
      maxQueued = Math.max(maxQueued, stream.queuedBytes)
    }
    await onA.publish('note', { text: 'sync' })
    const delivered = (): string => `delivered ${onB.stats().delivered} of ${UPDATES + 1}, coalesced ${b.app.sse.stats().coalescedEvents}, stream open: ${String(stream.isOpen)}`
    await waitUntil(() => b.app.sse.stats().coalescedEvents > 0 && onB.stats().delivered >= UPDATES + 1, 60_000, 'delivered on b')
      .catch((err: Error) => { throw new Error(`${err.message} (${delivered()})`) })
    const frameBytes = 2200
    t.ok(stream.isOpen, 'the stream is still open')
    t.ok(stream.queuedBytes > 0, 'it is backed up')
    t.ok(maxQueued <= 11 * frameBytes, `it held at most one event per key (plus the unkeyed one): ${maxQueued} bytes at most`)
    const coalesced = b.app.sse.stats().coalescedEvents
    t.ok(coalesced > 1000, `stats() counts the coalesced events: ${coalesced}`)
    reader.socket.resume()
    await waitUntil(() => reader.parser.events.some((event) => event.type === 'note'), 30_000, 'the reader catches up')
    const prices = reader.parser.events.filter((event) => event.type === 'price').map(data)
    const latest = new Map<string, number>()
    for (const entry of prices) latest.set(entry.symbol, entry.seq)
    t.same([...latest].sort(), Array.from({ length: 10 }, (_, k) => [`K${k}`, UPDATES - 10 + k]).sort(), 'the latest of each key')
    t.ok(prices.length < UPDATES, `fewer events than published: ${prices.length}`)
    const seqs = prices.map((entry) => entry.seq)
    t.ok(seqs.every((value, j) => j === 0 || value > seqs[j - 1]), 'in order, none twice')
  })

  t.test('presence across two instances: members once, connection counts, sse:join and sse:leave once per member', async (t) => {
    const room = defineEvents({ chat: Type.Object({ text: Type.String() }) })
    const info = Type.Object({ name: Type.String() })
    const apps = await Promise.all([0, 1].map(async () => {
      const built = await buildApp(t, { sse: { heartbeatMs: false, engine: makeEngine() } })
      const channel = built.app.sse.channel('room', room, { history: true, presence: { info, events: true } })
      let live = 0
      built.app.get('/room', async (request, reply) => {
        const { user } = request.query as { user?: string }
        await channel.subscribe(reply.sse(room), user === undefined ? {} : { presence: { id: user, info: { name: user.toUpperCase() } } })
        live++
      })
      const origin = await built.start()
      return { ...built, channel, port: Number(new URL(origin).port), get live () { return live } }
    }))
    const [a, b] = apps
    const watcher = openTracked(t, a.port, '/room')
    await watcher.ready
    // Live once subscribe() resolved (the engine listens): a join published on b before
    // that is never heard on a (a channel's size counts the watcher earlier).
    await waitUntil(() => a.live === 1, 20_000, 'watcher live on a')
    const alice1 = openTracked(t, a.port, '/room?user=alice')
    const alice2 = openTracked(t, b.port, '/room?user=alice')
    const bob = openTracked(t, b.port, '/room?user=bob')
    await Promise.all([alice1.ready, alice2.ready, bob.ready])
    await waitFor(async () => (await a.channel.presence()).reduce((sum, member) => sum + member.connections, 0) === 3, 10_000, 'three connections')
    const members = (await b.channel.presence()).sort((x, y) => x.id.localeCompare(y.id))
    t.same(members, [{ id: 'alice', info: { name: 'ALICE' }, connections: 2 }, { id: 'bob', info: { name: 'BOB' }, connections: 1 }], 'each member once, with its connections on every instance')
    alice1.close()
    await waitFor(async () => (await a.channel.presence()).find((member) => member.id === 'alice')?.connections === 1, 10_000, 'alice down to one')
    alice2.close()
    bob.close()
    await waitFor(async () => (await a.channel.presence()).length === 0, 10_000, 'everyone left')
    await waitUntil(() => watcher.parser.events.filter((event) => event.type === 'sse:leave').length === 2, 10_000, 'two leaves')
    await sleep(100)
    const seen = watcher.parser.events.map((event) => `${event.type} ${JSON.parse(event.data).id as string}`)
    t.same(seen.filter((line) => line.startsWith('sse:join')).sort(), ['sse:join alice', 'sse:join bob'], 'one join per member, not per connection')
    t.same(seen.filter((line) => line.startsWith('sse:leave')).sort(), ['sse:leave alice', 'sse:leave bob'], 'one leave per member')
    t.ok(seen.indexOf('sse:join alice') < seen.indexOf('sse:leave alice'), 'a join before its leave')
    const join = watcher.parser.events.find((event) => event.type === 'sse:join')
    t.same(JSON.parse(join?.data ?? '{}').info, { name: JSON.parse(join?.data ?? '{}').id.toUpperCase() }, 'the join carries the info')
  })
}
