/**
 * The load generator: a child process of the runner holding many raw `node:net`
 * connections to one contender. Each sends a plain HTTP/1.1 GET and parses the
 * response incrementally (see parser.ts); no HTTP client library sits in between, so
 * the client side stays cheap and the same for every contender.
 *
 * Per phase it checks that every connection got every event, in order (`seq`), and
 * optionally records publish-to-receive latency from the `t` in each event.
 */
import { connect, type Socket } from 'node:net'
import { announce, serve } from '../ipc.js'
import { clockMs } from '../payload.js'
import { ResponseParser } from './parser.js'

/** Parameters of `connect`. */
export interface ConnectParams {
  port: number
  /** Source address to bind (127.0.0.2, ...): each has its own 28k ephemeral ports. */
  localAddress?: string
  count: number
  /** Connections being opened at once at most. */
  batchSize: number
  /** Attempts per connection before it counts as failed. */
  attempts: number
  /** Deadline for one attempt (TCP connect and response head). */
  attemptTimeoutMs: number
  /** Deadline for all of them; batches not started by then are skipped. */
  timeoutMs: number
}

/** Result of `connect`. */
export interface ConnectResult {
  open: number
  failed: number
  ms: number
  firstError: string | undefined
}

/** Parameters of `expect`: the next phase's events, as every connection should see them. */
export interface ExpectParams {
  events: number
  /** The `seq` of the phase's first event. */
  seqStart: number
  /** Record publish-to-receive latency of every delivery. */
  latency: boolean
  /** The phase fails unless complete within this. */
  timeoutMs: number
}

/** Latency percentiles of one phase, in ms. */
export interface LatencySummary {
  samples: number
  p50: number
  p90: number
  p99: number
  max: number
}

/** What one phase delivered. */
export interface PhaseResult {
  /** Every connection got every event, in order, once. */
  isComplete: boolean
  connections: number
  eventsPerConnection: number
  delivered: number
  minReceived: number
  maxReceived: number
  /** Events out of order, duplicated, unreadable, or connections lost during the phase. */
  errors: number
  firstError: string | undefined
  /** Clock time (ms, see clockMs) when the last connection got its last event. */
  lastAt: number
  latency: LatencySummary | undefined
  clientCpuMs: number
}

const clientApi = {
  connect: connectAll,
  expect,
  wait,
  status: () => ({ open: countOpen(), errors: strayEvents }),
  close: () => {
    for (const connection of connections) connection.socket.destroy()
    connections.length = 0
    return null
  },
  exit: () => { setImmediate(() => process.exit(0)); return null }
}

/** The client's API, as the runner calls it. */
export type ClientApi = typeof clientApi

class Connection {
  readonly socket: Socket
  readonly parser: ResponseParser
  received = 0
  nextSeq = 0
  isClosed = false

  constructor (socket: Socket) {
    this.socket = socket
    this.parser = new ResponseParser((seq, t) => onEvent(this, seq, t))
  }
}

interface Phase {
  readonly params: ExpectParams
  readonly latency: Float64Array | undefined
  readonly cpuAtStart: NodeJS.CpuUsage
  samples: number
  pending: number
  errors: number
  firstError: string | undefined
  result: PhaseResult | undefined
  onDone: (() => void) | undefined
  timer: NodeJS.Timeout | undefined
}

/** Latency samples kept per phase at most (1000 clients x 300 events fit). */
const MAX_LATENCY_SAMPLES = 4_000_000

const connections: Connection[] = []
let phase: Phase | undefined
/** Events that arrived outside any phase: a contender sending what nobody published. */
let strayEvents = 0
/** The clock at the current socket read, for latency (read once per chunk, not per event). */
let now = 0

function onEvent (connection: Connection, seq: number, t: number): void {
  const current = phase
  if (current === undefined) {
    strayEvents++
    return
  }
  if (seq !== connection.nextSeq) {
    current.errors++
    current.firstError ??= `expected seq ${connection.nextSeq}, got ${seq}`
  }
  connection.nextSeq = seq + 1
  const received = ++connection.received
  if (current.latency !== undefined && current.samples < current.latency.length) {
    current.latency[current.samples++] = now - t
  }
  if (received === current.params.events) {
    if (--current.pending === 0) finish(current)
  } else if (received > current.params.events) {
    current.errors++
    current.firstError ??= `more than ${current.params.events} events`
  }
}

function onClose (connection: Connection): void {
  if (connection.isClosed) return
  connection.isClosed = true
  const current = phase
  if (current === undefined || current.result !== undefined || connection.received >= current.params.events) return
  current.errors++
  current.firstError ??= `connection closed after ${connection.received} events${connection.parser.error === undefined ? '' : ` (${connection.parser.error})`}`
  if (--current.pending === 0) finish(current)
}

function openOne (port: number, localAddress: string | undefined, timeoutMs: number): Promise<Connection> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress })
    const connection = new Connection(socket)
    const fail = (reason: string): void => {
      clearTimeout(timer)
      socket.destroy()
      reject(new Error(reason))
    }
    const timer = setTimeout(() => fail(`no response head within ${timeoutMs} ms`), timeoutMs)
    socket.setNoDelay(true)
    socket.once('connect', () => {
      socket.write(`GET /sse HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n`)
    })
    socket.on('data', (chunk: Buffer) => {
      if (phase?.latency !== undefined) now = clockMs()
      connection.parser.feed(chunk)
      // A broken head or framing ends the connection; onClose reports it.
      if (connection.parser.error !== undefined) fail(connection.parser.error)
    })
    socket.on('error', (err) => fail(err.message))
    socket.on('close', () => {
      fail('closed before the response head')
      onClose(connection)
    })
    connection.parser.onOpen = () => {
      clearTimeout(timer)
      resolve(connection)
    }
  })
}

async function openWithAttempts (params: ConnectParams): Promise<Connection> {
  let lastError: unknown
  for (let attempt = 1; attempt <= params.attempts; attempt++) {
    try {
      return await openOne(params.port, params.localAddress, params.attemptTimeoutMs)
    } catch (err) {
      lastError = err
      await new Promise((resolve) => setTimeout(resolve, 50 * attempt))
    }
  }
  throw lastError
}

async function connectAll (params: ConnectParams): Promise<ConnectResult> {
  const started = Date.now()
  let failed = 0
  let firstError: string | undefined
  let next = 0
  // `batchSize` workers, each opening one connection after another: at most that
  // many handshakes in flight, so the server's accept backlog never overflows.
  const worker = async (): Promise<void> => {
    while (next < params.count) {
      next++
      if (Date.now() - started > params.timeoutMs) {
        failed++
        firstError ??= `connect deadline of ${params.timeoutMs} ms passed`
        continue
      }
      try {
        connections.push(await openWithAttempts(params))
      } catch (err) {
        failed++
        firstError ??= err instanceof Error ? err.message : String(err)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(params.batchSize, params.count) }, worker))
  return { open: countOpen(), failed, ms: Date.now() - started, firstError }
}

function countOpen (): number {
  let open = 0
  for (const connection of connections) if (!connection.isClosed) open++
  return open
}

function expect (params: ExpectParams): null {
  if (phase !== undefined && phase.result === undefined) throw new Error('a phase is still running')
  const current: Phase = {
    params,
    latency: params.latency ? new Float64Array(Math.min(MAX_LATENCY_SAMPLES, params.events * connections.length)) : undefined,
    cpuAtStart: process.cpuUsage(),
    samples: 0,
    pending: 0,
    errors: 0,
    firstError: undefined,
    result: undefined,
    onDone: undefined,
    timer: undefined
  }
  for (const connection of connections) {
    connection.received = 0
    connection.nextSeq = params.seqStart
    connection.parser.readsTime = params.latency
    if (connection.isClosed) {
      current.errors++
      current.firstError ??= 'a connection was closed before the phase'
    } else {
      current.pending++
    }
  }
  phase = current
  current.timer = setTimeout(() => finish(current), params.timeoutMs)
  if (current.pending === 0) finish(current)
  return null
}

function finish (current: Phase): void {
  if (current.result !== undefined) return
  clearTimeout(current.timer)
  const lastAt = clockMs()
  let delivered = 0
  let minReceived = Infinity
  let maxReceived = 0
  for (const connection of connections) {
    delivered += connection.received
    minReceived = Math.min(minReceived, connection.received)
    maxReceived = Math.max(maxReceived, connection.received)
  }
  const cpu = process.cpuUsage(current.cpuAtStart)
  const isComplete = current.pending === 0 && current.errors === 0 && minReceived === current.params.events
  current.result = {
    isComplete,
    connections: connections.length,
    eventsPerConnection: current.params.events,
    delivered,
    minReceived: connections.length === 0 ? 0 : minReceived,
    maxReceived,
    errors: current.errors,
    firstError: current.firstError ?? (current.pending > 0 ? `${current.pending} connections incomplete after ${current.params.timeoutMs} ms` : undefined),
    lastAt,
    latency: current.latency === undefined ? undefined : summarize(current.latency.subarray(0, current.samples)),
    clientCpuMs: (cpu.user + cpu.system) / 1000
  }
  current.onDone?.()
}

function summarize (samples: Float64Array): LatencySummary {
  samples.sort()
  const at = (q: number): number => samples.length === 0 ? NaN : samples[Math.min(samples.length - 1, Math.floor(q * samples.length))]
  return { samples: samples.length, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: at(1) }
}

/** Resolves with the current phase's result once complete or timed out (expect's deadline bounds it). */
function wait (): Promise<PhaseResult> {
  const current = phase
  if (current === undefined) return Promise.reject(new Error('wait without expect'))
  if (current.result !== undefined) return Promise.resolve(current.result)
  return new Promise((resolve) => {
    current.onDone = () => resolve(current.result as PhaseResult)
  })
}

serve(clientApi)
announce({ announce: 'ready' })
