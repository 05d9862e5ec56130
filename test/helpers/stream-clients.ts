/**
 * Run as a child process (`fork`) by test/shutdown.test.ts, so that the work of many
 * clients does not share the event loop of the server being measured. Opens COUNT
 * event streams to URL, each on a connection of its own, and reports over IPC:
 * `{ type: 'ready' }` once every stream got its first event, then
 * `{ type: 'ended', ended, clean }` once every response ended (`clean`: the final
 * chunk arrived) or 10 s passed.
 *
 * Usage: fork('stream-clients.ts', [url, count])
 */
import http from 'node:http'
import { EventStreamParser } from './parser.js'

const [url, countText] = process.argv.slice(2)
const count = Number(countText)
const BATCH = 100

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
      let hasEvent = false
      response.on('data', (chunk: Buffer) => {
        parser.push(chunk)
        if (!hasEvent && parser.events.length > 0) {
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
// Bounded: report whatever ended after 10 s, then leave.
setTimeout(finish, 10_000).unref()
// The IPC channel keeps this process alive until the parent is done with it.
process.on('disconnect', () => process.exit(0))
