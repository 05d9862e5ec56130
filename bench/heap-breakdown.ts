/**
 * What one idle stream keeps on the heap, by constructor: for raw `node:http`, a
 * hijacked Fastify route, the plugin's `reply.sse()` stream and a channel subscriber
 * (and the Redis engine's subscriber when asked for), opens N idle streams against a
 * fresh server process, takes a heap snapshot (after forced GCs) before and after,
 * and prints what grew: bytes per connection in all, and the object groups whose
 * count grew by about N or more (the per-stream objects), with what each costs per
 * connection more than on the hijacked Fastify route.
 *
 *   npm run build && node dist/bench/heap-breakdown.js                 # 2000 streams, the four variants
 *   node dist/bench/heap-breakdown.js --clients=5000 --only=typed-sse  # raw and fastify-hijack always run
 *   node dist/bench/heap-breakdown.js --only=typed-sse-redis           # starts its own redis-server
 *
 * Snapshots are written to bench/results/heap/ (git-ignored) and can be opened in
 * Chrome DevTools (Memory, Comparison view) to follow retainers.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { ClientApi } from './client/load.js'
import { CONTENDERS, IDLE_WARMUP_CLIENTS, type ContenderInfo } from './config.js'
import { Peer } from './ipc.js'
import { killChildren, spawnChild, stopChild, waitForConnections } from './processes.js'
import { startRedisServer, type BenchRedis } from './redis-server.js'
import type { ServerApi } from './servers/harness.js'

const HEAP_DIR = fileURLToPath(new URL('../../bench/results/heap/', import.meta.url))
const CALL_TIMEOUT_MS = 120_000
/** Time a child gets to start and announce itself (generous: snapshots run on busy machines). */
const STARTUP_TIMEOUT_MS = 60_000
/** The variants compared by default; raw and fastify-hijack are the references. */
const DEFAULT_VARIANTS = ['raw', 'fastify-hijack', 'typed-sse', 'typed-sse-channel']
const REFERENCE = 'fastify-hijack'
/** A group is per-stream when its count grew by at least this share of N. */
const PER_STREAM_SHARE = 0.9
/** Groups whose bytes per connection differ from the reference's by less are not listed. */
const MIN_LISTED_BYTES = 8

/** Count and self size of one group of heap objects (type and constructor or function name). */
interface Group { count: number, bytes: number }

interface Snapshot {
  snapshot: { meta: { node_fields: string[], node_types: [string[], ...unknown[]], edge_fields: string[], edge_types: [string[], ...unknown[]] } }
  nodes: number[]
  edges: number[]
  strings: string[]
}

/**
 * Groups too generic to act on by name: they are also counted by their first
 * retainer (`object Object <- SseStream.#state`), which says whose field holds them.
 */
const GENERIC = new Set(['object Object', 'array (object elements)', 'object Array', 'object system / Context', '(string)', 'hidden system / PropertyArray', 'array (object properties)', 'closure '])

/** A snapshot's objects summed per group, and the generic ones also per group and first retainer. */
interface Census { groups: Map<string, Group>, retained: Map<string, Group> }

/** Node types whose name is the content (a string's text), not a constructor: grouped by type alone. */
const CONTENT_NAMED = new Set(['string', 'concatenated string', 'sliced string', 'number', 'bigint', 'symbol', 'regexp'])

function add (groups: Map<string, Group>, key: string, bytes: number): void {
  const group = groups.get(key) ?? { count: 0, bytes: 0 }
  group.count++
  group.bytes += bytes
  groups.set(key, group)
}

/** Reads a .heapsnapshot and sums self sizes per group (and per first retainer for the generic groups). */
function census (path: string): Census {
  const data = JSON.parse(readFileSync(path, 'utf8')) as Snapshot
  const { meta } = data.snapshot
  const width = meta.node_fields.length
  const typeAt = meta.node_fields.indexOf('type')
  const nameAt = meta.node_fields.indexOf('name')
  const sizeAt = meta.node_fields.indexOf('self_size')
  const edgeCountAt = meta.node_fields.indexOf('edge_count')
  const edgeWidth = meta.edge_fields.length
  const edgeTypeAt = meta.edge_fields.indexOf('type')
  const edgeNameAt = meta.edge_fields.indexOf('name_or_index')
  const edgeToAt = meta.edge_fields.indexOf('to_node')
  const edgeTypes = meta.edge_types[0]
  const nodeCount = data.nodes.length / width
  const keys: string[] = new Array(nodeCount)
  for (let n = 0; n < nodeCount; n++) {
    const type = meta.node_types[0][data.nodes[n * width + typeAt]]
    keys[n] = CONTENT_NAMED.has(type) ? `(${type})` : `${type} ${data.strings[data.nodes[n * width + nameAt]]}`
  }
  // The first strong edge to each node, as `<retainer group>.<edge name>`.
  const firstRetainer: Array<string | undefined> = new Array(nodeCount)
  let edge = 0
  for (let n = 0; n < nodeCount; n++) {
    const edges = data.nodes[n * width + edgeCountAt]
    for (let e = 0; e < edges; e++, edge += edgeWidth) {
      const edgeType = edgeTypes[data.edges[edge + edgeTypeAt]]
      if (edgeType === 'weak' || edgeType === 'shortcut') continue
      const to = data.edges[edge + edgeToAt] / width
      if (firstRetainer[to] !== undefined) continue
      const name = edgeType === 'element' || edgeType === 'hidden' ? '[]' : data.strings[data.edges[edge + edgeNameAt]]
      firstRetainer[to] = `${keys[n]}.${name}`
    }
  }
  const groups = new Map<string, Group>()
  const retained = new Map<string, Group>()
  for (let n = 0; n < nodeCount; n++) {
    const bytes = data.nodes[n * width + sizeAt]
    add(groups, keys[n], bytes)
    if (GENERIC.has(keys[n])) add(retained, `${keys[n]} <- ${firstRetainer[n] ?? '(root)'}`, bytes)
  }
  return { groups, retained }
}

/** `after` minus `before`, per connection, for every key in either. */
function grown (before: Map<string, Group>, after: Map<string, Group>, clients: number): Map<string, Group> {
  const perConnection = new Map<string, Group>()
  for (const key of new Set([...before.keys(), ...after.keys()])) {
    const was = before.get(key) ?? { count: 0, bytes: 0 }
    const now = after.get(key) ?? { count: 0, bytes: 0 }
    perConnection.set(key, { count: (now.count - was.count) / clients, bytes: (now.bytes - was.bytes) / clients })
  }
  return perConnection
}

/** What N idle streams added, per connection. */
interface Breakdown {
  variant: string
  clients: number
  heapPerConnection: number
  snapshotPerConnection: number
  /** Group key to count and bytes grown, per connection. */
  perConnection: Map<string, Group>
  /** The same for the generic groups, keyed by group and first retainer. */
  retainedPerConnection: Map<string, Group>
}

async function measure (contender: ContenderInfo, clients: number, redis: BenchRedis | undefined): Promise<Breakdown> {
  const env = contender.needsRedis === true ? { ...process.env, BENCH_REDIS_URL: redis?.url, BENCH_REDIS_PREFIX: `heap-${process.pid}-${contender.name}:` } : process.env
  const server = new Peer<ServerApi>(spawnChild(`./servers/${contender.module}.js`, ['--expose-gc'], env))
  const client = new Peer<ClientApi>(spawnChild('./client/load.js', []))
  try {
    const announced = await server.announcement(STARTUP_TIMEOUT_MS)
    if (announced.announce === 'unavailable') throw new Error(`${contender.name} unavailable: ${announced.reason}`)
    const port = announced.port as number
    await client.announcement(STARTUP_TIMEOUT_MS)
    const open = async (count: number): Promise<void> => {
      const result = await client.call('connect', { port, count, batchSize: 250, attempts: 3, attemptTimeoutMs: 10_000, timeoutMs: 60_000 }, CALL_TIMEOUT_MS)
      if (result.open !== count) throw new Error(`${result.open} of ${count} connections opened (${result.firstError ?? '?'})`)
      await waitForConnections(server, count, 10_000)
    }
    // Warm-up connections come and go first, so one-time setup (compiled code, caches) is in both snapshots.
    await open(IDLE_WARMUP_CLIENTS)
    await client.call('close', undefined, CALL_TIMEOUT_MS)
    await waitForConnections(server, 0, 10_000)
    const name = contender.name.replace(/[^a-z0-9-]/gi, '')
    const beforeMemory = await server.call('memory', undefined, CALL_TIMEOUT_MS)
    const beforePath = await server.call('snapshot', `${HEAP_DIR}${name}-before.heapsnapshot`, CALL_TIMEOUT_MS)
    await open(clients)
    const afterMemory = await server.call('memory', undefined, CALL_TIMEOUT_MS)
    const afterPath = await server.call('snapshot', `${HEAP_DIR}${name}-after-${clients}.heapsnapshot`, CALL_TIMEOUT_MS)
    const before = census(beforePath)
    const after = census(afterPath)
    const perConnection = grown(before.groups, after.groups, clients)
    const snapshotPerConnection = [...perConnection.values()].reduce((sum, group) => sum + group.bytes, 0)
    return {
      variant: contender.name,
      clients,
      heapPerConnection: (afterMemory.heapUsed - beforeMemory.heapUsed) / clients,
      snapshotPerConnection,
      perConnection,
      retainedPerConnection: grown(before.retained, after.retained, clients)
    }
  } finally {
    await stopChild(client)
    await stopChild(server)
  }
}

const bytes = (n: number): string => `${n >= 0 ? '' : '-'}${Math.abs(n).toFixed(0)} B`

function render (results: readonly Breakdown[]): string {
  const out: string[] = []
  const raw = results.find((result) => result.variant === 'raw')
  const reference = results.find((result) => result.variant === REFERENCE)
  out.push(`## Heap per idle connection (${results[0]?.clients ?? 0} streams, after forced GCs)`, '')
  out.push('| variant | heapUsed/conn | vs raw | snapshot self sizes/conn | per-stream groups/conn |', '|---|---:|---:|---:|---:|')
  for (const result of results) {
    const perStream = [...result.perConnection.values()].filter((group) => group.count >= PER_STREAM_SHARE).reduce((sum, group) => sum + group.bytes, 0)
    const ratio = raw === undefined ? '-' : `${(result.heapPerConnection / raw.heapPerConnection).toFixed(2)}x`
    out.push(`| ${result.variant} | ${bytes(result.heapPerConnection)} | ${ratio} | ${bytes(result.snapshotPerConnection)} | ${bytes(perStream)} |`)
  }
  for (const result of results) {
    out.push('', `### ${result.variant}: objects that grew by >= ${PER_STREAM_SHARE} per stream${result.variant === REFERENCE || reference === undefined || result.variant === 'raw' ? '' : `, and the difference to ${REFERENCE}`}`, '')
    const compare = result.variant !== REFERENCE && result.variant !== 'raw' ? reference : undefined
    out.push(`| group (type, constructor or function) | count/stream | bytes/stream |${compare === undefined ? '' : ` vs ${REFERENCE} |`}`)
    out.push(`|---|---:|---:|${compare === undefined ? '' : '---:|'}`)
    const keys = new Set<string>()
    for (const [key, group] of result.perConnection) if (group.count >= PER_STREAM_SHARE) keys.add(key)
    if (compare !== undefined) {
      // Also list what the reference has per stream and this variant has not, or has more of.
      for (const [key, group] of compare.perConnection) {
        const mine = result.perConnection.get(key) ?? { count: 0, bytes: 0 }
        if (group.count >= PER_STREAM_SHARE && Math.abs(mine.bytes - group.bytes) >= MIN_LISTED_BYTES) keys.add(key)
      }
    }
    const rows = [...keys].map((key) => {
      const mine = result.perConnection.get(key) ?? { count: 0, bytes: 0 }
      const theirs = compare?.perConnection.get(key) ?? { count: 0, bytes: 0 }
      return { key, mine, delta: mine.bytes - theirs.bytes }
    }).filter((row) => compare === undefined || Math.abs(row.delta) >= MIN_LISTED_BYTES)
    rows.sort((a, b) => compare === undefined ? b.mine.bytes - a.mine.bytes : b.delta - a.delta)
    for (const row of rows) {
      out.push(`| ${row.key.replace(/\|/g, '\\|')} | ${row.mine.count.toFixed(2)} | ${bytes(row.mine.bytes)} |${compare === undefined ? '' : ` ${row.delta >= 0 ? '+' : ''}${bytes(row.delta)} |`}`)
    }
    if (compare !== undefined) out.push('', ...renderRetained(result, compare))
  }
  return out.join('\n')
}

/** The generic groups by first retainer, where they differ from the reference's by a byte or more per stream. */
function renderRetained (result: Breakdown, compare: Breakdown): string[] {
  const out = [`Generic objects by first retainer, vs ${REFERENCE}:`, '', '| group <- retainer.edge | count/stream | bytes/stream | vs ' + REFERENCE + ' |', '|---|---:|---:|---:|']
  const rows = [...new Set([...result.retainedPerConnection.keys(), ...compare.retainedPerConnection.keys()])].map((key) => {
    const mine = result.retainedPerConnection.get(key) ?? { count: 0, bytes: 0 }
    const theirs = compare.retainedPerConnection.get(key) ?? { count: 0, bytes: 0 }
    return { key, mine, delta: mine.bytes - theirs.bytes }
  }).filter((row) => Math.abs(row.delta) >= MIN_LISTED_BYTES)
  rows.sort((a, b) => b.delta - a.delta)
  for (const row of rows) out.push(`| ${row.key.replace(/\|/g, '\\|')} | ${row.mine.count.toFixed(2)} | ${bytes(row.mine.bytes)} | ${row.delta >= 0 ? '+' : ''}${bytes(row.delta)} |`)
  return out
}

function parseArgs (argv: readonly string[]): { clients: number, variants: string[], keepSnapshots: boolean } {
  let clients = 2000
  let variants = DEFAULT_VARIANTS
  let keepSnapshots = false
  for (const arg of argv) {
    if (arg.startsWith('--clients=')) clients = Number(arg.slice('--clients='.length))
    else if (arg.startsWith('--only=')) variants = ['raw', REFERENCE, ...arg.slice('--only='.length).split(',').map((name) => name.trim()).filter((name) => name !== 'raw' && name !== REFERENCE)]
    else if (arg === '--keep-snapshots') keepSnapshots = true
    else throw new Error(`unknown option ${arg}; known: --clients=N, --only=a,b, --keep-snapshots`)
  }
  if (!Number.isSafeInteger(clients) || clients < 100 || clients > 15_000) throw new Error(`--clients must be an integer from 100 to 15000, got ${clients}`)
  for (const name of variants) {
    if (!CONTENDERS.some((contender) => contender.name === name)) throw new Error(`unknown contender ${name}; known: ${CONTENDERS.map((c) => c.name).join(', ')}`)
  }
  return { clients, variants, keepSnapshots }
}

async function main (): Promise<void> {
  const { clients, variants, keepSnapshots } = parseArgs(process.argv.slice(2))
  mkdirSync(HEAP_DIR, { recursive: true })
  const contenders = variants.map((name) => CONTENDERS.find((contender) => contender.name === name) as ContenderInfo)
  const redis = contenders.some((contender) => contender.needsRedis === true) ? await startRedisServer() : undefined
  const results: Breakdown[] = []
  try {
    for (const contender of contenders) {
      process.stderr.write(`heap-breakdown: ${contender.name}, ${clients} idle streams\n`)
      // One variant failing (a slow start on a busy machine) leaves the others' figures.
      try {
        results.push(await measure(contender, clients, redis))
      } catch (err) {
        process.stderr.write(`heap-breakdown: ${contender.name} failed: ${err instanceof Error ? err.message : String(err)}\n`)
      }
    }
  } finally {
    await redis?.stop()
    if (!keepSnapshots) rmSync(HEAP_DIR, { recursive: true, force: true })
  }
  process.stdout.write(render(results) + '\n')
}

process.once('SIGINT', () => { killChildren(); process.exit(130) })
process.once('exit', killChildren)

main().catch((err: unknown) => {
  process.stderr.write(`heap-breakdown failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  killChildren()
  process.exitCode = 1
})
