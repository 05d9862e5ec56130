/**
 * What a channel's history keeps per event, in memory: 200 channels of the memory engine
 * with `maxEvents: 1000`, filled with serialized ~50 B tokens (as `publish()` makes them),
 * then filled again; the heap after forced GCs over the events held. Another build's
 * `dist/` runs the same in its own process beside this one's (the figure moves with what
 * the ring keeps of each event: its data string, and the pieces it was built from).
 *
 *   npm run build && node --expose-gc dist/bench/history-heap.js [--compare-build=../before/dist]
 */
import { execFileSync } from 'node:child_process'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { resolve } from 'node:path'

const CHANNELS = 200
const MAX_EVENTS = 1000
const EVENTS = CHANNELS * MAX_EVENTS

/** Heap bytes per event held, with the modules of the `dist/` at `root`. */
async function measure (root: string): Promise<number> {
  const load = async <T>(path: string): Promise<T> => await import(pathToFileURL(resolve(root, path)).href) as T
  const { memoryEngine } = await load<typeof import('../lib/engine/memory.js')>('lib/engine/memory.js')
  const { compiledEvent, serializePayload } = await load<typeof import('../lib/core/catalog.js')>('lib/core/catalog.js')
  const { benchEvents } = await load<typeof import('./servers/catalog.js')>('bench/servers/catalog.js')
  const { makeToken } = await load<typeof import('./payload.js')>('bench/payload.js')
  const compiled = compiledEvent(benchEvents, 'token')
  const engine = memoryEngine()
  const listener = { deliver () {}, gap () {} }
  const channels = Array.from({ length: CHANNELS }, (_, i) => engine.channel(`s${i}`, { maxEvents: MAX_EVENTS, maxAgeMs: false }, listener))
  const fill = (from: number): void => {
    for (let i = 0; i < EVENTS; i++) {
      const seq = from + i
      void channels[i % CHANNELS].publish({ id: undefined, event: 'token', data: serializePayload(compiled, makeToken(seq, 1_765_000_000_000 + seq)) })
    }
  }
  const gc = globalThis.gc as () => void
  // The second fill replaces every event of the first: the rings are at their full size.
  fill(0)
  fill(EVENTS)
  gc()
  gc()
  return process.memoryUsage().heapUsed / EVENTS
}

if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc')
const own = fileURLToPath(new URL('../', import.meta.url))
const child = process.argv.find((arg) => arg.startsWith('--measure='))
if (child !== undefined) {
  process.stdout.write(String(await measure(child.slice('--measure='.length))))
} else {
  const other = process.argv.find((arg) => arg.startsWith('--compare-build='))?.slice('--compare-build='.length)
  // Each build in a fresh process, so neither sees the other's heap.
  const run = (root: string): number => Number(execFileSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), `--measure=${root}`], { encoding: 'utf8' }))
  const bytes = run(own)
  console.log(`${CHANNELS} channels x ${MAX_EVENTS} events of ~50 B JSON: ${bytes.toFixed(0)} B of heap per event held (the whole heap over the events)`)
  if (other !== undefined) {
    const before = run(resolve(other))
    console.log(`the build in ${other}: ${before.toFixed(0)} B per event; this build ${(bytes / before).toFixed(2)}x`)
  }
}
