/**
 * Micro-benchmark of encoding one event's data: `serializePayload` (the compiled
 * TypeBox check, then the event's serializer) against what 0.1.0 did (the same
 * check, then `JSON.stringify`), on the benchmark's two payloads (bench/payload.ts).
 *
 * The two ways run in alternating rounds, so a machine busy with something else
 * slows both alike; the median of the rounds is reported. Every round encodes a
 * fresh set of payloads so no result is cached by the engine.
 *
 * Run: `node --import tsx bench/serialize.ts` (`ROUNDS=15 OPS=200000` to change sizes).
 */
import { compiledEvent, serializePayload, type CompiledEvent } from '../lib/core/catalog.js'
import { makePayload, type PayloadKind } from './payload.js'
import { benchEvents } from './servers/catalog.js'

const ROUNDS = Number(process.env.ROUNDS ?? 11)
const OPS = Number(process.env.OPS ?? 100_000)
/** Distinct payloads per round, reused in turn: enough that field values vary. */
const DISTINCT = 1000

type Encode = (compiled: CompiledEvent, data: unknown) => string

/** 0.1.0's encoder: check, then JSON.stringify (every property of the value). */
function checkThenJsonStringify (compiled: CompiledEvent, data: unknown): string {
  if (!compiled.check.Check(data)) throw new Error('invalid')
  return JSON.stringify(data)
}

/** Encodes OPS payloads; returns operations per second. `sink` keeps the results alive. */
function round (encode: Encode, compiled: CompiledEvent, payloads: unknown[]): number {
  let sink = 0
  const started = process.hrtime.bigint()
  for (let i = 0; i < OPS; i++) sink += encode(compiled, payloads[i % DISTINCT]).length
  const elapsedNs = Number(process.hrtime.bigint() - started)
  if (sink === 0) throw new Error('nothing encoded')
  return OPS / (elapsedNs / 1e9)
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}

for (const kind of ['score', 'token'] as PayloadKind[]) {
  const compiled = compiledEvent(benchEvents, kind)
  const payloads = Array.from({ length: DISTINCT }, (_, seq) => makePayload(kind, seq, 1_700_000_000_000 + seq))
  if (serializePayload(compiled, payloads[1]) !== JSON.stringify(payloads[1])) {
    throw new Error(`${kind}: the two encoders disagree; the comparison would be meaningless`)
  }
  const ways: Array<[string, Encode]> = [['check + JSON.stringify (0.1.0)', checkThenJsonStringify], ['serializePayload', serializePayload]]
  for (const [, encode] of ways) round(encode, compiled, payloads) // warm up: let both reach optimized code
  const results = new Map<string, number[]>(ways.map(([name]) => [name, []]))
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, encode] of ways) results.get(name)?.push(round(encode, compiled, payloads))
  }
  const [before, after] = ways.map(([name]) => median(results.get(name) ?? []))
  console.log(`${kind} (${JSON.stringify(payloads[1]).length} B of JSON), median of ${ROUNDS} rounds of ${OPS} encodes:`)
  console.log(`  check + JSON.stringify (0.1.0): ${Math.round(before).toLocaleString('en')} ops/s`)
  console.log(`  serializePayload:               ${Math.round(after).toLocaleString('en')} ops/s (${(after / before).toFixed(2)}x)`)
}
