/**
 * `npm run bench`: runs every scenario against every contender, each run with a
 * fresh server process and a fresh load-generator process, interleaved across
 * contenders and repeated; prints a table of medians with ratios to `raw`, and one
 * JSON line per result (also written to bench/results/).
 *
 * Options (argv, or the env variable in brackets):
 *   --quick               fewer repetitions and smaller sizes, about a minute (BENCH_QUICK=1)
 *   --only=a,b            contenders to run; raw is always added (BENCH_ONLY)
 *   --scenario=a,b        scenario kinds or names: fanout, single, idle, latency, streams, fanout-1000, small-streams (BENCH_SCENARIO);
 *                         bare words name scenarios too: `npm run bench -- small-streams`;
 *                         capacity, capacity-redis and capacity-cluster run only when named here (several minutes each)
 *   --reps=N              repetitions (BENCH_REPS)
 *   --latency-rate=N      events/s of the latency scenario (default 20; see config.ts) (BENCH_LATENCY_RATE)
 *   --cpu-prof            write a V8 CPU profile of every server to bench/results/profiles/ (BENCH_CPU_PROF=1)
 *   --compare-build=DIR   also run each contender (but raw and the floors) from another build's dist/ folder, as
 *                         `<name>@before`, back to back with this build's, and report the two's ratio per
 *                         repetition (BENCH_COMPARE_BUILD)
 *
 * When a contender needs Redis (typed-sse-redis), the runner starts its own
 * redis-server (redis-server.ts) before the first run and kills it by PID at the end.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { fileURLToPath } from 'node:url'
import type { ClientApi, PhaseResult } from './client/load.js'
import { runCapacity } from './capacity.js'
import { BASELINE, COMPARED_SUFFIX, comparedContender, CONTENDERS, DEFAULT_LATENCY_RATE, fullPlan, IDLE_WARMUP_CLIENTS, quickPlan, runsKind, type ContenderInfo, type Scenario } from './config.js'
import { Peer } from './ipc.js'
import { killChildren, spawnChild, stopChild, waitForConnections } from './processes.js'
import { startRedisCluster, startRedisServer } from './redis-server.js'
import { checkTargets, renderComparison, renderTables, renderTargets, summarize, type RunResult } from './report.js'
import type { ServerApi } from './servers/harness.js'

const ROOT = new URL('../../', import.meta.url)
const RESULTS_DIR = fileURLToPath(new URL('bench/results/', ROOT))
const PROFILES_DIR = fileURLToPath(new URL('bench/results/profiles/', ROOT))
/** Connections opened at once by the load generator. */
const CONNECT_BATCH = 250
/** Deadline of one RPC that is not a phase (connect, memory, exit). */
const CALL_TIMEOUT_MS = 90_000

interface Options {
  isQuick: boolean
  contenders: ContenderInfo[]
  scenarios: Scenario[]
  reps: number
  isProfiling: boolean
  /** The other build's dist/ folder (`--compare-build`). */
  comparedBuild: string | undefined
}

function parseOptions (argv: readonly string[]): Options {
  const flag = (name: string, env: string): string | undefined => {
    const arg = argv.find((a) => a === `--${name}` || a.startsWith(`--${name}=`))
    if (arg !== undefined) return arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : 'true'
    return process.env[env]
  }
  const known = ['--quick', '--only', '--scenario', '--reps', '--latency-rate', '--cpu-prof', '--compare-build']
  // A bare word names a scenario: `npm run bench -- small-streams`.
  const named = argv.filter((arg) => !arg.startsWith('-'))
  if (named.length > 0) {
    if (argv.some((arg) => arg.startsWith('--scenario'))) throw new Error('name scenarios either with --scenario or as bare words, not both')
    argv = [...argv.filter((arg) => arg.startsWith('-')), `--scenario=${named.join(',')}`]
  }
  for (const arg of argv) {
    if (!known.some((name) => arg === name || arg.startsWith(`${name}=`))) throw new Error(`unknown option ${arg}; known: ${known.join(', ')}`)
  }
  const isQuick = ['true', '1'].includes(flag('quick', 'BENCH_QUICK') ?? '')
  const latencyRate = Number(flag('latency-rate', 'BENCH_LATENCY_RATE') ?? DEFAULT_LATENCY_RATE)
  if (!Number.isSafeInteger(latencyRate) || latencyRate < 1 || latencyRate > 10_000) throw new Error(`--latency-rate must be an integer from 1 to 10000, got ${String(latencyRate)}`)
  const plan = isQuick ? quickPlan(latencyRate) : fullPlan(latencyRate)
  const only = flag('only', 'BENCH_ONLY')?.split(',').map((name) => name.trim()).filter(Boolean)
  for (const name of only ?? []) {
    if (!CONTENDERS.some((contender) => contender.name === name)) throw new Error(`unknown contender ${name}; known: ${CONTENDERS.map((c) => c.name).join(', ')}`)
  }
  const comparedBuild = flag('compare-build', 'BENCH_COMPARE_BUILD')
  const floors = new Set(CONTENDERS.map((contender) => contender.floor))
  const contenders = CONTENDERS.filter((contender) => only === undefined || contender.name === BASELINE || only.includes(contender.name))
    // The other build's twin right after each: raw and the floors are the same code in both.
    .flatMap((contender) => comparedBuild === undefined || contender.name === BASELINE || floors.has(contender.name) ? [contender] : [contender, comparedContender(contender, comparedBuild)])
  const wanted = flag('scenario', 'BENCH_SCENARIO')?.split(',').map((name) => name.trim()).filter(Boolean)
  // Opt-in scenarios (capacity) run only when named; the others when nothing is named or they are.
  const scenarios = plan.scenarios.filter((scenario) => wanted === undefined
    ? scenario.isOptIn !== true
    : wanted.includes(scenario.kind) || wanted.includes(scenario.name))
  if (scenarios.length === 0) throw new Error(`no scenario matches ${String(wanted)}; known: ${plan.scenarios.map((s) => `${s.kind} (${s.name})`).join(', ')}`)
  const reps = Number(flag('reps', 'BENCH_REPS') ?? plan.reps)
  if (!Number.isSafeInteger(reps) || reps < 1 || reps > 20) throw new Error(`--reps must be an integer from 1 to 20, got ${String(reps)}`)
  const isProfiling = ['true', '1'].includes(flag('cpu-prof', 'BENCH_CPU_PROF') ?? '')
  return { isQuick, contenders, scenarios, reps, isProfiling, comparedBuild }
}

async function connect (client: Peer<ClientApi>, server: Peer<ServerApi>, port: number, count: number): Promise<number> {
  const result = await client.call('connect', {
    port, count, batchSize: CONNECT_BATCH, attempts: 3, attemptTimeoutMs: 10_000, timeoutMs: 60_000
  }, CALL_TIMEOUT_MS)
  if (result.open !== count) throw new Error(`${result.open} of ${count} connections opened (${result.failed} failed: ${result.firstError ?? '?'})`)
  await waitForConnections(server, count, 10_000)
  return result.ms
}

/** What every server run gets from the runner: its redis-server and a fresh key prefix. */
interface RunContext {
  redisUrl: string | undefined
  nextPrefix: () => string
}

/** The environment of a server process: Redis URL and a prefix of its own, when it needs them. */
function serverEnv (contender: ContenderInfo, context: RunContext): NodeJS.ProcessEnv {
  if (contender.needsRedis !== true) return process.env
  return { ...process.env, BENCH_REDIS_URL: context.redisUrl, BENCH_REDIS_PREFIX: context.nextPrefix() }
}

interface PhaseOutcome {
  delivered: PhaseResult
  startedAt: number
  drainWaits: number
  publishCallUs: number
  serverCpuMs: number
  serverUserMs: number
  serverSystemMs: number
}

async function phase (client: Peer<ClientApi>, server: Peer<ServerApi>, scenario: Scenario, events: number, seqStart: number): Promise<PhaseOutcome> {
  const latency = scenario.kind === 'latency' || scenario.kind === 'streams'
  await client.call('expect', { events, seqStart, latency, timeoutMs: scenario.timeoutMs }, CALL_TIMEOUT_MS)
  const published = await server.call('publish', {
    kind: scenario.payload, events, seqStart, ratePerSec: scenario.ratePerSec, perTick: scenario.perTick, timesCalls: scenario.clients > 1 && scenario.kind !== 'streams',
    channels: scenario.kind === 'streams' ? scenario.clients : 0, timeoutMs: scenario.timeoutMs
  }, scenario.timeoutMs + 10_000)
  const delivered = await client.call('wait', undefined, scenario.timeoutMs + 10_000)
  const cpu = await server.call('cpu', undefined, CALL_TIMEOUT_MS)
  if (!delivered.isComplete) {
    throw new Error(`delivery incomplete: ${delivered.delivered} of ${events * delivered.connections} events, ` +
      `per client ${delivered.minReceived}-${delivered.maxReceived}, ${delivered.errors} errors (${delivered.firstError ?? '?'})`)
  }
  return { delivered, startedAt: published.startedAt, drainWaits: published.drainWaits, publishCallUs: published.publishCallUs, serverCpuMs: cpu.userMs + cpu.systemMs, serverUserMs: cpu.userMs, serverSystemMs: cpu.systemMs }
}

/**
 * Scenarios that share a client count run on one server process and one set of
 * connections, in this order: idle memory first (before any event was sent), then
 * fan-out, then latency. Opening 5000 connections costs seconds; doing it once per
 * group instead of once per scenario keeps the full run under ten minutes.
 */
function groupScenarios (scenarios: readonly Scenario[]): Scenario[][] {
  const order: Record<Scenario['kind'], number> = { idle: 0, fanout: 1, latency: 2, single: 3, streams: 4, capacity: 5, 'capacity-redis': 6, 'capacity-cluster': 7 }
  const groups = new Map<string, Scenario[]>()
  for (const scenario of scenarios) {
    // A capacity scenario sets up its own processes, and the streams scenario needs one
    // stream per channel from the start: each is a group of its own.
    const key = scenario.capacity === undefined && scenario.kind !== 'streams' ? String(scenario.clients) : scenario.name
    const group = groups.get(key) ?? []
    group.push(scenario)
    groups.set(key, group)
  }
  return [...groups.values()].map((group) => group.sort((a, b) => order[a.kind] - order[b.kind]))
}

async function measureIdle (client: Peer<ClientApi>, server: Peer<ServerApi>, port: number, scenario: Scenario, result: RunResult): Promise<void> {
  await connect(client, server, port, IDLE_WARMUP_CLIENTS)
  await client.call('close', undefined, CALL_TIMEOUT_MS)
  await waitForConnections(server, 0, 10_000)
  const before = await server.call('memory', undefined, CALL_TIMEOUT_MS)
  result.connectMs = await connect(client, server, port, scenario.clients)
  const after = await server.call('memory', undefined, CALL_TIMEOUT_MS)
  const status = await client.call('status', undefined, CALL_TIMEOUT_MS)
  if (status.open !== scenario.clients) throw new Error(`${scenario.clients - status.open} idle connections closed`)
  if (status.errors > 0) throw new Error(`${status.errors} events arrived on idle connections`)
  result.heapPerConnection = (after.heapUsed - before.heapUsed) / scenario.clients
  result.rssPerConnection = (after.rss - before.rss) / scenario.clients
  result.externalPerConnection = (after.external - before.external) / scenario.clients
}

/** Publishes the scenario's events (after its warm-up); returns the next free `seq`. */
async function measureEvents (client: Peer<ClientApi>, server: Peer<ServerApi>, scenario: Scenario, seqStart: number, result: RunResult): Promise<number> {
  if (scenario.warmupEvents > 0) await phase(client, server, scenario, scenario.warmupEvents, seqStart)
  const measured = await phase(client, server, scenario, scenario.events, seqStart + scenario.warmupEvents)
  const seconds = (measured.delivered.lastAt - measured.startedAt) / 1000
  result.eventsPerSec = scenario.events / seconds
  result.deliveriesPerSec = result.eventsPerSec * scenario.clients
  result.serverCpuMs = measured.serverCpuMs
  result.serverUserMs = measured.serverUserMs
  result.serverSystemMs = measured.serverSystemMs
  result.cpuUsPerEvent = measured.serverCpuMs * 1000 / scenario.events
  result.cpuUsPerMessage = measured.serverCpuMs * 1000 / (scenario.events * scenario.clients)
  result.clientCpuMs = measured.delivered.clientCpuMs
  result.drainWaits = measured.drainWaits
  result.publishCallUs = measured.publishCallUs
  const latency = measured.delivered.latency
  if (latency !== undefined) {
    result.p50Ms = latency.p50
    result.p90Ms = latency.p90
    result.p99Ms = latency.p99
    result.maxMs = latency.max
    result.latencySamples = latency.samples
  }
  return seqStart + scenario.warmupEvents + scenario.events
}

/** One contender, one group of scenarios: a fresh server and load generator, stopped after. */
async function runGroup (group: readonly Scenario[], contender: ContenderInfo, rep: number, options: Options, context: RunContext): Promise<RunResult[]> {
  if (group[0].kind === 'capacity-cluster') {
    // A cluster of its own per run (6 redis-server processes), stopped by PID after it.
    const cluster = await startRedisCluster()
    process.stderr.write(`bench: Redis Cluster on ${cluster.nodes} (3 masters, 3 replicas; stopped after the run)\n`)
    try {
      return [await runCapacity(group[0], contender, rep, { redisUrl: undefined, redisCluster: cluster.nodes, redisPrefix: context.nextPrefix() })]
    } finally {
      await cluster.stop()
    }
  }
  if (group[0].capacity !== undefined) {
    return [await runCapacity(group[0], contender, rep, { redisUrl: context.redisUrl, redisPrefix: context.nextPrefix() })]
  }
  const results: RunResult[] = group.map((scenario) => ({
    scenario: scenario.name, kind: scenario.kind, contender: contender.name, rep, status: 'ok', clients: scenario.clients, events: scenario.events
  }))
  const execArgv = ['--expose-gc']
  if (options.isProfiling) {
    mkdirSync(PROFILES_DIR, { recursive: true })
    const name = `${contender.name.replace(/[^a-z0-9-]/gi, '')}_${group.map((scenario) => scenario.name).join('+')}_${rep}.cpuprofile`
    execArgv.push('--cpu-prof', `--cpu-prof-dir=${PROFILES_DIR}`, `--cpu-prof-name=${name}`, '--cpu-prof-interval=250')
  }
  const server = new Peer<ServerApi>(spawnChild(contender.moduleUrl ?? `./servers/${contender.module}.js`, execArgv, serverEnv(contender, context)))
  const client = new Peer<ClientApi>(spawnChild('./client/load.js', []))
  let current = 0
  try {
      const announced = await server.announcement(20_000)
      if (announced.announce === 'unavailable') {
        return results.map((result) => ({ ...result, status: 'unavailable', error: announced.reason }))
      }
      const port = announced.port as number
      await client.announcement(20_000)
      let seq = 0
      let isConnected = false
      for (; current < group.length; current++) {
        const scenario = group[current]
        const result = results[current]
        if (scenario.kind === 'idle') {
          await measureIdle(client, server, port, scenario, result)
          isConnected = true
          continue
        }
        if (!isConnected) result.connectMs = await connect(client, server, port, scenario.clients)
        isConnected = true
        seq = await measureEvents(client, server, scenario, seq, result)
      }
      return results
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err)
      return results.map((result, i) => i < current
        ? result
        : { ...result, status: 'fail', error: i === current ? message : `not run: ${group[current].name} failed before it` })
  } finally {
    await stopChild(client)
    await stopChild(server)
  }
}

function packageVersion (name: string): string {
  try {
    return (JSON.parse(readFileSync(new URL(`node_modules/${name}/package.json`, ROOT), 'utf8')) as { version: string }).version
  } catch {
    return '?'
  }
}

function environment (): Record<string, string> {
  const cpu = cpus()
  return {
    node: process.version,
    cpu: `${cpu.length} x ${cpu[0]?.model ?? '?'}`,
    memory: `${Math.round(totalmem() / 2 ** 30)} GiB`,
    fastify: packageVersion('fastify'),
    '@fastify/sse': packageVersion('@fastify/sse'),
    'fastify-sse-v2': packageVersion('fastify-sse-v2'),
    'better-sse': packageVersion('better-sse')
  }
}

/**
 * The contenders of one repetition, starting with another one each time. A contender and its
 * `@before` twin (`--compare-build`) stay together and run back to back, taking turns at going
 * first, so each pair of their runs shares the load of the moment.
 */
function rotated<T extends { contender: ContenderInfo }> (entries: readonly T[], rep: number): T[] {
  const units: T[][] = []
  for (const entry of entries) {
    if (entry.contender.name.endsWith(COMPARED_SUFFIX) && units.length > 0) units[units.length - 1].push(entry)
    else units.push([entry])
  }
  const shift = (rep - 1) % units.length
  return [...units.slice(shift), ...units.slice(0, shift)].flatMap((unit) => rep % 2 === 0 ? [...unit].reverse() : unit)
}

async function main (): Promise<void> {
  const options = parseOptions(process.argv.slice(2))
  const started = Date.now()
  const env = environment()
  const loadAtStart = loadavg()[0]
  if (loadAtStart > cpus().length / 2) {
    process.stderr.write(`bench: load average ${loadAtStart.toFixed(2)} on ${cpus().length} cores: other processes will skew the figures\n`)
  }
  // Each contender runs the scenarios of its kinds (the Redis engine has no single-stream run).
  const plan = groupScenarios(options.scenarios).map((group) => ({
    contenders: options.contenders.map((contender) => ({ contender, scenarios: group.filter((scenario) => runsKind(contender, scenario.kind)) }))
      .filter((entry) => entry.scenarios.length > 0)
  }))
  const total = options.reps * plan.reduce((sum, entry) => sum + entry.contenders.length, 0)
  const needsRedis = plan.some((entry) => entry.contenders.some(({ contender }) => contender.needsRedis === true))
  const redis = needsRedis ? await startRedisServer() : undefined
  if (redis !== undefined) process.stderr.write(`bench: redis-server ${redis.pid} on ${redis.url} (stopped at the end)\n`)
  let prefixes = 0
  const context: RunContext = { redisUrl: redis?.url, nextPrefix: () => `bench-${process.pid}-${++prefixes}:` }
  const running = options.contenders.filter((contender) => plan.some((entry) => entry.contenders.some((runner) => runner.contender === contender)))
  process.stderr.write(`bench: ${options.isQuick ? 'quick' : 'full'}, ${options.reps} rep(s), ${options.scenarios.length} scenario(s), ${running.length} contender(s): ${total} server runs\n`)
  mkdirSync(RESULTS_DIR, { recursive: true })
  const file = `${RESULTS_DIR}${new Date().toISOString().replace(/[:.]/g, '-')}${options.isQuick ? '-quick' : ''}.jsonl`
  const lines: string[] = []
  const runs: RunResult[] = []
  let done = 0
  // Interleaved: every repetition runs every group for every contender, starting
  // with a different contender each time, so drift (thermal, other load) spreads evenly.
  try {
    for (let rep = 1; rep <= options.reps; rep++) {
      for (const { contenders } of plan) {
        for (const { contender, scenarios } of rotated(contenders, rep)) {
          const runStarted = Date.now()
          const results = await runGroup(scenarios, contender, rep, options, context)
          done++
          runs.push(...results)
          for (const result of results) lines.push(JSON.stringify({ type: 'run', ...result }))
          const outcomes = results.map((result) => `${result.scenario} ${result.status}${result.error === undefined ? '' : ` (${result.error.split('\n')[0]})`}`)
          process.stderr.write(`[${done}/${total}] ${contender.name} rep ${rep}: ${outcomes.join(', ')} in ${((Date.now() - runStarted) / 1000).toFixed(1)} s\n`)
        }
      }
    }
  } finally {
    await redis?.stop()
  }
  const summaries = summarize(runs, options.scenarios, running.map((contender) => contender.name))
  const checks = checkTargets(summaries)
  const seconds = (Date.now() - started) / 1000
  env['load average'] = `${loadAtStart.toFixed(2)} at start, ${loadavg()[0].toFixed(2)} at end`
  for (const summary of summaries) lines.push(JSON.stringify({ type: 'summary', ...summary }))
  lines.push(JSON.stringify({ type: 'environment', ...env, quick: options.isQuick, reps: options.reps, seconds }))
  writeFileSync(file, lines.join('\n') + '\n')

  const out: string[] = []
  out.push(`## fastify-typed-sse benchmark (${options.isQuick ? 'quick' : 'full'}, median of ${options.reps})`, '')
  out.push(Object.entries(env).map(([name, version]) => `${name} ${version}`).join(', '), '')
  for (const contender of running) out.push(`- ${contender.name}: ${contender.description}`)
  out.push('')
  out.push(renderTables(summaries, options.scenarios))
  out.push(renderTargets(checks), '')
  if (options.comparedBuild !== undefined) out.push(renderComparison(runs, options.comparedBuild))
  out.push(`${total} server runs in ${seconds.toFixed(0)} s; results: ${file}`, '')
  process.stdout.write(out.join('\n') + '\n')
  for (const summary of summaries) process.stdout.write(JSON.stringify({ type: 'summary', ...summary }) + '\n')
}

process.once('SIGINT', () => { killChildren(); process.exit(130) })
process.once('SIGTERM', () => { killChildren(); process.exit(143) })
process.once('exit', killChildren)

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  killChildren()
  process.exitCode = 1
})
