/**
 * Run as a child process (`fork`) by tests, so that the work of many clients does not
 * share the event loop (or the memory) of the server being measured. Opens COUNT
 * event streams to URL, each on a connection of its own, and reports over IPC:
 * `{ type: 'ready' }` once every stream got its first event, then
 * `{ type: 'ended', ended, clean }` once every response ended (`clean`: the final
 * chunk arrived) or the time limit passed. Asked `{ type: 'query' }`, it answers
 * `{ type: 'counts', counts, outOfOrder }`: events per stream, and how many streams
 * saw an event whose `seq` (in its JSON data) did not follow the one before.
 * Parsed events are counted, not kept, so bursts of thousands cost no memory.
 *
 * Usage: fork('stream-clients.ts', [url, count, timeLimitMs?])
 */
import http from 'node:http'
import { EventStreamParser } from './parser.js'

const [url, countText, limitText] = process.argv.slice(2)
const count = Number(countText)
const timeLimitMs = limitText === undefined ? 10_000 : Number(limitText)
const BATCH = 100
/** Events per stream, and whether each stream's seqs came in order. */
const counts: number[] = []
let outOfOrder = 0

let withEvent = 0
let ended = 0
let clean = 0
let reportedReady = false

function report (message: object): void {
  process.send?.(message)
}

function checkReady (): void {
  if (!reportedReady && withEvent === count) {
    reportedReady = true
    report({ type: 'ready' })
  }
}

function finish (): void {
  report({ type: 'ended', ended, clean })
  process.disconnect?.()
  process.exit(0)
}

function open (): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent: false, headers: { accept: 'text/event-stream' } })
    request.once('error', reject)
    request.once('response', (response) => {
      const parser = new EventStreamParser()
      const index = counts.push(0) - 1
      let hasEvent = false
      let nextSeq: number | undefined
      let isInOrder = true
      response.on('data', (chunk: Buffer) => {
        parser.push(chunk)
        for (const event of parser.events.splice(0)) {
          counts[index]++
          const seq = event.data.startsWith('{') ? (JSON.parse(event.data) as { seq?: unknown }).seq : undefined
          if (typeof seq !== 'number') continue
          if (isInOrder && nextSeq !== undefined && seq !== nextSeq) {
            isInOrder = false
            outOfOrder++
          }
          nextSeq = seq + 1
        }
        if (!hasEvent && counts[index] > 0) {
          hasEvent = true
          withEvent++
          checkReady()
        }
      })
      response.once('close', () => {
        ended++
        if (response.complete) clean++
        if (ended === count) finish()
      })
      response.on('error', () => {})
      resolve()
    })
  })
}

for (let opened = 0; opened < count; opened += BATCH) {
  await Promise.all(Array.from({ length: Math.min(BATCH, count - opened) }, open))
}
process.on('message', (message: { type?: string }) => {
  if (message.type === 'query') report({ type: 'counts', counts, outOfOrder })
})
// Bounded: report whatever ended after the time limit, then leave.
setTimeout(finish, timeLimitMs).unref()
// The IPC channel keeps this process alive until the parent is done with it.
process.on('disconnect', () => process.exit(0))
