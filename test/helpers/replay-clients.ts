/**
 * Run as a child process (`fork`) by replay tests, so that many clients reading
 * megabytes do not share the event loop (or the memory) of the server under test.
 * Opens COUNT streams at once on bare sockets to 127.0.0.1:PORT PATH with a
 * Last-Event-ID, parses each with the spec parser (events counted, not kept) and, once
 * every stream ended (the channel's `sse:end`), or received `expectEvents` when given,
 * or the time limit passed, reports over
 * IPC `{ type: 'done', elapsedMs, streams }`: per stream the events received, the
 * first and last `seq` (the text before ':' in the data), whether each seq followed
 * the one before, resyncs, and whether it ended. With `paused`, the sockets never read
 * (clients that stall): it reports `{ type: 'open' }` once every request was sent and
 * stays until killed.
 *
 * Usage: fork('replay-clients.ts', [JSON.stringify({ port, path, count, lastEventId, paused, timeLimitMs, expectEvents? })])
 */
import { openRawStream, type RawStream } from './client.js'

interface Options {
  port: number
  path: string
  count: number
  lastEventId: string
  paused: boolean
  timeLimitMs: number
  expectEvents?: number
}

/** What one stream saw. */
export interface StreamSummary {
  events: number
  firstSeq: number | undefined
  lastSeq: number | undefined
  isInOrder: boolean
  resyncs: number
  isEnded: boolean
}

/** What the child reports. */
export type ReplayClientsReport = { type: 'open' } | { type: 'done', elapsedMs: number, streams: StreamSummary[] }

const options = JSON.parse(process.argv[2]) as Options

function report (message: ReplayClientsReport): void {
  process.send?.(message)
}

const begin = Date.now()
const summaries: StreamSummary[] = []
const ends: Array<Promise<void>> = []
let markAllReceived: () => void = () => {}
const allReceived = new Promise<void>((resolve) => { markAllReceived = resolve })
let received = 0
const streams: RawStream[] = []
for (let i = 0; i < options.count; i++) {
  const stream = openRawStream(options.port, options.path, { headers: { 'last-event-id': options.lastEventId }, paused: options.paused })
  streams.push(stream)
  const summary: StreamSummary = { events: 0, firstSeq: undefined, lastSeq: undefined, isInOrder: true, resyncs: 0, isEnded: false }
  summaries.push(summary)
  const { parser } = stream
  parser.onEvent = (event) => {
    // Counted, then let go: a reader may receive tens of megabytes.
    parser.events.length = 0
    parser.fields.length = 0
    if (event.type === 'sse:resync') summary.resyncs++
    if (event.type === 'sse:end') summary.isEnded = true
    if (event.type !== 'blob') return
    summary.events++
    const seq = Number(event.data.slice(0, event.data.indexOf(':')))
    if (summary.lastSeq !== undefined && seq !== summary.lastSeq + 1) summary.isInOrder = false
    summary.firstSeq ??= seq
    summary.lastSeq = seq
    if (summary.events === options.expectEvents && ++received === options.count) markAllReceived()
  }
  ends.push(stream.ended)
}

if (options.paused) {
  report({ type: 'open' })
} else {
  const limit = new Promise<void>((resolve) => setTimeout(resolve, options.timeLimitMs).unref())
  await Promise.race([Promise.all(ends), allReceived, limit])
  report({ type: 'done', elapsedMs: Date.now() - begin, streams: summaries })
  for (const stream of streams) stream.close()
  process.disconnect?.()
}
