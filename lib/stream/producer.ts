/**
 * `stream.from(source)`: an (async) iterable of messages sent with backpressure. The
 * iterator is stopped (`return()`) as soon as the stream closes, so a producer's
 * `finally` blocks run when the client leaves. Never rejects and never throws into
 * the event loop: a failing producer (or a throwing `return()`) ends the stream with
 * a logged, coded error.
 */
import type { SseMessage } from '../core/catalog.js'

/** What a producer needs of a stream. */
export interface ProducerTarget<M> {
  readonly isOpen: boolean
  send (message: M): boolean
  drained (): Promise<boolean>
  onClose (fn: () => void): () => void
  /** Ends the stream for good (`sse:end`). */
  end (): void
  /** Ends the stream after a producer error (logged with TYPED_SSE_PRODUCER_FAILED). */
  fail (err: unknown): void
}

function ignore (): void {}

/**
 * Calls `iterator.return()` once, whatever it does: it may throw, return a rejected
 * promise, or be missing.
 */
function stopper (iterator: AsyncIterator<unknown> | Iterator<unknown>): () => void {
  let isStopped = false
  return () => {
    if (isStopped) return
    isStopped = true
    try {
      Promise.resolve(iterator.return?.()).catch(ignore)
    } catch {
      // A return() that throws at once has nothing left to stop.
    }
  }
}

/**
 * Sends every message of `source` to `target`, waiting for `drained()` when a write
 * was queued; then ends the stream unless `end` is false.
 *
 * @example
 * await pipe(stream, tokens(), true)
 */
export async function pipe<M extends SseMessage<any>> (
  target: ProducerTarget<M>,
  source: AsyncIterable<M> | Iterable<M>,
  end: boolean
): Promise<void> {
  let iterator: AsyncIterator<M> | Iterator<M>
  try {
    iterator = Symbol.asyncIterator in source
      ? source[Symbol.asyncIterator]()
      : (source as Iterable<M>)[Symbol.iterator]()
  } catch (err) {
    target.fail(err)
    return
  }
  const stop = stopper(iterator)
  const removeStop = target.onClose(stop)
  try {
    while (target.isOpen) {
      const step = await iterator.next()
      if (step.done === true) {
        if (end) target.end()
        return
      }
      if (!target.send(step.value) && !(await target.drained())) break
    }
    // Closed under us (client gone, shutdown): stop the producer.
    stop()
  } catch (err) {
    stop()
    target.fail(err)
  } finally {
    removeStop()
  }
}
