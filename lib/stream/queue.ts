/**
 * A stream's backlog: the frames waiting for the socket's `drain`, bounded by the
 * stream's `maxQueueBytes` under its `queuePolicy`; the events its client lost (dropped
 * by that policy, or by a channel), reported by `sse:missed` once it reads again; and
 * the callers of `drained()`. A stream makes one the first time it needs one (most
 * streams never back up) and keeps it, empty while the socket takes writes. Its bytes
 * and losses are reported to the hub.
 */
import { MISSED_EVENT } from '../core/control.js'
import { controlFrame } from '../core/frame.js'
import type { StreamHub } from './hub.js'
import type { ResolvedStreamOptions } from './options.js'

/** What a replaced frame's slot holds until the queue is taken. */
const EMPTY = Buffer.alloc(0)

/**
 * The frames of one stream waiting for `drain`.
 *
 * @example
 * const queue = new FrameQueue(hub)
 * queue.backUp() // the socket refused a write
 * queue.push(frame, 1, options) // true: queued (or the oldest dropped to make room)
 * const frames = queue.take() // on drain: write them in one go
 */
export class FrameQueue {
  /** Frames waiting, oldest first; `undefined` while the socket takes writes. */
  #frames: Buffer[] | undefined
  #bytes = 0
  /** Events lost since the client last heard of it. */
  #missed = 0
  #waiters: Array<(drained: boolean) => void> | undefined
  /** Under `'coalesce'`: where the queued event of each key is in `#frames`. */
  #keyed: Map<string, number> | undefined
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
   * room (and a frame larger than the limit on its own is dropped too), counted as missed.
   *
   * Under `'coalesce'`, a frame with `coalesceKey` replaces the queued frame of that key
   * (the newer is queued last, so ids stay in order).
   *
   * @returns `false` when the policy is `'close'` (or `'coalesce'`) and the frame does not fit (nothing queued)
   */
  push (frame: Buffer, events: number, { maxQueueBytes, queuePolicy }: ResolvedStreamOptions, coalesceKey?: string): boolean {
    const frames = this.#frames as Buffer[]
    if (queuePolicy === 'coalesce' && coalesceKey !== undefined) this.#coalesce(frames, coalesceKey)
    if (this.#bytes + frame.length > maxQueueBytes) {
      if (queuePolicy !== 'drop-oldest') return false
      let dropped = 0
      let freed = 0
      while (dropped < frames.length && this.#bytes - freed + frame.length > maxQueueBytes) freed += frames[dropped++].length
      frames.splice(0, dropped)
      this.#unqueue(freed)
      const isTooLarge = frame.length > maxQueueBytes
      this.lost(dropped + (isTooLarge ? 1 : 0))
      if (isTooLarge) return true
    }
    if (coalesceKey !== undefined && this.#keyed !== undefined) this.#keyed.set(coalesceKey, frames.length)
    frames.push(frame)
    this.#bytes += frame.length
    this.#hub.queued(frame.length, events)
    return true
  }

  /** Counts events the client lost (dropped here, or by a channel while it replayed). */
  lost (count: number): void {
    this.#missed += count
    this.#hub.dropped(count)
  }

  /** Events lost since the last call: what `sse:missed` reports now. */
  takeMissed (): number {
    const missed = this.#missed
    this.#missed = 0
    return missed
  }

  /** The `sse:missed` frame of the events lost since the last report, or `undefined` when none were. */
  missedFrame (): Buffer | undefined {
    const missed = this.takeMissed()
    return missed > 0 ? controlFrame(MISSED_EVENT, { dropped: missed }) : undefined
  }

  /**
   * On `drain`: takes the backlog as one frame, `sse:missed` first when events were
   * lost, or `undefined` when there is nothing to write.
   */
  drain (): Buffer | undefined {
    const frames = this.take() as Buffer[]
    const missed = this.missedFrame()
    if (missed !== undefined) frames.unshift(missed)
    // One write for the whole backlog: one chunk on the wire instead of many (its events
    // were counted when queued).
    return frames.length === 0 ? undefined : frames.length === 1 ? frames[0] : Buffer.concat(frames)
  }

  /** Takes every frame waiting (on `drain`, or to flush them on close); the socket takes writes again. */
  take (): Buffer[] | undefined {
    let frames = this.#frames
    this.#frames = undefined
    // Replaced frames left empty slots behind.
    if (this.#keyed !== undefined && frames !== undefined) frames = frames.filter((frame) => frame.length > 0)
    this.#keyed = undefined
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

  /** Empties the slot of the frame queued for `key`, if any: the frame coming replaces it. */
  #coalesce (frames: Buffer[], key: string): void {
    const keyed = this.#keyed ??= new Map()
    const index = keyed.get(key)
    if (index === undefined) return
    const replaced = frames[index]
    frames[index] = EMPTY
    this.#unqueue(replaced.length)
    this.#hub.coalesced(1)
  }

  #unqueue (bytes: number): void {
    this.#bytes -= bytes
    this.#hub.unqueued(bytes)
  }
}
