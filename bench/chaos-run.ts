/**
 * A seeded chaos run: several instances (Fastify apps in this process, each with its
 * own Redis engine) on one Redis or a Redis Cluster, SSE clients reading them over
 * real sockets (reconnecting with Last-Event-ID to any live instance, as browsers
 * behind a load balancer do), publishers on every instance, and faults chosen by the
 * seed. Every publish and every delivery is recorded; at the end bench/chaos-check.ts
 * judges the delivery invariant against what Redis kept. Run by bench/chaos.ts (CLI)
 * and test/redis/redis-chaos.test.ts.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import http from 'node:http'
import { Cluster, Redis } from 'ioredis'
import sse, { defineEvents, Type, type Channel } from '../lib/index.js'
import { redisEngine } from '../lib/redis.js'
import { channelKey } from '../lib/engine/redis/keys.js'
import type { SseEngine } from '../lib/engine/engine.js'
import { EventStreamParser } from '../test/helpers/parser.js'
import { RedisServer, freePort, rawCommand, startCluster, type RedisCluster } from '../test/helpers/redis.js'
import { checkDeliveries, type ChannelTruth, type CheckReport, type Seen } from './chaos-check.js'

export type Topology = 'single' | 'cluster'

export type Fault = 'restart' | 'hang' | 'kill-connections' | 'failover' | 'woken-master' | 'kill-master' | 'instance-kill' | 'client-drop'

/** Faults each topology draws from. */
export const FAULTS: Record<Topology, readonly Fault[]> = {
  single: ['restart', 'hang', 'kill-connections', 'instance-kill', 'client-drop'],
  cluster: ['failover', 'woken-master', 'kill-master', 'kill-connections', 'instance-kill', 'client-drop']
}

export interface ChaosOptions {
  readonly seed: number
  readonly topology: Topology
  /** How long publishing and faults go on. */
  readonly durationMs: number
  readonly instances: number
  readonly channels: number
  readonly clientsPerChannel: number
  /** Each instance publishes on each channel this often. */
  readonly publishEveryMs: number
  /** Faults come at random intervals between these. */
  readonly faultGapMs: readonly [number, number]
  /** Progress lines (stderr in the CLI). */
  readonly log?: (line: string) => void
}

export interface ChaosResult {
  readonly options: Omit<ChaosOptions, 'log'>
  /** Each fault injected, in order, with its time from the start. */
  readonly faults: string[]
  readonly attempted: number
  readonly acked: number
  readonly rejected: number
  readonly reconnects: number
  readonly report: CheckReport
}

/** mulberry32: a small seeded generator, so a seed replays the same choices. */
export function seeded (seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let x = state
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
const catalog = defineEvents({ score: Type.Object({ p: Type.String() }) })
const COMMAND_TIMEOUT_MS = 1000
/** A client reconnects after a pause in this range (a browser's retry, jittered). */
const RECONNECT_MS: readonly [number, number] = [50, 400]
/** After the last fault, clients get this long to receive what Redis kept. */
const SETTLE_MS = 30_000

interface Instance {
  readonly app: FastifyInstance
  readonly engine: SseEngine
  readonly port: number
  readonly channels: Map<string, Channel<typeof catalog>>
  isAlive: boolean
}

/** One SSE client over its reconnects: what it got, gaps in place. */
class ChaosClient {
  readonly seen: Seen[] = []
  reconnects = 0
  #request: http.ClientRequest | undefined
  #lastEventId = '0-0'
  #isStopped = false
  readonly #channel: string
  readonly #pick: () => Instance | undefined
  readonly #random: () => number

  constructor (channel: string, pick: () => Instance | undefined, random: () => number) {
    this.#channel = channel
    this.#pick = pick
    this.#random = random
  }

  get channel (): string { return this.#channel }

  /** The newest id received. */
  get lastId (): string { return this.#lastEventId }

  connect (): void {
    if (this.#isStopped) return
    const instance = this.#pick()
    if (instance === undefined) {
      this.#retry()
      return
    }
    // Last-Event-ID 0-0 at first: every entry the stream ever had is owed to this client.
    const request = http.get(`http://127.0.0.1:${instance.port}/${this.#channel}`, {
      agent: false, headers: { accept: 'text/event-stream', 'last-event-id': this.#lastEventId }
    })
    this.#request = request
    const parser = new EventStreamParser()
    parser.onEvent = (event) => {
      if (event.type === 'score') this.seen.push({ kind: 'message', id: event.lastEventId, data: event.data })
      else if (event.type === 'sse:resync') this.seen.push({ kind: 'gap' })
      if (event.lastEventId !== '') this.#lastEventId = event.lastEventId
    }
    const again = (): void => {
      if (this.#request !== request) return
      this.#request = undefined
      this.#retry()
    }
    request.on('response', (response) => {
      if (response.statusCode !== 200) response.resume()
      response.on('data', (chunk: Buffer) => parser.push(chunk))
      response.on('close', again)
    })
    request.on('error', again)
  }

  /** Drops the connection, as a tab losing its network; it reconnects. */
  drop (): void {
    this.#request?.destroy()
  }

  stop (): void {
    this.#isStopped = true
    this.#request?.destroy()
  }

  #retry (): void {
    if (this.#isStopped) return
    this.reconnects++
    const [min, max] = RECONNECT_MS
    setTimeout(() => this.connect(), min + this.#random() * (max - min)).unref()
  }
}

/** The Redis side: how to reach it, its faults, and what it kept at the end. */
interface Backend {
  readonly engineOptions: () => Parameters<typeof redisEngine>[0]
  readonly inject: (fault: Fault, random: () => number) => Promise<string>
  readonly kept: (keys: string[]) => Promise<Array<Map<string, string>>>
  readonly stop: () => Promise<void>
}

function fieldsToData (entries: Array<[string, string[]]>): Map<string, string> {
  return new Map(entries.map(([id, fields]) => [id, fields[fields.indexOf('d') + 1]] as const))
}

async function singleBackend (): Promise<Backend> {
  const server = new RedisServer(await freePort())
  await server.start()
  const admin = (): Redis => new Redis(server.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 1 })
  return {
    engineOptions: () => ({ url: server.url, commandTimeoutMs: COMMAND_TIMEOUT_MS }),
    async inject (fault, random) {
      if (fault === 'restart') {
        // Without persistence: everything Redis held is gone (its own loss, counted apart).
        await server.kill()
        await sleep(100 + random() * 400)
        await server.start()
        return 'restart (kill -9, no persistence)'
      }
      if (fault === 'hang') {
        const ms = Math.round(200 + random() * 1300)
        server.signal('SIGSTOP')
        await sleep(ms)
        server.signal('SIGCONT')
        return `hang ${ms} ms (SIGSTOP)`
      }
      const type = random() < 0.5 ? 'normal' : 'pubsub'
      const reply = await rawCommand(server.port, `CLIENT KILL TYPE ${type}`)
      return `CLIENT KILL TYPE ${type} (${reply.trim()})`
    },
    async kept (keys) {
      const redis = admin()
      try {
        return await Promise.all(keys.map(async (key) => fieldsToData(await redis.xrange(key, '-', '+'))))
      } finally {
        redis.disconnect()
      }
    },
    stop: async () => { await server.kill() }
  }
}

async function clusterBackend (): Promise<Backend> {
  const teardowns: Array<() => unknown> = []
  const cluster: RedisCluster = await startCluster({ teardown: (fn) => { teardowns.push(fn) } })
  const nodes = cluster.nodes
  const pickMaster = async (random: () => number): Promise<number> => {
    const masters = await cluster.masters()
    return masters[Math.floor(random() * masters.length)]
  }
  return {
    engineOptions: () => ({ cluster: { nodes }, commandTimeoutMs: COMMAND_TIMEOUT_MS }),
    async inject (fault, random) {
      const master = await pickMaster(random)
      if (fault === 'failover') {
        // A replica of that master takes over, the way an operator moves a master (CLUSTER FAILOVER).
        const replicas = (await rawCommand(master, 'INFO replication')).match(/slave\d+:ip=[^,]+,port=(\d+)/g) ?? []
        const port = Number(/port=(\d+)/.exec(replicas[0] ?? '')?.[1])
        if (!Number.isInteger(port)) return `failover of ${master} skipped (no replica attached)`
        await rawCommand(port, 'CLUSTER FAILOVER', 3000)
        await cluster.settled()
        return `failover: ${port} replaces ${master} (CLUSTER FAILOVER)`
      }
      if (fault === 'woken-master') {
        // Past cluster-node-timeout (1000 ms): its replica is promoted while it sleeps.
        cluster.server(master).signal('SIGSTOP')
        await sleep(3000)
        cluster.server(master).signal('SIGCONT')
        await cluster.settled()
        return `woken master ${master} (SIGSTOP 3000 ms, failed over, SIGCONT)`
      }
      if (fault === 'kill-master') {
        await cluster.server(master).kill('SIGKILL')
        await sleep(2500)
        await cluster.server(master).start()
        await cluster.settled()
        return `master ${master} killed (kill -9), restarted as a replica`
      }
      if (fault === 'hang' || fault === 'restart') return `${fault} skipped on a cluster`
      const reply = await rawCommand(master, 'CLIENT KILL TYPE pubsub')
      return `CLIENT KILL TYPE pubsub on ${master} (${reply.trim()})`
    },
    async kept (keys) {
      const reader = new Cluster(nodes)
      try {
        return await Promise.all(keys.map(async (key) => fieldsToData(await reader.xrange(key, '-', '+'))))
      } finally {
        reader.disconnect()
      }
    },
    stop: async () => { for (const teardown of teardowns.splice(0).reverse()) await teardown() }
  }
}

async function startInstance (backend: Backend, names: readonly string[]): Promise<Instance> {
  const engine = redisEngine({ ...backend.engineOptions(), prefix: 'chaos:' })
  const app = Fastify()
  await app.register(sse, { engine, heartbeatMs: false })
  const channels = new Map(names.map((name) => [name, app.sse.channel(name, catalog, { history: { maxEvents: 1_000_000 } })]))
  app.get('/:name', async (request, reply) => {
    const channel = channels.get((request.params as { name: string }).name)
    if (channel === undefined) return await reply.code(404).send()
    await channel.subscribe(reply.sse(catalog))
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, engine, port: (app.server.address() as { port: number }).port, channels, isAlive: true }
}

/** Kills an instance as a crash would: every socket dropped at once, then its engine. */
async function killInstance (instance: Instance): Promise<void> {
  instance.isAlive = false
  instance.app.server.closeAllConnections()
  await instance.app.close().catch(() => {})
  await instance.engine.close().catch(() => {})
}

/**
 * Runs one seeded chaos run and checks it.
 *
 * @example
 * const result = await runChaos({ seed: 7, topology: 'single', durationMs: 20_000, instances: 3, channels: 4, clientsPerChannel: 3, publishEveryMs: 50, faultGapMs: [1000, 3000] })
 * result.report.violations // [] when every promise held
 */
export async function runChaos (options: ChaosOptions): Promise<ChaosResult> {
  const { log = () => {} } = options
  // Faults from one generator, clients from another: the fault schedule a seed gives
  // does not depend on how often clients happened to reconnect.
  const random = seeded(options.seed)
  const clientRandom = seeded(options.seed ^ 0x5bd1e995)
  const names = Array.from({ length: options.channels }, (_, i) => `room${i}`)
  const backend = options.topology === 'single' ? await singleBackend() : await clusterBackend()
  const instances: Instance[] = []
  const clients: ChaosClient[] = []
  const faults: string[] = []
  const attempted = new Map(names.map((name) => [name, new Set<string>()]))
  const acked = new Map(names.map((name) => [name, new Map<string, string>()]))
  let rejected = 0
  const startedAt = Date.now()
  try {
    for (let i = 0; i < options.instances; i++) instances.push(await startInstance(backend, names))
    const live = (): Instance[] => instances.filter((instance) => instance.isAlive)
    const pickWith = (draw: () => number): Instance | undefined => {
      const list = live()
      return list.length === 0 ? undefined : list[Math.floor(draw() * list.length)]
    }
    const pick = (): Instance | undefined => pickWith(clientRandom)
    for (const name of names) {
      for (let i = 0; i < options.clientsPerChannel; i++) {
        const client = new ChaosClient(name, pick, clientRandom)
        clients.push(client)
        client.connect()
      }
    }
    await sleep(500)

    let isPublishing = true
    let counter = 0
    const pending = new Set<Promise<void>>()
    const publishing = (async () => {
      while (isPublishing) {
        for (const instance of live()) {
          for (const [name, channel] of instance.channels) {
            const p = `${options.seed}.${counter++}`
            attempted.get(name)?.add(JSON.stringify({ p }))
            const done = channel.publish('score', { p }).then(
              (id) => { acked.get(name)?.set(id as string, JSON.stringify({ p })) },
              () => { rejected++ }
            ).finally(() => pending.delete(done))
            pending.add(done)
          }
        }
        await sleep(options.publishEveryMs)
      }
    })()

    const faultKinds = FAULTS[options.topology]
    while (Date.now() - startedAt < options.durationMs) {
      const [min, max] = options.faultGapMs
      await sleep(min + random() * (max - min))
      if (Date.now() - startedAt >= options.durationMs) break
      const fault = faultKinds[Math.floor(random() * faultKinds.length)]
      const at = ((Date.now() - startedAt) / 1000).toFixed(1)
      let what: string
      if (fault === 'instance-kill') {
        const victim = pickWith(random)
        if (victim === undefined) continue
        await killInstance(victim)
        instances.push(await startInstance(backend, names))
        what = `instance on :${victim.port} killed (every socket dropped), a new one started`
      } else if (fault === 'client-drop') {
        const dropped = clients.filter(() => random() < 0.3)
        for (const client of dropped) client.drop()
        what = `${dropped.length} clients dropped`
      } else {
        what = await backend.inject(fault, random)
      }
      faults.push(`${at}s ${what}`)
      log(`[chaos seed ${options.seed}] ${at}s ${what}`)
    }
    isPublishing = false
    await publishing
    await Promise.all([...pending])

    const keys = names.map((name) => channelKey('chaos:', name))
    const kept = await backend.kept(keys)
    const truths = new Map<string, ChannelTruth>(names.map((name, i) => [name, {
      attempted: attempted.get(name) as Set<string>, acked: acked.get(name) as Map<string, string>, kept: kept[i]
    }]))
    // Every client has the newest entry of its channel, or was told of a gap after its last message.
    const settledBy = Date.now() + SETTLE_MS
    const isSettled = (): boolean => clients.every((client) => {
      const ids = [...(truths.get(client.channel) as ChannelTruth).kept.keys()]
      const newest = ids[ids.length - 1]
      return newest === undefined || client.seen.some((seen) => seen.kind === 'message' && seen.id === newest) ||
        client.seen[client.seen.length - 1]?.kind === 'gap'
    })
    while (!isSettled() && Date.now() < settledBy) await sleep(100)
    await sleep(300)
    for (const client of clients) client.stop()
    const recordings = clients.map((client, i) => ({ label: `client${i}/${client.channel}`, channel: client.channel, seen: [...client.seen] }))
    const report = checkDeliveries(recordings, truths)
    const { log: _log, ...rest } = options
    return {
      options: rest,
      faults,
      attempted: [...attempted.values()].reduce((sum, set) => sum + set.size, 0),
      acked: [...acked.values()].reduce((sum, map) => sum + map.size, 0),
      rejected,
      reconnects: clients.reduce((sum, client) => sum + client.reconnects, 0),
      report
    }
  } finally {
    for (const client of clients) client.stop()
    for (const instance of instances) if (instance.isAlive) await killInstance(instance)
    await backend.stop()
  }
}
