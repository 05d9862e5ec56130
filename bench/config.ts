/**
 * What the benchmark runs: the contenders, the scenarios (full and `--quick` sizes)
 * and the targets the plugin is held to. Sizes are chosen so the full run stays
 * under ten minutes on a 2-core machine.
 */
import type { PayloadKind } from './payload.js'

/** A contender: its name in tables and `--only`, and its server module under servers/. */
export interface ContenderInfo {
  name: string
  module: string
  description: string
}

/** The baseline every ratio divides by; always run. */
export const BASELINE = 'raw'

export const CONTENDERS: readonly ContenderInfo[] = [
  { name: 'raw', module: 'raw', description: 'node:http, one Buffer per event written to every socket (the limit)' },
  { name: 'fastify-hijack', module: 'fastify-hijack', description: 'Fastify route, reply hijacked, written like raw' },
  { name: 'typed-sse', module: 'typed-sse', description: 'this plugin: reply.sse(catalog) per client, stream.send() to each' },
  { name: 'typed-sse-channel', module: 'typed-sse-channel', description: 'this plugin: app.sse.channel(), publish() once' },
  { name: 'typed-sse-metrics', module: 'typed-sse-metrics', description: 'typed-sse-channel with Prometheus metrics on (scraped every second)' },
  { name: '@fastify/sse', module: 'fastify-sse', description: '@fastify/sse 0.6: reply.sse.send() to each client' },
  { name: 'fastify-sse-v2', module: 'fastify-sse-v2', description: 'fastify-sse-v2 4.x: reply.sse() to each client' },
  { name: 'better-sse', module: 'better-sse', description: 'better-sse 0.16: sessions in a channel, channel.broadcast()' }
]

/** What a scenario measures. */
export type ScenarioKind = 'fanout' | 'single' | 'idle' | 'latency'

export interface Scenario {
  name: string
  kind: ScenarioKind
  clients: number
  /** Measured events (each to every client). */
  events: number
  /** Events before the measured ones, to warm up the JIT; checked like the others. */
  warmupEvents: number
  payload: PayloadKind
  /** Events per second, or 0 for as fast as the sockets drain. */
  ratePerSec: number
  /** Events per event-loop turn when not rate-limited. */
  perTick: number
  /** Deadline of one phase (publish and delivery). */
  timeoutMs: number
}

function fanout (clients: number, events: number): Scenario {
  return { name: `fanout-${clients}`, kind: 'fanout', clients, events, warmupEvents: Math.ceil(events / 5), payload: 'score', ratePerSec: 0, perTick: 1, timeoutMs: 60_000 }
}

function single (events: number): Scenario {
  return { name: `single-${events / 1000}k`, kind: 'single', clients: 1, events, warmupEvents: events / 10, payload: 'token', ratePerSec: 0, perTick: 1000, timeoutMs: 60_000 }
}

function idle (clients: number): Scenario {
  return { name: `idle-${clients}`, kind: 'idle', clients, events: 0, warmupEvents: 0, payload: 'score', ratePerSec: 0, perTick: 1, timeoutMs: 60_000 }
}

function latency (clients: number, ratePerSec: number, seconds: number): Scenario {
  return { name: `latency-${clients}`, kind: 'latency', clients, events: ratePerSec * seconds, warmupEvents: Math.ceil(ratePerSec / 2), payload: 'score', ratePerSec, perTick: 1, timeoutMs: 60_000 }
}

/**
 * Events per second of the latency scenario. Issue 6 asks for 100/s at 1000 clients,
 * i.e. 100k socket writes per second; on the 2-core VM this was written on, raw
 * node:http tops out near 40-60k (see fanout-1000), so at 100/s every contender is
 * saturated and p99 measures only how fast the backlog grows. At 20/s the baseline
 * has headroom and the figure is the latency of the write path. `--latency-rate=100`
 * runs the rate on a machine that sustains it.
 */
export const DEFAULT_LATENCY_RATE = 20

/** The full run. */
export function fullPlan (latencyRate: number): { reps: number, scenarios: Scenario[] } {
  return { reps: 3, scenarios: [fanout(1000, 150), fanout(5000, 30), single(200_000), idle(5000), latency(1000, latencyRate, 3)] }
}

/** `--quick`: a smoke test of every path in about a minute. */
export function quickPlan (latencyRate: number): { reps: number, scenarios: Scenario[] } {
  return { reps: 1, scenarios: [fanout(200, 50), fanout(1000, 10), single(20_000), idle(1000), latency(200, latencyRate, 1)] }
}

/** Idle connections opened and closed before the idle baseline, so one-time setup is not counted per connection. */
export const IDLE_WARMUP_CLIENTS = 20

/** A target of issue 6, as a ratio to `raw` in the same run. */
export interface Target {
  kind: ScenarioKind
  metric: 'eventsPerSec' | 'cpuUsPerEvent' | 'heapPerConnection' | 'p99Ms'
  /** `min`: the ratio must be at least `ratio`; `max`: at most. */
  bound: 'min' | 'max'
  ratio: number
  /** The contender the target is about (the other plugin contender is shown for reference). */
  contender: string
}

export const TARGETS: readonly Target[] = [
  { kind: 'fanout', metric: 'eventsPerSec', bound: 'min', ratio: 0.9, contender: 'typed-sse-channel' },
  { kind: 'fanout', metric: 'cpuUsPerEvent', bound: 'max', ratio: 1.15, contender: 'typed-sse-channel' },
  { kind: 'single', metric: 'eventsPerSec', bound: 'min', ratio: 0.85, contender: 'typed-sse' },
  { kind: 'idle', metric: 'heapPerConnection', bound: 'max', ratio: 1.25, contender: 'typed-sse' },
  { kind: 'latency', metric: 'p99Ms', bound: 'max', ratio: 1.25, contender: 'typed-sse-channel' }
]
