/**
 * The chaos run from the command line (after `npm run build`):
 *
 *   node dist/bench/chaos.js --seed 7                      # one Redis, 60 s
 *   node dist/bench/chaos.js --seed 7 --topology cluster   # a Redis Cluster (3+3)
 *   node dist/bench/chaos.js --seed 7 --duration 120 --instances 4 --channels 6
 *
 * Prints each fault as it is injected, then the checker's verdict and one JSON line;
 * exits 1 when the delivery invariant broke (bench/chaos-check.ts). See bench/README.md.
 */
import { parseArgs } from 'node:util'
import { describeViolations } from './chaos-check.js'
import { runChaos, type Topology } from './chaos-run.js'

const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: '1' },
    topology: { type: 'string', default: 'single' },
    duration: { type: 'string', default: '60' },
    instances: { type: 'string', default: '3' },
    channels: { type: 'string', default: '4' },
    clients: { type: 'string', default: '3' },
    'publish-every': { type: 'string', default: '50' }
  }
})

function integer (name: string, text: string | undefined): number {
  const value = Number(text)
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`--${name} must be a non-negative integer, got ${String(text)}`)
  return value
}

const topology = values.topology as Topology
if (topology !== 'single' && topology !== 'cluster') throw new RangeError(`--topology must be single or cluster, got ${String(values.topology)}`)
const result = await runChaos({
  seed: integer('seed', values.seed),
  topology,
  durationMs: integer('duration', values.duration) * 1000,
  instances: integer('instances', values.instances),
  channels: integer('channels', values.channels),
  clientsPerChannel: integer('clients', values.clients),
  publishEveryMs: integer('publish-every', values['publish-every']),
  faultGapMs: topology === 'cluster' ? [2000, 5000] : [1000, 3000],
  log: (line) => process.stderr.write(`${line}\n`)
})
const { report } = result
console.log(`seed ${result.options.seed}, ${topology}: ${result.faults.length} faults; ${result.attempted} publishes, ${result.acked} acknowledged, ${result.rejected} rejected; ` +
  `${report.delivered} deliveries to ${result.options.channels * result.options.clientsPerChannel} clients (${result.reconnects} reconnects); ` +
  `${report.gaps} resyncs covering ${report.covered} messages; ${report.lostByRedis} acknowledged publishes lost by Redis`)
console.log(report.violations.length === 0 ? 'invariant held: every kept message delivered once, in order, or covered by a resync' : `VIOLATIONS: ${describeViolations(report.violations)}`)
console.log(JSON.stringify({ ...result, report: { ...report, violations: report.violations.slice(0, 100) } }))
process.exitCode = report.violations.length === 0 ? 0 : 1
