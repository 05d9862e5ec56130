/**
 * A stream's backlog: the frames waiting for the socket's `drain`, bounded by the
 * stream's `maxQueueBytes` under its `queuePolicy`, and the callers of `drained()`
 * waiting for it to empty. A stream makes one the first time the socket refuses a
 * write (most streams never back up) and keeps it, empty while the socket takes writes.
 * Its bytes are reported to the hub.
 */
import type { StreamHub } from './hub.js'
import type { ResolvedStreamOptions } from './options.js'

/** What `push()` returns when the policy is `'close'` and the frame does not fit. */
export const QUEUE_FULL = -1

/**
 * The frames of one stream waiting for `drain`.
 *
 * @example
 * const queue = new FrameQueue(hub)
 * queue.backUp() // the socket refused a write
 * queue.push(frame, 1, options) // 0: queued, none dropped
 * const frames = queue.take() // on drain: write them in one go
 */
export class FrameQueue {
  /** Frames waiting, oldest first; `undefined` while the socket takes writes. */
  #frames: Buffer[] | undefined
  #bytes = 0
  #waiters: Array<(drained: boolean) => void> | undefined
  readonly #hub: StreamHub

  constructor (hub: StreamHub) {
    this.#hub = hub
  }

  /** True from a refused write until `drain`: writes queue meanwhile. */
  get isBackedUp (): boolean {
    return this.#frames !== undefined
  }

  /** Bytes waiting. */
  get bytes (): number {
    return this.#bytes
  }

  /** The socket refused a write: frames queue from now until `take()`. */
  backUp (): void {
    this.#frames = []
  }

  /**
   * Queues a frame within `maxQueueBytes`. Under `'drop-oldest'` the oldest frames make
   * room, and a frame larger than the limit on its own is dropped too.
   *
   * @returns how many frames were dropped, or `QUEUE_FULL` when the policy is `'close'`
   *   and the frame does not fit (nothing queued)
   */
  push (frame: Buffer, events: number, { maxQueueBytes, queuePolicy }: ResolvedStreamOptions): number {
    const frames = this.#frames as Buffer[]
    let dropped = 0
    if (this.#bytes + frame.length > maxQueueBytes) {
      if (queuePolicy === 'close') return QUEUE_FULL
      let freed = 0
      while (dropped < frames.length && this.#bytes - freed + frame.length > maxQueueBytes) freed += frames[dropped++].length
      frames.splice(0, dropped)
      this.#unqueue(freed)
      if (frame.length > maxQueueBytes) return dropped + 1
    }
    frames.push(frame)
    this.#bytes += frame.length
    this.#hub.queued(frame.length, events)
    return dropped
  }

  /** Takes every frame waiting (on `drain`, or to flush them on close); the socket takes writes again. */
  take (): Buffer[] | undefined {
    const frames = this.#frames
    this.#frames = undefined
    this.#unqueue(this.#bytes)
    return frames
  }

  /** Resolves `true` when the queue drains, `false` when the stream closes first. */
  wait (): Promise<boolean> {
    return new Promise((resolve) => { (this.#waiters ??= []).push(resolve) })
  }

  /** Answers everyone waiting: drained, or closed. */
  settle (isDrained: boolean): void {
    const waiters = this.#waiters
    this.#waiters = undefined
    if (waiters !== undefined) for (const resolve of waiters) resolve(isDrained)
  }

  #unqueue (bytes: number): void {
    this.#bytes -= bytes
    this.#hub.unqueued(bytes)
  }
}
