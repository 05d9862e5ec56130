/**
 * Summarizes V8 CPU profiles (`npm run bench -- --cpu-prof` writes one per server
 * run to bench/results/profiles/): the functions with the most self time, and the
 * most inclusive time (a function and everything it calls), idle time left out.
 *
 * Usage: node dist/bench/profile-top.js <file.cpuprofile>... [--top=25] [--filter=text]
 *   --filter keeps only samples whose stack contains a frame matching the text
 *   (e.g. --filter=publish to look at the publish phase alone).
 */
import { readFileSync } from 'node:fs'
import { basename } from 'node:path'

interface CallFrame {
  functionName: string
  url: string
  lineNumber: number
}

interface ProfileNode {
  id: number
  callFrame: CallFrame
  children?: number[]
}

interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

/** Frames that are not JavaScript work. */
const META = new Set(['(idle)', '(program)', '(garbage collector)', '(root)'])

function label (frame: CallFrame): string {
  const name = frame.functionName === '' ? '(anonymous)' : frame.functionName
  if (frame.url === '') return name
  const file = frame.url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, '').replace(/^.*\/dist\//, '')
  return `${name} ${file}:${frame.lineNumber + 1}`
}

interface Totals {
  totalMs: number
  busyMs: number
  gcMs: number
  self: Map<string, number>
  inclusive: Map<string, number>
}

function analyze (profile: Profile, filter: string | undefined): Totals {
  const byId = new Map<number, ProfileNode>()
  const parent = new Map<number, number>()
  for (const node of profile.nodes) {
    byId.set(node.id, node)
    for (const child of node.children ?? []) parent.set(child, node.id)
  }
  const totals: Totals = { totalMs: 0, busyMs: 0, gcMs: 0, self: new Map(), inclusive: new Map() }
  for (let i = 0; i < profile.samples.length; i++) {
    const ms = (profile.timeDeltas[i] ?? 0) / 1000
    totals.totalMs += ms
    const node = byId.get(profile.samples[i])
    if (node === undefined) continue
    const name = node.callFrame.functionName
    if (name === '(idle)' || name === '(program)' || name === '(root)') continue
    // The stack from the sampled frame to the root, each function once.
    const stack = new Set<string>()
    // Bounded by the profile's depth: parents form a tree.
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const frame = (byId.get(id) as ProfileNode).callFrame
      if (!META.has(frame.functionName)) stack.add(label(frame))
    }
    if (filter !== undefined && ![...stack].some((entry) => entry.includes(filter))) continue
    totals.busyMs += ms
    if (name === '(garbage collector)') totals.gcMs += ms
    const own = name === '(garbage collector)' ? name : label(node.callFrame)
    totals.self.set(own, (totals.self.get(own) ?? 0) + ms)
    for (const entry of stack) totals.inclusive.set(entry, (totals.inclusive.get(entry) ?? 0) + ms)
  }
  return totals
}

function top (map: Map<string, number>, busyMs: number, count: number): string[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, ms]) => `${ms.toFixed(1).padStart(9)} ms ${(100 * ms / busyMs).toFixed(1).padStart(5)}%  ${name}`)
}

function main (): void {
  const args = process.argv.slice(2)
  const files = args.filter((arg) => !arg.startsWith('--'))
  const count = Number(args.find((arg) => arg.startsWith('--top='))?.slice(6) ?? 25)
  const filter = args.find((arg) => arg.startsWith('--filter='))?.slice(9)
  if (files.length === 0) {
    process.stderr.write('usage: node dist/bench/profile-top.js <file.cpuprofile>... [--top=25] [--filter=text]\n')
    process.exitCode = 2
    return
  }
  for (const file of files) {
    const totals = analyze(JSON.parse(readFileSync(file, 'utf8')) as Profile, filter)
    process.stdout.write([
      `== ${basename(file)}: ${totals.busyMs.toFixed(0)} ms busy of ${totals.totalMs.toFixed(0)} ms` +
        ` (GC ${totals.gcMs.toFixed(0)} ms)${filter === undefined ? '' : `, stacks with "${filter}"`}`,
      '-- self time',
      ...top(totals.self, totals.busyMs, count),
      '-- inclusive time',
      ...top(totals.inclusive, totals.busyMs, count),
      ''
    ].join('\n') + '\n')
  }
}

main()
