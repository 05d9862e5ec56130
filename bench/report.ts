/**
 * Results: one record per run, medians per scenario and contender, ratios to the
 * baseline of the same run, the table printed at the end and the targets check.
 */
import { BASELINE, COMPARED_SUFFIX, CONTENDERS, TARGETS, type Scenario, type ScenarioKind, type Target } from './config.js'

/** The figures of one run (one contender, one scenario, one repetition). */
export interface RunResult {
  scenario: string
  kind: ScenarioKind
  contender: string
  rep: number
  /** `fail`: an error, or a client that missed, reordered or duplicated an event. */
  status: 'ok' | 'fail' | 'unavailable'
  error?: string
  clients: number
  events: number
  connectMs?: number
  /** Measured events / (last delivery - first publish). */
  eventsPerSec?: number
  /** eventsPerSec x clients. */
  deliveriesPerSec?: number
  /** Server CPU (user + system) from the first publish to the last delivery, per event. */
  cpuUsPerEvent?: number
  /** The same per delivered message (event x client): the `streams` scenario's figure. */
  cpuUsPerMessage?: number
  serverCpuMs?: number
  /** The user and system parts of serverCpuMs: JavaScript and the kernel's socket writes. */
  serverUserMs?: number
  serverSystemMs?: number
  /** Median CPU time of the synchronous publish call (JS only, no syscalls), see harness.ts. */
  publishCallUs?: number
  clientCpuMs?: number
  drainWaits?: number
  p50Ms?: number
  p90Ms?: number
  p99Ms?: number
  maxMs?: number
  latencySamples?: number
  /** Heap used per idle connection after a forced GC, baseline subtracted (bytes). */
  heapPerConnection?: number
  rssPerConnection?: number
  externalPerConnection?: number
  /** Capacity: server CPU while every connection idles with heartbeats on, percent of one core per process. */
  idleCpuPct?: number
  /** Capacity: publish of one event to its delivery on the last connection (ms). */
  broadcastMs?: number
}

/** The numeric figures that get medians and ratios. */
export const METRICS = [
  'eventsPerSec', 'deliveriesPerSec', 'cpuUsPerEvent', 'cpuUsPerMessage', 'serverCpuMs', 'serverUserMs', 'serverSystemMs', 'publishCallUs', 'clientCpuMs',
  'p50Ms', 'p90Ms', 'p99Ms', 'maxMs', 'heapPerConnection', 'rssPerConnection', 'externalPerConnection',
  'connectMs', 'idleCpuPct', 'broadcastMs'
] as const
export type Metric = typeof METRICS[number]

/** Medians over repetitions of one scenario and contender, with ratios to the baseline. */
export interface Summary {
  scenario: string
  kind: ScenarioKind
  contender: string
  status: RunResult['status']
  error?: string
  reps: number
  clients: number
  events: number
  median: Partial<Record<Metric, number>>
  ratio: Partial<Record<Metric, number>>
  /**
   * `streams`: the contender's floor (raw, or the one it names in config.ts), its
   * median CPU per message over the floor's, and the same ratio in each repetition
   * (each against the floor's run of that repetition: the spread).
   */
  floor?: { name: string, ratio: number | undefined, perRep: number[] }
}

/** The floor of `contender` in the `streams` scenario. */
export function floorOf (contender: string): string {
  const name = contender.endsWith(COMPARED_SUFFIX) ? contender.slice(0, -COMPARED_SUFFIX.length) : contender
  return CONTENDERS.find((info) => info.name === name)?.floor ?? BASELINE
}

/**
 * This build against the one given with `--compare-build`: for each scenario and contender
 * run from both, server CPU per event of this build over that build's, in each repetition
 * (the two ran back to back) and their median.
 *
 * @example
 * renderComparison(runs, '/tmp/before/dist') // '### This build against /tmp/before/dist ...'
 */
export function renderComparison (runs: readonly RunResult[], dist: string): string {
  // Per scenario and contender of this build, the ratio of each repetition in which both ran.
  const ratios = new Map<string, number[]>()
  for (const mine of runs) {
    if (mine.contender.endsWith(COMPARED_SUFFIX) || mine.cpuUsPerEvent === undefined) continue
    const theirs = runs.find((other) => other.scenario === mine.scenario && other.contender === `${mine.contender}${COMPARED_SUFFIX}` && other.rep === mine.rep)
    if (theirs?.cpuUsPerEvent === undefined) continue
    const key = `| ${mine.scenario} | ${mine.contender} |`
    ratios.set(key, [...ratios.get(key) ?? [], mine.cpuUsPerEvent / theirs.cpuUsPerEvent])
  }
  const rows = [...ratios].map(([key, each]) => `${key} ${median(each).toFixed(3)} | ${each.map((r) => r.toFixed(2)).join(' ')} |`)
  return [
    `### This build against the build in ${dist} (--compare-build)`, '',
    'Server CPU per event, this build over that one, in each repetition (the two ran back to back) and the median; below 1 is faster.', '',
    '| scenario | contender | median | per rep |', '| --- | --- | ---: | --- |', ...rows, ''
  ].join('\n')
}

function withFloor (summary: Summary, group: readonly Summary[], runs: readonly RunResult[]): void {
  const name = floorOf(summary.contender)
  const floor = group.find((candidate) => candidate.contender === name)
  const mine = summary.median.cpuUsPerMessage
  const base = floor?.median.cpuUsPerMessage
  const perRep: number[] = []
  for (const run of runs) {
    if (run.scenario !== summary.scenario || run.contender !== summary.contender || run.cpuUsPerMessage === undefined) continue
    const other = runs.find((candidate) => candidate.scenario === run.scenario && candidate.contender === name && candidate.rep === run.rep)
    if (other?.cpuUsPerMessage !== undefined) perRep.push(run.cpuUsPerMessage / other.cpuUsPerMessage)
  }
  summary.floor = { name, ratio: mine === undefined || base === undefined ? undefined : mine / base, perRep }
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/** Groups runs by scenario and contender (in the given orders) and takes medians. */
export function summarize (runs: readonly RunResult[], scenarios: readonly Scenario[], contenders: readonly string[]): Summary[] {
  const summaries: Summary[] = []
  for (const scenario of scenarios) {
    let baseline: Summary | undefined
    const group: Summary[] = []
    for (const contender of contenders) {
      const mine = runs.filter((run) => run.scenario === scenario.name && run.contender === contender)
      if (mine.length === 0) continue
      const failed = mine.find((run) => run.status !== 'ok')
      const summary: Summary = {
        scenario: scenario.name,
        kind: scenario.kind,
        contender,
        status: failed?.status ?? 'ok',
        error: failed?.error,
        reps: mine.length,
        clients: scenario.clients,
        events: scenario.events,
        median: {},
        ratio: {}
      }
      if (failed === undefined) {
        for (const metric of METRICS) {
          const values = mine.map((run) => run[metric]).filter((value): value is number => typeof value === 'number' && Number.isFinite(value))
          if (values.length === mine.length) summary.median[metric] = median(values)
        }
      }
      if (contender === BASELINE) baseline = summary
      group.push(summary)
    }
    for (const summary of group) {
      if (baseline === undefined || baseline.status !== 'ok' || summary.status !== 'ok') continue
      for (const metric of METRICS) {
        const mine = summary.median[metric]
        const base = baseline.median[metric]
        if (mine !== undefined && base !== undefined && base !== 0) summary.ratio[metric] = mine / base
      }
    }
    if (scenario.kind === 'streams') for (const summary of group) withFloor(summary, group, runs)
    summaries.push(...group)
  }
  return summaries
}

interface Column {
  title: string
  cell: (summary: Summary) => string
}

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })

function value (summary: Summary, metric: Metric, format: (n: number) => string): string {
  const n = summary.median[metric]
  return n === undefined ? '-' : format(n)
}

function ratio (summary: Summary, metric: Metric): string {
  const r = summary.ratio[metric]
  return r === undefined ? '-' : `${r.toFixed(2)}x`
}

const kb = (bytes: number): string => `${(bytes / 1024).toFixed(2)} KB`

const CAPACITY_COLUMNS: Column[] = [
  { title: 'heap/conn', cell: (s) => value(s, 'heapPerConnection', kb) },
  { title: 'vs raw', cell: (s) => ratio(s, 'heapPerConnection') },
  { title: 'RSS/conn', cell: (s) => value(s, 'rssPerConnection', kb) },
  { title: 'vs raw', cell: (s) => ratio(s, 'rssPerConnection') },
  { title: 'idle CPU', cell: (s) => value(s, 'idleCpuPct', (n) => `${n.toFixed(2)} %`) },
  { title: 'vs raw', cell: (s) => ratio(s, 'idleCpuPct') },
  { title: 'broadcast to all', cell: (s) => value(s, 'broadcastMs', (n) => `${integer.format(n)} ms`) },
  { title: 'vs raw', cell: (s) => ratio(s, 'broadcastMs') },
  { title: 'deliveries/s', cell: (s) => value(s, 'deliveriesPerSec', integer.format) },
  { title: 'connect', cell: (s) => value(s, 'connectMs', (n) => `${(n / 1000).toFixed(1)} s`) }
]

const COLUMNS: Record<ScenarioKind, Column[]> = {
  fanout: [
    { title: 'events/s', cell: (s) => value(s, 'eventsPerSec', integer.format) },
    { title: 'vs raw', cell: (s) => ratio(s, 'eventsPerSec') },
    { title: 'deliveries/s', cell: (s) => value(s, 'deliveriesPerSec', integer.format) },
    { title: 'server CPU/event', cell: (s) => value(s, 'cpuUsPerEvent', (n) => `${integer.format(n)} us`) },
    { title: 'vs raw', cell: (s) => ratio(s, 'cpuUsPerEvent') },
    { title: 'publish call CPU', cell: (s) => value(s, 'publishCallUs', (n) => `${integer.format(n)} us`) },
    { title: 'vs raw', cell: (s) => ratio(s, 'publishCallUs') },
    { title: 'client CPU', cell: (s) => value(s, 'clientCpuMs', (n) => `${integer.format(n)} ms`) }
  ],
  single: [
    { title: 'events/s', cell: (s) => value(s, 'eventsPerSec', integer.format) },
    { title: 'vs raw', cell: (s) => ratio(s, 'eventsPerSec') },
    { title: 'server CPU/event', cell: (s) => value(s, 'cpuUsPerEvent', (n) => `${n.toFixed(2)} us`) },
    { title: 'vs raw', cell: (s) => ratio(s, 'cpuUsPerEvent') },
    { title: 'client CPU', cell: (s) => value(s, 'clientCpuMs', (n) => `${integer.format(n)} ms`) }
  ],
  idle: [
    { title: 'heap/conn', cell: (s) => value(s, 'heapPerConnection', kb) },
    { title: 'vs raw', cell: (s) => ratio(s, 'heapPerConnection') },
    { title: 'RSS/conn', cell: (s) => value(s, 'rssPerConnection', kb) },
    { title: 'vs raw', cell: (s) => ratio(s, 'rssPerConnection') },
    { title: 'external/conn', cell: (s) => value(s, 'externalPerConnection', kb) }
  ],
  latency: [
    { title: 'p50', cell: (s) => value(s, 'p50Ms', (n) => `${n.toFixed(2)} ms`) },
    { title: 'vs raw', cell: (s) => ratio(s, 'p50Ms') },
    { title: 'p99', cell: (s) => value(s, 'p99Ms', (n) => `${n.toFixed(2)} ms`) },
    { title: 'vs raw', cell: (s) => ratio(s, 'p99Ms') },
    { title: 'max', cell: (s) => value(s, 'maxMs', (n) => `${n.toFixed(2)} ms`) },
    { title: 'server CPU/event', cell: (s) => value(s, 'cpuUsPerEvent', (n) => `${integer.format(n)} us`) },
    { title: 'vs raw', cell: (s) => ratio(s, 'cpuUsPerEvent') }
  ],
  streams: [
    { title: 'floor', cell: (s) => s.floor?.name ?? '-' },
    { title: 'server CPU/msg', cell: (s) => value(s, 'cpuUsPerMessage', (n) => `${n.toFixed(2)} us`) },
    { title: 'vs floor', cell: (s) => s.floor?.ratio === undefined ? '-' : `${s.floor.ratio.toFixed(2)}x` },
    { title: 'per rep', cell: (s) => s.floor === undefined ? '-' : s.floor.perRep.map((r) => r.toFixed(2)).join(' ') },
    { title: 'msgs/s', cell: (s) => value(s, 'deliveriesPerSec', integer.format) },
    { title: 'p50', cell: (s) => value(s, 'p50Ms', (n) => `${n.toFixed(2)} ms`) },
    { title: 'p99', cell: (s) => value(s, 'p99Ms', (n) => `${n.toFixed(2)} ms`) },
    { title: 'client CPU', cell: (s) => value(s, 'clientCpuMs', (n) => `${integer.format(n)} ms`) }
  ],
  capacity: CAPACITY_COLUMNS,
  'capacity-redis': CAPACITY_COLUMNS,
  'capacity-cluster': CAPACITY_COLUMNS
}

function statusCell (summary: Summary): string {
  if (summary.status === 'ok') return 'ok'
  if (summary.status === 'unavailable') return `unavailable: ${summary.error ?? ''}`
  return `FAIL: ${(summary.error ?? '').split('\n')[0].slice(0, 120)}`
}

/** A Markdown table per scenario (readable as plain text, pasteable into the README). */
export function renderTables (summaries: readonly Summary[], scenarios: readonly Scenario[]): string {
  const out: string[] = []
  for (const scenario of scenarios) {
    const rows = summaries.filter((summary) => summary.scenario === scenario.name)
    if (rows.length === 0) continue
    const columns: Column[] = [{ title: 'contender', cell: (s) => s.contender }, ...COLUMNS[scenario.kind], { title: 'status', cell: statusCell }]
    const cells = rows.map((row) => columns.map((column) => row.status === 'ok' || column.title === 'contender' || column.title === 'status' ? column.cell(row) : '-'))
    const widths = columns.map((column, i) => Math.max(column.title.length, ...cells.map((row) => row[i].length)))
    const line = (values: string[]): string => `| ${values.map((text, i) => i === 0 ? text.padEnd(widths[i]) : text.padStart(widths[i])).join(' | ')} |`
    out.push(`### ${scenario.name}: ${describe(scenario)}`, '')
    out.push(line(columns.map((column) => column.title)))
    out.push(`|${widths.map((width, i) => i === 0 ? `-${'-'.repeat(width)}-` : `-${'-'.repeat(width)}:`).join('|')}|`)
    for (const row of cells) out.push(line(row))
    out.push('')
  }
  return out.join('\n')
}

/** One line on what a scenario does. */
export function describe (scenario: Scenario): string {
  switch (scenario.kind) {
    case 'fanout': return `${scenario.events} events of ~200 B JSON to each of ${scenario.clients} clients, one publish per event-loop turn`
    case 'single': return `${scenario.events} small events to 1 client, as fast as the socket drains`
    case 'idle': return `${scenario.clients} idle connections, memory after a forced GC minus the baseline`
    case 'streams': return `${scenario.clients} channels x one reader each, ${scenario.events} rounds of one ~50 B token per channel (a round's publishes in one turn, concurrent), server CPU per delivered message`
    case 'latency': return `${scenario.clients} clients, ${scenario.ratePerSec} events/s for ${scenario.events / scenario.ratePerSec} s, publish-to-receive`
    case 'capacity':
    case 'capacity-redis':
    case 'capacity-cluster': {
      const shape = scenario.capacity
      if (shape === undefined) return `${scenario.clients} idle connections`
      const backend = scenario.kind === 'capacity-cluster' ? 'a Redis Cluster (3 masters, 3 replicas)' : 'one Redis'
      return `${scenario.clients} idle connections on ${shape.servers === 1 ? 'one server process' : `${shape.servers} instances sharing ${backend}`} ` +
        `(from ${shape.clientProcesses} load generators, one source address each), heartbeats every ${shape.heartbeatMs / 1000} s: ` +
        `memory, idle CPU over ${shape.idleMs / 1000} s, one broadcast to all, then a burst of ${shape.burstEvents}`
    }
  }
}

/** The outcome of one target for one contender. */
export interface TargetCheck {
  target: Target
  scenario: string
  contender: string
  ratio: number | undefined
  isMet: boolean
}

/**
 * Checks each target against each plugin contender, in every scenario of its kind. A
 * target against another contender than raw (`versus`) is checked for its own
 * contender only.
 */
export function checkTargets (summaries: readonly Summary[]): TargetCheck[] {
  const checks: TargetCheck[] = []
  for (const target of TARGETS) {
    for (const summary of summaries) {
      if (summary.kind !== target.kind || !summary.contender.startsWith('typed-sse')) continue
      // A target against another contender, or of the streams scenario (each floor differs), is its own contender's only.
      if ((target.versus !== undefined || target.kind === 'streams') && summary.contender !== target.contender) continue
      const r = target.versus === undefined ? summary.ratio[target.metric] : ratioTo(summaries, summary, target.versus, target.metric)
      const isMet = r !== undefined && (target.bound === 'min' ? r >= target.ratio : r <= target.ratio)
      checks.push({ target, scenario: summary.scenario, contender: summary.contender, ratio: r, isMet })
    }
  }
  return checks
}

/** `summary`'s median of `metric` over `versus`'s in the same scenario, when both ran. */
function ratioTo (summaries: readonly Summary[], summary: Summary, versus: string, metric: Metric): number | undefined {
  const other = summaries.find((candidate) => candidate.scenario === summary.scenario && candidate.contender === versus)
  const mine = summary.median[metric]
  const base = other?.median[metric]
  return mine === undefined || base === undefined || base === 0 ? undefined : mine / base
}

/** The targets as a list, the target's own contender first. */
export function renderTargets (checks: readonly TargetCheck[]): string {
  const lines = ['### Targets (ratio to raw unless named, same run)', '']
  for (const check of checks) {
    const { target } = check
    const subject = check.contender === target.contender ? '' : ' (reference)'
    const measured = check.ratio === undefined ? 'n/a' : `${check.ratio.toFixed(2)}x`
    const verdict = check.ratio === undefined ? 'NOT MEASURED' : check.isMet ? 'met' : 'MISSED'
    const versus = target.versus === undefined ? '' : ` ${target.versus}`
    lines.push(`- ${check.scenario} ${target.metric} ${target.bound === 'min' ? '>=' : '<='} ${target.ratio}x${versus}: ${check.contender}${subject} ${measured} ${verdict}`)
  }
  return lines.join('\n')
}
