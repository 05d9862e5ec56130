/**
 * One subscriber's replay: what it missed, read from history a page at a time and
 * written at the client's pace, while the live messages published meanwhile are held
 * (bounded by the stream's `maxQueueBytes` and its policy) and joined by position
 * once the last page is written (core/merge.ts): no gap, no duplicate, or an explicit
 * `sse:resync`. A subscriber that asked for snapshots gets the channel's state instead
 * (no Last-Event-ID, or after the resync), joined with the held messages by the
 * position it was read at, the same way.
 */
import { END_EVENT, RESYNC_EVENT, type Resync } from '../core/control.js'
import { QueueFullError } from '../core/errors.js'
import { controlFrame } from '../core/frame.js'
import { isAfter, ReplayMerge, type ComparePositions } from '../core/merge.js'
import { kEnd, kMissed, kOptions, kWrite } from '../core/symbols.js'
import type { EngineMessage, ReplayPage, StateSnapshot } from '../engine/engine.js'
import { holdTick } from '../engine/replay-reads.js'
import type { SseStream } from '../stream/stream.js'
import type { Decoded, HeldReplay, Subscriber } from './fanout.js'

/** What a replay needs of its channel: one object per channel, shared by its replays. */
export interface ReplayContext {
  readonly name: string
  readonly compare: ComparePositions
  readonly log: (err: unknown, message: string) => void
  /** One page of history after `cursor` (replay-reads.ts); reads begun after `heldSince` cover what the hold missed. */
  readonly read: (cursor: string | undefined, heldSince: number) => Promise<ReplayPage>
  /** True while `subscriber` is the channel's record of its stream. */
  readonly isCurrent: (subscriber: Subscriber) => boolean
  /** A replay was served (`true`) or its id missed (`false`). */
  readonly counted: (isServed: boolean) => void
  readonly decode: (message: EngineMessage) => Decoded | undefined
  readonly writeTo: (subscriber: Subscriber, decoded: Decoded) => boolean
  /** Writes `sse:resync`; with `callHook`, calls `onResync` too. */
  readonly resync: (stream: SseStream<any>, info: Resync, callHook: boolean) => void
  readonly callOnResync: (stream: SseStream<any>, info: Resync) => void
  readonly detach: (stream: SseStream<any>) => void
  /** The channel's state and the `sse:join` frames of its members (for a subscriber with `snapshot: true`). */
  readonly snapshot: () => Promise<StateSnapshot & { readonly joins: readonly Buffer[] }>
  /** A live subscriber missed messages (a gap): resync it (and send the state again to one with snapshots). */
  readonly gapped: (subscriber: Subscriber, info: Resync) => void
}

/** What a held message counts for against the stream's queue limit (its frame, about). */
function heldBytes (message: EngineMessage): number {
  return message.data.length + message.event.length + 64
}

/**
 * The replay of one subscriber: `start()` reads and writes, `hold()` takes the live
 * messages meanwhile, and the subscriber goes live (its `replay` cleared) once the held
 * ones are released; a failed read stops it and closes the stream.
 *
 * @example
 * subscriber.replay = new Replay(subscriber, context)
 * await subscriber.replay.start(lastEventId)
 */
export class Replay implements HeldReplay {
  /** Live messages held while the replay runs (and is written). */
  readonly merge: ReplayMerge<EngineMessage>
  /** The hold clock's tick when the hold began: reads that started later cover what it missed. */
  readonly heldSince: number
  /** Held messages the drop-oldest policy dropped during the replay, and the newest of them. */
  droppedCount = 0
  droppedNewest: EngineMessage | undefined
  /** The engine reported a gap while this subscriber was replaying: resync once it is live. */
  isGapped = false
  readonly #subscriber: Subscriber
  readonly #context: ReplayContext

  constructor (subscriber: Subscriber, context: ReplayContext) {
    this.#subscriber = subscriber
    this.#context = context
    this.merge = new ReplayMerge(context.compare, heldBytes)
    this.heldSince = holdTick()
  }

  /** Holds a live message, within the stream's queue limit and policy. */
  hold (message: EngineMessage): void {
    const subscriber = this.#subscriber
    const merge = this.merge
    merge.hold(message)
    const { maxQueueBytes, queuePolicy } = subscriber.stream[kOptions]
    if (merge.heldSize <= maxQueueBytes) return
    // Held messages are not coalesced: under 'coalesce' a hold past the limit closes, as under 'close'.
    if (queuePolicy !== 'drop-oldest') {
      this.#context.detach(subscriber.stream)
      subscriber.stream.request.log.warn({ err: new QueueFullError(merge.heldSize, maxQueueBytes) }, 'event stream closed: live events held during its replay passed maxQueueBytes')
      subscriber.stream[kEnd]('policy')
    } else {
      const dropped = merge.dropOldest(maxQueueBytes)
      this.droppedCount += dropped.length
      this.droppedNewest = dropped.at(-1) ?? this.droppedNewest
    }
  }

  /**
   * Replays what the subscriber missed, then makes it live. Read a page at a time
   * (replay-reads.ts) and written at the client's pace: the next page is read once this
   * one is written (a replay may pass `maxQueueBytes`). Live messages stay held
   * meanwhile, bounded by the same limit and policy, and are joined by position once
   * the last page is written.
   */
  async start (lastEventId: string | undefined): Promise<void> {
    const subscriber = this.#subscriber
    const context = this.#context
    const { stream } = subscriber
    const isCurrent = (): boolean => stream.isOpen && context.isCurrent(subscriber)
    let cursor = lastEventId
    let resync: Resync | undefined
    for (let isFirst = true; ; isFirst = false) {
      if (isFirst && cursor === undefined && subscriber.isSnapshot) {
        const at = await this.#snapshot()
        if (at === false) return
        cursor = at
        break
      }
      let page: ReplayPage
      try {
        page = await context.read(cursor, this.heldSince)
      } catch (err) {
        if (!isCurrent()) return
        this.#stop()
        context.log(err, `replay of channel "${context.name}" failed; the stream was closed so its client retries`)
        stream.close()
        return
      }
      if (!isCurrent()) return
      if (page.status !== 'ok') {
        // Evicted after a page was written (a replay slower than the history): what was
        // written stands, and the client is told where the gap begins.
        context.counted(false)
        resync = { channel: context.name, lastEventId: cursor ?? '', reason: page.status }
        stream[kWrite](controlFrame(RESYNC_EVENT, resync))
        if (isFirst) cursor = undefined
        if (subscriber.isSnapshot) {
          // The state follows the resync: the client's view is whole again.
          const at = await this.#snapshot()
          if (at === false) return
          cursor = at
        }
        break
      }
      if (isFirst) context.counted(true)
      if (!(await this.#writeAll(page.messages, cursor))) return
      cursor = page.messages.findLast((message) => message.id !== undefined)?.id ?? cursor
      if (page.isLast || page.messages.length === 0) break
    }
    // Held messages the policy dropped are lost only where the read did not cover them.
    const newestDropped = this.droppedNewest
    const lost = newestDropped !== undefined && isAfter(newestDropped, cursor, context.compare) ? this.droppedCount : 0
    // A gap the engine reported meanwhile concerns the live messages: said before them.
    const gap: Resync | undefined = this.isGapped ? { channel: context.name, lastEventId: cursor ?? '', reason: 'gap' } : undefined
    this.isGapped = false
    if (gap !== undefined) {
      context.resync(stream, gap, false)
      if (subscriber.isSnapshot) {
        const at = await this.#snapshot()
        if (at === false) return
        cursor = at
      }
    }
    // What was held meanwhile, in batches: more may be held while a batch is written.
    const merge = this.merge
    for (let batch = merge.release(cursor); batch.length > 0; batch = merge.release(cursor)) {
      if (!(await this.#writeAll(batch, cursor))) return
      cursor = batch.findLast((message) => message.id !== undefined)?.id ?? cursor
    }
    // Nothing held and nothing awaited since: from here on, live messages go straight out.
    this.#stop()
    subscriber.cursor = cursor
    if (lost > 0) stream[kMissed](lost, false)
    // The snapshot an onResync sends comes after everything held, never before.
    if (resync !== undefined) context.callOnResync(stream, resync)
    if (gap !== undefined) context.callOnResync(stream, gap)
    if (this.isGapped) {
      // Another gap while the held messages were written.
      this.isGapped = false
      context.gapped(subscriber, { channel: context.name, lastEventId: cursor ?? '', reason: 'gap' })
    }
    stream[kMissed](0, true)
  }

  /**
   * Writes the channel's state (then who is there) while live messages stay held.
   *
   * @returns the position the state was read at (where the held messages join), or
   *   false when the subscriber is gone (a failed read closes its stream)
   */
  async #snapshot (): Promise<string | undefined | false> {
    const { stream } = this.#subscriber
    let snapshot: StateSnapshot & { readonly joins: readonly Buffer[] }
    try {
      snapshot = await this.#context.snapshot()
    } catch (err) {
      if (!stream.isOpen || !this.#context.isCurrent(this.#subscriber)) return false
      this.#stop()
      this.#context.log(err, `reading the state of channel "${this.#context.name}" failed; the stream was closed so its client retries`)
      stream.close()
      return false
    }
    if (!(await this.#writeAll(snapshot.entries, undefined))) return false
    // Joins and leaves held from before this list are written after it: applied in order, they leave the list right.
    for (const join of snapshot.joins) stream[kWrite](join)
    return snapshot.position
  }

  /** The subscriber is live again: live messages go straight out, not held here. */
  #stop (): void {
    this.#subscriber.replay = undefined
  }

  /**
   * Writes messages in order, waiting for the client to drain when a write is queued.
   *
   * @returns false when the subscriber is gone (closed, ended, detached)
   */
  async #writeAll (messages: readonly EngineMessage[], after: string | undefined): Promise<boolean> {
    const subscriber = this.#subscriber
    const context = this.#context
    const { stream } = subscriber
    let cursor = after
    for (const message of messages) {
      if (!stream.isOpen || !context.isCurrent(subscriber)) return false
      if (!isAfter(message, cursor, context.compare)) continue
      if (message.id !== undefined) cursor = message.id
      if (message.event === END_EVENT) {
        stream.end()
        return false
      }
      const decoded = context.decode(message)
      if (decoded === undefined || context.writeTo(subscriber, decoded)) continue
      if (!(await stream.drained())) return false
    }
    return stream.isOpen && context.isCurrent(subscriber)
  }
}
