/**
 * The control surface every contender's server process shares, so they differ only
 * in how they open a stream and send one event (a `Contender`).
 *
 * Publishing is paced the same way for all: events are stamped and published one by
 * one; after each, any response whose socket asked for `drain` is waited for (so no
 * contender buffers without bound, whether or not its API reports backpressure).
 * Fan-out publishes one event per event-loop turn, as an application fed by network
 * messages would; the single-stream scenario publishes up to `perTick` events per
 * turn, i.e. as fast as the socket drains.
 */
import type { ServerResponse } from 'node:http'
import { writeHeapSnapshot } from 'node:v8'
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises'
import { announce, serve } from '../ipc.js'
import { clockMs, makePayload, type PayloadKind, type Score, type Token } from '../payload.js'

/** One contender: an SSE server and its way of sending an event to every client. */
export interface Contender {
  /**
   * Starts listening on 127.0.0.1 (port 0) with the event stream at `GET /sse`, and
   * resolves to the port. Calls `track` with the raw response of every stream once
   * the stream is ready to receive events.
   */
  listen (track: (response: ServerResponse) => void): Promise<number>
  /**
   * Sends one event to every open stream, the way this contender's users would. A
   * contender whose users await the call (the Redis engine: the publish is acknowledged
   * by Redis) returns the promise, and the harness awaits it before the next event.
   */
  publish (kind: PayloadKind, data: Score | Token): void | Promise<void>
  /**
   * The `streams` scenario: sends one event to the stream of channel `channel` only
   * (streams are numbered in the order they opened: stream `i` reads channel `i`).
   * Absent on contenders that do not run that scenario.
   */
  publishTo? (channel: number, kind: PayloadKind, data: Score | Token): void | Promise<unknown>
}

/**
 * Heartbeat interval the runner asks for (env `BENCH_HEARTBEAT_MS`), or undefined to
 * keep each library's default. The capacity scenario sets it to measure idle CPU.
 *
 * @example
 * await app.register(sse, { heartbeatMs: heartbeatMs() })
 */
export function heartbeatMs (): number | undefined {
  const value = process.env.BENCH_HEARTBEAT_MS
  if (value === undefined || value === '') return undefined
  const ms = Number(value)
  if (!Number.isSafeInteger(ms) || ms < 1) throw new Error(`BENCH_HEARTBEAT_MS must be a positive integer, got ${value}`)
  return ms
}

/** Thrown by `listen` when the contender cannot run here (e.g. an API not built yet). */
export class Unavailable extends Error {}

/** Parameters of `publish`. */
export interface PublishParams {
  kind: PayloadKind
  events: number
  /** The `seq` of the first event; later ones follow without gaps. */
  seqStart: number
  /** Events per second, or 0 for as fast as the sockets drain. */
  ratePerSec: number
  /** With `ratePerSec` 0: events published per event-loop turn (at most; backpressure ends a turn early). */
  perTick: number
  /** Measure the CPU time of every publish call (about 1 us of overhead each: for fan-out, not for tiny events). */
  timesCalls: boolean
  /**
   * `streams` scenario: this many channels, one stream each; each event (a round) is
   * published to every channel in one event-loop turn (`publishTo`), their promises
   * awaited together when the contender returns any, and the next round starts on the
   * next turn. 0: every event to every stream (`publish`).
   */
  channels: number
  timeoutMs: number
}

/** Result of `publish`. */
export interface PublishResult {
  /** Clock (ms, see clockMs) before the first event. */
  startedAt: number
  /** Clock after the last event was handed over and the sockets drained. */
  endedAt: number
  /** Times the publisher waited for `drain`. */
  drainWaits: number
  /**
   * Median CPU time (user + system, in microseconds) of one synchronous `publish`
   * call, when `timesCalls`: the JS cost of handing one event to every socket
   * (serializing, validating, buffering) without the syscalls, which run after the
   * call (Node flushes corked sockets on the next tick). CPU time, not wall time, so
   * other processes on the machine barely move it. Contenders that defer their work
   * (fastify-sse-v2 pushes into a queue) look cheaper here than they are.
   */
  publishCallUs: number
}

/** Memory after a forced GC, in bytes. */
export interface MemorySample {
  heapUsed: number
  heapTotal: number
  external: number
  arrayBuffers: number
  rss: number
}

/** Server CPU since the last `publish` began (or `markCpu`), in ms. */
export interface CpuSample {
  userMs: number
  systemMs: number
}

/** Passes bounding a drain wait: each waits for every backed-up socket once. */
const MAX_DRAIN_ROUNDS = 1000

/**
 * Runs `contender` as a child of the runner: listens, announces the port, then
 * serves the control API until told to exit.
 */
export function runContender (contender: Contender): void {
  const responses = new Set<ServerResponse>()
  let cpuAtPublish = process.cpuUsage()

  const track = (response: ServerResponse): void => {
    responses.add(response)
    response.once('close', () => responses.delete(response))
  }

  /** The responses whose socket asked for `drain`, or undefined when none did. */
  function backedUp (): ServerResponse[] | undefined {
    let waiting: ServerResponse[] | undefined
    for (const response of responses) if (response.writableNeedDrain) (waiting ??= []).push(response)
    return waiting
  }

  /** Waits until no socket is backed up; returns how many times it waited. */
  async function drained (waiting: ServerResponse[], deadline: number): Promise<number> {
    let waits = 0
    for (let round = 0; round < MAX_DRAIN_ROUNDS; round++) {
      waits++
      if (!(await drainAll(waiting, deadline - clockMs()))) {
        throw new Error(`${waiting.length} sockets still backed up at the publish deadline`)
      }
      const next = backedUp()
      if (next === undefined) return waits
      waiting = next
    }
    throw new Error(`sockets still backed up after ${MAX_DRAIN_ROUNDS} drain rounds`)
  }

  const collect = async (): Promise<void> => {
    const gc = (globalThis as { gc?: () => void }).gc
    if (gc === undefined) throw new Error('run the server with --expose-gc')
    // Several passes, with a turn between, so weak refs and finalizers settle.
    for (let pass = 0; pass < 4; pass++) {
      gc()
      await nextTurn()
    }
  }

  const api: ServerApi = {
    connections: () => responses.size,
    memory: async (): Promise<MemorySample> => {
      await collect()
      const { heapUsed, heapTotal, external, arrayBuffers, rss } = process.memoryUsage()
      return { heapUsed, heapTotal, external, arrayBuffers, rss }
    },
    publish: async (params: PublishParams): Promise<PublishResult> => {
      cpuAtPublish = process.cpuUsage()
      const startedAt = clockMs()
      const deadline = startedAt + params.timeoutMs
      const intervalMs = params.ratePerSec > 0 ? 1000 / params.ratePerSec : 0
      let drainWaits = 0
      const callUs = new Float64Array(params.events)
      if (params.channels > 0) {
        const publishTo = contender.publishTo
        if (publishTo === undefined) throw new Error('this contender has no publishTo: it does not run the streams scenario')
        const pending: Array<Promise<unknown>> = []
        for (let i = 0; i < params.events; i++) {
          if (i > 0) await nextTurn()
          if (clockMs() > deadline) throw new Error(`published ${i} of ${params.events} rounds before the deadline`)
          for (let channel = 0; channel < params.channels; channel++) {
            const sent = publishTo(channel, params.kind, makePayload(params.kind, params.seqStart + i, clockMs()))
            if (sent !== undefined) pending.push(sent)
          }
          if (pending.length > 0) await Promise.all(pending.splice(0))
          const waiting = backedUp()
          if (waiting !== undefined) drainWaits += await drained(waiting, deadline)
        }
        return { startedAt, endedAt: clockMs(), drainWaits, publishCallUs: NaN }
      }
      for (let i = 0; i < params.events; i++) {
        if (intervalMs > 0) {
          const waitMs = startedAt + i * intervalMs - clockMs()
          if (waitMs >= 1) await sleep(waitMs)
        } else if (i % params.perTick === 0 && i > 0) {
          await nextTurn()
          if (clockMs() > deadline) throw new Error(`published ${i} of ${params.events} events before the deadline`)
        }
        const payload = makePayload(params.kind, params.seqStart + i, clockMs())
        let pending: void | Promise<void>
        if (params.timesCalls) {
          const before = process.cpuUsage()
          pending = contender.publish(params.kind, payload)
          const { user, system } = process.cpuUsage(before)
          callUs[i] = user + system
        } else {
          pending = contender.publish(params.kind, payload)
        }
        if (pending !== undefined) await pending
        const waiting = backedUp()
        if (waiting !== undefined) drainWaits += await drained(waiting, deadline)
      }
      callUs.sort()
      return { startedAt, endedAt: clockMs(), drainWaits, publishCallUs: params.timesCalls ? callUs[callUs.length >> 1] : NaN }
    },
    markCpu: () => {
      cpuAtPublish = process.cpuUsage()
      return null
    },
    snapshot: async (path: string): Promise<string> => {
      await collect()
      return writeHeapSnapshot(path)
    },
    cpu: (): CpuSample => {
      const { user, system } = process.cpuUsage(cpuAtPublish)
      return { userMs: user / 1000, systemMs: system / 1000 }
    },
    exit: () => {
      // Exit on the next turn so this call's answer goes out first; --cpu-prof writes its profile on exit.
      setImmediate(() => process.exit(0))
      return null
    }
  }
  serve(api)

  contender.listen(track).then(
    (port) => announce({ announce: 'ready', port }),
    (err: unknown) => {
      if (!(err instanceof Unavailable)) throw err
      announce({ announce: 'unavailable', reason: err.message })
      setImmediate(() => process.exit(0))
    }
  )
}

/** The server's API, as the runner calls it. */
export type ServerApi = {
  connections: () => number
  memory: () => Promise<MemorySample>
  publish: (params: PublishParams) => Promise<PublishResult>
  cpu: () => CpuSample
  /** Starts the CPU count of `cpu` now (as `publish` does). */
  markCpu: () => null
  /** Writes a heap snapshot after forced GCs to `path` (bench/heap-breakdown.ts reads it). */
  snapshot: (path: string) => Promise<string>
  exit: () => null
}

/** Resolves `true` once every response drained (or closed), `false` after `timeoutMs`. */
function drainAll (waiting: readonly ServerResponse[], timeoutMs: number): Promise<boolean> {
  if (timeoutMs <= 0) return Promise.resolve(false)
  return new Promise((resolve) => {
    let left = waiting.length
    const cleanups: Array<() => void> = []
    const finish = (isDrained: boolean): void => {
      clearTimeout(timer)
      for (const cleanup of cleanups) cleanup()
      resolve(isDrained)
    }
    const timer = setTimeout(() => finish(false), timeoutMs)
    for (const response of waiting) {
      const done = (): void => {
        response.off('drain', done)
        response.off('close', done)
        if (--left === 0) finish(true)
      }
      response.on('drain', done)
      response.on('close', done)
      cleanups.push(() => {
        response.off('drain', done)
        response.off('close', done)
      })
    }
  })
}
