/**
 * Endurance: thousands of connect/disconnect cycles over real sockets, in parallel
 * batches, with sends, channel publishes, filters, replays, deadlines and producers
 * in between, and every way of leaving (client close, TCP reset, server close,
 * producer end). Afterwards everything is back where it started: no open stream, no
 * subscriber, nothing queued, no timer or socket, no stream object left on the heap,
 * heap after GC near its start, and no MaxListenersExceededWarning.
 *
 * GC is reached without a node flag: `--expose-gc` set at run time applies to new
 * contexts, so a fresh vm context hands out a working `gc`.
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { LogController } from 'fastify'
import t from 'tap'
import { defineEvents, Type, type SseMessage, type SseStream } from '../../lib/index.js'
import { buildApp, sleep, waitUntil } from '../helpers/app.js'
import { openRawStream, type RawStream } from '../helpers/client.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const events = defineEvents({ n: Type.Integer(), h: Type.Integer(), p: Type.Integer() })
type Events = typeof events

const CYCLES = 3000
const BATCH = 150
const WARMUP_CYCLES = 300
/** Whole run, warm-up included; the test fails rather than run longer. */
const BUDGET_MS = 120_000

/** Settles pending callbacks, then collects (three passes: later ones free what earlier ones released). */
async function collect (): Promise<number> {
  for (let i = 0; i < 3; i++) {
    await sleep(20)
    gc()
  }
  return process.memoryUsage().heapUsed
}

/** Counts of the resources keeping the event loop alive, by type. */
function activeResources (): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1
  return counts
}

const MB = 1024 * 1024

/**
 * Records the timers created through the global `setTimeout` (the library's and the
 * test's, not Node's internal ones) until `restore()`; `pending` holds those neither
 * fired nor cleared.
 */
function trackTimers (): { readonly pending: Set<NodeJS.Timeout>, readonly created: number, restore (): void } {
  const { setTimeout: realSet, clearTimeout: realClear } = globalThis
  const pending = new Set<NodeJS.Timeout>()
  let created = 0
  globalThis.setTimeout = ((fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    created++
    const timer: NodeJS.Timeout = realSet((...given: unknown[]) => {
      pending.delete(timer)
      fn(...given)
    }, ms, ...args)
    pending.add(timer)
    return timer
  }) as typeof setTimeout
  globalThis.clearTimeout = ((timer?: NodeJS.Timeout | string | number) => {
    pending.delete(timer as NodeJS.Timeout)
    realClear(timer)
  }) as typeof clearTimeout
  return {
    pending,
    get created () { return created },
    restore () { Object.assign(globalThis, { setTimeout: realSet, clearTimeout: realClear }) }
  }
}

t.test(`churn: ${CYCLES} connect/disconnect cycles leave nothing behind`, async (t) => {
  const warnings: string[] = []
  const onWarning = (warning: Error): void => { warnings.push(warning.name) }
  process.on('warning', onWarning)
  t.teardown(() => { process.off('warning', onWarning) })

  const { app, logs, start } = await buildApp(t, {
    sse: { heartbeatMs: 40, retryMs: 1000 },
    // The log capture keeps every line: request logs would grow the heap by themselves.
    fastify: { logController: new LogController({ disableRequestLogging: true }) }
  })
  const plain = app.sse.channel('churn-plain', events)
  const history = app.sse.channel('churn-history', events, { history: { maxEvents: 200 } })
  /** Open streams by client index, so the test can close some from the server side. */
  const byIndex = new Map<number, SseStream<Events>>()
  let refs: Array<WeakRef<SseStream<Events>>> = []
  let producersEnded = 0

  async function attach (index: number, stream: SseStream<Events>): Promise<void> {
    byIndex.set(index, stream)
    stream.onClose(() => byIndex.delete(index))
    refs.push(new WeakRef(stream))
    // A third of the streams subscribe with a filter (only even values).
    await plain.subscribe(stream, index % 3 === 0 ? { filter: (message) => message.data % 2 === 0 } : {})
    await history.subscribe(stream)
    stream.send('n', index)
  }
  app.get<{ Querystring: { i: string } }>('/s', async (request, reply) => {
    const index = Number(request.query.i)
    // Some streams carry a deadline timer and an AbortSignal, to be freed on close.
    const stream = reply.sse(events, index % 4 === 0 ? { endsAt: Date.now() + 60_000 } : undefined)
    if (index % 2 === 0) stream.signal.addEventListener('abort', () => {}, { once: true })
    await attach(index, stream)
  })
  // A stream route whose producer waits for the client to leave.
  app.get<{ Querystring: { i: string } }>('/producer', { sse: events }, async function (request, reply) {
    const index = Number(request.query.i)
    const stream = reply.sse()
    await attach(index, stream)
    return (async function * (): AsyncGenerator<SseMessage<Events>> {
      try {
        yield { event: 'p', data: index }
        await new Promise((resolve) => stream.signal.addEventListener('abort', resolve, { once: true }))
      } finally {
        producersEnded++
      }
    })()
  })
  const origin = await start()
  const port = Number(new URL(origin).port)
  const started = Date.now()
  let lastHistoryId: string | undefined
  let producersStarted = 0

  /** One batch of `size` cycles, starting at client `first`. */
  async function batch (first: number, size: number, round: number): Promise<void> {
    const clients: RawStream[] = []
    for (let i = first; i < first + size; i++) {
      const path = i % 5 === 4 ? '/producer' : '/s'
      if (path === '/producer') producersStarted++
      // Every seventh client reconnects with the last history id, so replay runs too.
      const headers: Record<string, string> = i % 7 === 0 && lastHistoryId !== undefined ? { 'last-event-id': lastHistoryId } : {}
      clients.push(openRawStream(port, `${path}?i=${i}`, { headers }))
    }
    await Promise.all(clients.map((client) => client.waitForEvents(1, 5000)))
    await waitUntil(() => history.size === size, 5000, `batch ${round} subscribed`)
    await plain.publish('n', round)
    lastHistoryId = await history.publish('h', round)
    for (const stream of byIndex.values()) stream.send('n', -round)
    // Every client has everything once it has the history event of this round (one socket, in order).
    const hasRound = (client: RawStream): boolean => client.parser.events.some((event) => event.type === 'h' && event.data === String(round))
    await waitUntil(() => clients.every(hasRound), 5000, `every client got round ${round}`)
    // Every way of leaving: client close, TCP reset, server close (then a send: a no-op).
    clients.forEach((client, k) => {
      const index = first + k
      if (index % 3 === 0) client.close()
      else if (index % 3 === 1) client.socket.resetAndDestroy()
      else {
        const stream = byIndex.get(index) as SseStream<Events>
        stream.close()
        stream.send('n', 0)
      }
    })
    await waitUntil(() => app.sse.stats().openStreams === 0, 5000, `batch ${round} closed`)
    await Promise.all(clients.map((client) => client.ended))
  }

  let round = 0
  for (let first = 0; first < WARMUP_CYCLES; first += BATCH) await batch(first, Math.min(BATCH, WARMUP_CYCLES - first), round++)
  const heapBefore = await collect()
  const resourcesBefore = activeResources()
  // Every timer of ours is unref'd, so invisible to getActiveResourcesInfo(): track the
  // timers created during the churn that are neither fired nor cleared.
  const timers = trackTimers()
  t.teardown(() => { timers.restore() })
  refs = []
  let heapMidway = 0
  let collectMs = 0
  const churnStarted = Date.now()
  for (let first = WARMUP_CYCLES; first < WARMUP_CYCLES + CYCLES; first += BATCH) {
    if (Date.now() - started > BUDGET_MS) {
      t.fail(`churn passed its budget of ${BUDGET_MS} ms after ${first - WARMUP_CYCLES} cycles`)
      break
    }
    await batch(first, BATCH, round++)
    if (first + BATCH === WARMUP_CYCLES + CYCLES / 2) {
      const collectStarted = Date.now()
      heapMidway = await collect()
      collectMs = Date.now() - collectStarted
    }
  }
  const churnMs = Date.now() - churnStarted - collectMs
  await waitUntil(() => producersEnded === producersStarted, 2000, 'producers ended')
  await waitUntil(() => {
    const now = activeResources()
    return (now.Timeout ?? 0) <= (resourcesBefore.Timeout ?? 0) && (now.TCPSocketWrap ?? 0) <= (resourcesBefore.TCPSocketWrap ?? 0)
  }, 3000, 'timers and sockets back to baseline')
  timers.restore()
  const leftTimers = timers.pending.size
  await collect()
  const alive = refs.filter((ref) => ref.deref() !== undefined).length
  const tracked = refs.length
  refs = []
  const heapAfter = await collect()
  const resourcesAfter = activeResources()
  const stats = app.sse.stats()

  t.comment(`cycles ${CYCLES} (+${WARMUP_CYCLES} warm-up) in batches of ${BATCH}: ${churnMs} ms`)
  t.comment(`heap before ${(heapBefore / MB).toFixed(2)} MB, midway ${(heapMidway / MB).toFixed(2)} MB, after ${(heapAfter / MB).toFixed(2)} MB`)
  t.comment(`timers created during the churn: ${timers.created}, still pending after it: ${leftTimers}`)
  t.comment(`active resources before ${JSON.stringify(resourcesBefore)}, after ${JSON.stringify(resourcesAfter)}`)
  t.comment(`streams opened ${stats.opened}, events sent ${stats.eventsSent}, published ${stats.eventsPublished}, replays ${stats.replaysServed}`)

  t.equal(stats.opened, WARMUP_CYCLES + CYCLES, 'every cycle opened a stream')
  t.equal(stats.openStreams, 0, 'no open stream')
  t.equal(stats.queuedBytes, 0, 'nothing queued')
  t.same(Object.entries(stats.channels).map(([name, channel]) => [name, channel.subscribers]), [['churn-plain', 0], ['churn-history', 0]], 'no subscriber in any channel')
  t.ok(stats.replaysServed > 0, `replays ran (${stats.replaysServed})`)
  t.equal(producersEnded, producersStarted, `all ${producersStarted} producers ended`)
  t.equal(byIndex.size, 0)
  t.equal(alive, 0, `no stream object of the ${tracked} opened is left on the heap`)
  // Some growth is warm-up (compiled code, coverage counters, history ring filling);
  // a leak grows with the cycles, so the second half must add next to nothing.
  t.ok(heapAfter - heapBefore < 3 * MB, `heap after GC near its start (${((heapAfter - heapBefore) / MB).toFixed(2)} MB more)`)
  t.ok(heapAfter - heapMidway < 1 * MB, `the second ${CYCLES / 2} cycles added ${((heapAfter - heapMidway) / 1024).toFixed(0)} KB (a leak of 700 bytes a cycle would add 1 MB)`)
  t.equal(resourcesAfter.Timeout ?? 0, resourcesBefore.Timeout ?? 0, 'ref\'d timers back to the baseline')
  t.ok(timers.created > CYCLES, 'the tracker saw the timers (deadlines, close grace)')
  t.equal(leftTimers, 0, 'no timer created during the churn is left pending (unref\'d ones included)')
  t.equal(resourcesAfter.TCPSocketWrap ?? 0, resourcesBefore.TCPSocketWrap ?? 0, 'sockets back to the baseline')
  t.same(warnings.filter((name) => name === 'MaxListenersExceededWarning'), [], 'no MaxListenersExceededWarning')
  t.same(logs.filter((line) => line.level >= 40).map((line) => line.err?.code ?? line.msg), [], 'nothing logged at warn or above')
})
