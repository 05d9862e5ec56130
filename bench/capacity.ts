/**
 * The capacity scenarios (opt-in: `--scenario=capacity`, `--scenario=capacity-redis`,
 * `--scenario=capacity-cluster`): many idle connections held by one server process, or
 * spread over several instances on one Redis or on a Redis Cluster, then one broadcast that must reach every one of them.
 *
 * Client sockets are spread over several load-generator processes (each below its own
 * file-descriptor limit), each bound to its own loopback source address (127.0.0.2,
 * 127.0.0.3, ...), so no address runs out of ephemeral ports (32768-60999).
 *
 * Figures: heap and RSS per connection (after forced GCs, minus a baseline), server
 * CPU while idle with heartbeats on (percent of one core, per process), the time from
 * publishing one event to its delivery on the last connection, and deliveries/s of a
 * short burst after it. Every delivery is checked (every client, every event, in order).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { ClientApi, PhaseResult } from './client/load.js'
import type { ContenderInfo, Scenario } from './config.js'
import { Peer } from './ipc.js'
import { spawnChild, stopChild, waitForConnections } from './processes.js'
import type { RunResult } from './report.js'
import type { ServerApi } from './servers/harness.js'

/** Connections each server gets opened and closed before its baseline, so one-time setup is not counted. */
const WARMUP_CLIENTS = 20
/** Handshakes in flight per load generator (all of them together stay under the accept backlog). */
const CONNECT_BATCH = 50
/** Deadline of one load generator's share of the connections. */
const CONNECT_TIMEOUT_MS = 480_000
/** Deadline of a control call that is not a phase. */
const CALL_TIMEOUT_MS = 90_000

/** What the runner passes to a capacity run. */
export interface CapacityContext {
  /** The runner's redis-server, for contenders that need it. */
  redisUrl: string | undefined
  /** Key prefix shared by this run's instances (one channel across them), unique per run. */
  redisPrefix: string
  /** Startup nodes (`host:port,...`) of a Redis Cluster, for the capacity-cluster scenario. */
  redisCluster?: string
}

/** The connections of load generator `i`: the total split as evenly as possible. */
function share (total: number, processes: number, i: number): number {
  return Math.floor(total / processes) + (i < total % processes ? 1 : 0)
}

/**
 * Runs one capacity scenario for one contender; every process it starts is stopped
 * (by PID if it does not exit when asked) before it returns.
 *
 * @example
 * const result = await runCapacity(scenario, contender, 1, { redisUrl, redisPrefix: 'cap-1:' })
 */
export async function runCapacity (scenario: Scenario, contender: ContenderInfo, rep: number, context: CapacityContext): Promise<RunResult> {
  const shape = scenario.capacity
  if (shape === undefined) throw new Error(`${scenario.name} is not a capacity scenario`)
  const result: RunResult = {
    scenario: scenario.name, kind: scenario.kind, contender: contender.name, rep, status: 'ok', clients: scenario.clients, events: 1 + shape.burstEvents
  }
  const env: NodeJS.ProcessEnv = { ...process.env, BENCH_HEARTBEAT_MS: String(shape.heartbeatMs), BENCH_REDIS_PREFIX: context.redisPrefix }
  if (context.redisUrl !== undefined) env.BENCH_REDIS_URL = context.redisUrl
  if (context.redisCluster !== undefined) env.BENCH_REDIS_CLUSTER = context.redisCluster
  const servers = Array.from({ length: shape.servers }, () => new Peer<ServerApi>(spawnChild(contender.moduleUrl ?? `./servers/${contender.module}.js`, ['--expose-gc'], env)))
  const clients = Array.from({ length: shape.clientProcesses }, () => new Peer<ClientApi>(spawnChild('./client/load.js', [])))
  try {
    const ports: number[] = []
    for (const server of servers) {
      const announced = await server.announcement(20_000)
      if (announced.announce === 'unavailable') return { ...result, status: 'unavailable', error: announced.reason }
      ports.push(announced.port as number)
    }
    for (const client of clients) await client.announcement(20_000)

    const connectParams = (port: number, count: number, localAddress: string | undefined): Parameters<ClientApi['connect']>[0] =>
      ({ port, count, localAddress, batchSize: CONNECT_BATCH, attempts: 5, attemptTimeoutMs: 30_000, timeoutMs: CONNECT_TIMEOUT_MS })
    for (const port of ports) await clients[0].call('connect', connectParams(port, WARMUP_CLIENTS, undefined), CALL_TIMEOUT_MS)
    await clients[0].call('close', undefined, CALL_TIMEOUT_MS)
    for (const server of servers) await waitForConnections(server, 0, 10_000)
    const before = await Promise.all(servers.map(async (server) => await server.call('memory', undefined, CALL_TIMEOUT_MS)))

    const shares = clients.map((_client, i) => share(scenario.clients, clients.length, i))
    const perServer = servers.map((_server, s) => shares.reduce((sum, count, i) => i % servers.length === s ? sum + count : sum, 0))
    const connectStarted = Date.now()
    const opened = await Promise.all(clients.map(async (client, i) =>
      await client.call('connect', connectParams(ports[i % servers.length], shares[i], `127.0.0.${2 + i}`), CONNECT_TIMEOUT_MS + 30_000)))
    opened.forEach((outcome, i) => {
      if (outcome.open !== shares[i]) throw new Error(`load generator ${i}: ${outcome.open} of ${shares[i]} connections opened (${outcome.failed} failed: ${outcome.firstError ?? '?'})`)
    })
    result.connectMs = Date.now() - connectStarted
    await Promise.all(servers.map(async (server, s) => await waitForConnections(server, perServer[s], 30_000)))
    const after = await Promise.all(servers.map(async (server) => await server.call('memory', undefined, CALL_TIMEOUT_MS)))
    const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0)
    result.heapPerConnection = sum(after.map((sample, s) => sample.heapUsed - before[s].heapUsed)) / scenario.clients
    result.rssPerConnection = sum(after.map((sample, s) => sample.rss - before[s].rss)) / scenario.clients
    result.externalPerConnection = sum(after.map((sample, s) => sample.external - before[s].external)) / scenario.clients

    // Idle: every connection open, heartbeats going out, nothing published.
    await Promise.all(servers.map(async (server) => await server.call('markCpu', undefined, CALL_TIMEOUT_MS)))
    await sleep(shape.idleMs)
    const idle = await Promise.all(servers.map(async (server) => await server.call('cpu', undefined, CALL_TIMEOUT_MS)))
    result.idleCpuPct = sum(idle.map((cpu) => cpu.userMs + cpu.systemMs)) / shape.idleMs * 100 / servers.length
    const statuses = await Promise.all(clients.map(async (client) => await client.call('status', undefined, CALL_TIMEOUT_MS)))
    statuses.forEach((status, i) => {
      if (status.open !== shares[i]) throw new Error(`load generator ${i}: ${shares[i] - status.open} idle connections closed`)
      if (status.errors > 0) throw new Error(`load generator ${i}: ${status.errors} events arrived on idle connections`)
    })

    const broadcast = async (events: number, seqStart: number): Promise<{ startedAt: number, lastAt: number }> => {
      await Promise.all(clients.map(async (client) => await client.call('expect', { events, seqStart, latency: false, timeoutMs: scenario.timeoutMs }, CALL_TIMEOUT_MS)))
      // Server 0 publishes; with Redis the others deliver what their subscription hears.
      const published = await servers[0].call('publish', {
        kind: 'score', events, seqStart, ratePerSec: 0, perTick: 1, timesCalls: false, channels: 0, timeoutMs: scenario.timeoutMs
      }, scenario.timeoutMs + 10_000)
      const delivered: PhaseResult[] = await Promise.all(clients.map(async (client) => await client.call('wait', undefined, scenario.timeoutMs + 10_000)))
      delivered.forEach((phase, i) => {
        if (!phase.isComplete) {
          throw new Error(`load generator ${i}: delivery incomplete: ${phase.delivered} of ${events * phase.connections} events, ` +
            `per client ${phase.minReceived}-${phase.maxReceived}, ${phase.errors} errors (${phase.firstError ?? '?'})`)
        }
      })
      return { startedAt: published.startedAt, lastAt: Math.max(...delivered.map((phase) => phase.lastAt)) }
    }
    const one = await broadcast(1, 0)
    result.broadcastMs = one.lastAt - one.startedAt
    const burst = await broadcast(shape.burstEvents, 1)
    const seconds = (burst.lastAt - burst.startedAt) / 1000
    result.eventsPerSec = shape.burstEvents / seconds
    result.deliveriesPerSec = shape.burstEvents * scenario.clients / seconds
    return result
  } catch (err) {
    return { ...result, status: 'fail', error: err instanceof Error ? err.message : String(err) }
  } finally {
    for (const client of clients) await stopChild(client)
    for (const server of servers) await stopChild(server)
  }
}
