/**
 * Reads a stream's body into the parser, with two duties besides: it drops a
 * connection that has gone silent (liveness), and it hands the event loop back to the
 * page between batches, so a flood of tiny events cannot freeze it. A body already
 * buffered resolves every `read()` as a microtask, and one 64 KB chunk can hold
 * thousands of events: without a break, the page would not paint or handle input
 * until all of them were dispatched.
 */

/** Bytes handed to the parser at once: a slice of 4 KB holds at most ~600 events. */
const SLICE_BYTES = 4096

/** After this many events the reader lets the event loop run (a macrotask) before going on. */
const EVENTS_PER_TURN = 256

/**
 * How {@link readBody} reports and stops.
 *
 * @example
 * const options: BodyReadOptions = { silenceMs: 45_000, onSilence: () => attempt.abort(), isStopped: () => closed }
 */
export interface BodyReadOptions {
  /** Drop the connection when nothing at all arrives for this long; `false`: never. */
  readonly silenceMs: number | false
  /** Called once when the silence passed `silenceMs`: abort the request. */
  readonly onSilence: () => void
  /** `true` once the client no longer wants the body (closed, paused, ended). */
  readonly isStopped: () => boolean
}

/** The longest delay `setTimeout` takes; a longer one would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * Reads `body` to its end, or until `isStopped()`, giving each slice to `push`, which
 * returns the number of events it dispatched. Throws what the body or `push` throw.
 *
 * @example
 * await readBody(response.body, (bytes) => parse(bytes), { silenceMs: 45_000, onSilence: abort, isStopped: () => closed })
 */
export async function readBody (body: ReadableStream<Uint8Array>, push: (bytes: Uint8Array) => number, options: BodyReadOptions): Promise<void> {
  const reader = body.getReader()
  let lastActivity = Date.now()
  let timer: ReturnType<typeof setTimeout> | undefined
  const silenceMs = options.silenceMs
  // One timer per silence period, not one per chunk: it re-arms for the time left.
  const watch = (delayMs: number): void => {
    timer = setTimeout(() => {
      const quietMs = Date.now() - lastActivity
      if (quietMs >= (silenceMs as number)) options.onSilence()
      else watch((silenceMs as number) - quietMs)
    }, Math.min(delayMs, MAX_TIMER_MS))
  }
  if (silenceMs !== false) watch(silenceMs)
  let eventsThisTurn = 0
  try {
    // Stopped is checked before each read, not only after: a read after the client
    // stopped (an sse:end in the last chunk) may never settle, and would hold the
    // process through the silence timer.
    while (!options.isStopped()) {
      const chunk = await reader.read()
      if (chunk.done || options.isStopped()) break
      lastActivity = Date.now()
      for (let start = 0; start < chunk.value.length && !options.isStopped(); start += SLICE_BYTES) {
        eventsThisTurn += push(chunk.value.subarray(start, start + SLICE_BYTES))
        if (eventsThisTurn >= EVENTS_PER_TURN) {
          eventsThisTurn = 0
          await nextTurn()
          lastActivity = Date.now()
        }
      }
    }
  } finally {
    clearTimeout(timer)
    // Frees the body for the abort or cancel that follows; a body already errored has nothing to free.
    try {
      reader.releaseLock()
    } catch {}
  }
}

/** Resolves in a later turn of the event loop: `setImmediate` in Node, a message in browsers (timers are clamped to 4 ms there). */
function nextTurn (): Promise<void> {
  const immediate = (globalThis as { setImmediate?: (callback: () => void) => unknown }).setImmediate
  if (immediate !== undefined) return new Promise((resolve) => { immediate(resolve) })
  return new Promise((resolve) => {
    const channel = new MessageChannel()
    channel.port1.onmessage = () => {
      channel.port1.close()
      resolve()
    }
    channel.port2.postMessage(null)
  })
}
