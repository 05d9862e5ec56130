/**
 * Replay-then-live, by position: the one place that joins what a history read
 * returned with the live messages that arrived while it ran. Pure (no I/O, no
 * timers), used by channels for a subscriber's replay and by engines for their
 * catch-up after an outage.
 *
 * Why holding is enough: live messages are held from before the read starts, so
 * every message is in the read, in the held list, or in both. Both lists are in
 * position order, so dropping whatever is not strictly after the last position
 * already given yields every message once, in order. What cannot be joined (a
 * history that lost the range, a hold that overflowed) is reported as a gap, never
 * hidden: the caller resyncs.
 */

/** Orders two positions (ids) of one engine: negative, zero or positive. */
export type ComparePositions = (a: string, b: string) => number

/** What the merge needs of a message: its position, when it has one. */
export interface Positioned {
  readonly id: string | undefined
}

/**
 * True when `message` comes strictly after `cursor` (or there is nothing to compare).
 *
 * @example
 * isAfter({ id: '5-0' }, '4-0', compareStreamIds) // true
 */
export function isAfter (message: Positioned, cursor: string | undefined, compare: ComparePositions): boolean {
  return cursor === undefined || message.id === undefined || compare(message.id, cursor) > 0
}

/**
 * Live messages held while a history read runs, then joined with its result.
 *
 * @example
 * const merge = new ReplayMerge<EngineMessage>(compare)
 * deliverLive = (message) => merge.hold(message)       // from before the read starts
 * const replayed = await catchUpRead(lastEventId)          // every message after it
 * for (const message of merge.join(lastEventId, replayed)) write(message)
 */
export class ReplayMerge<M extends Positioned> {
  readonly #compare: ComparePositions
  readonly #sizeOf: (message: M) => number
  #held: M[] = []
  #heldSize = 0

  /**
   * @param compare orders the engine's positions
   * @param sizeOf the size a held message counts for (bytes, or 1 to count messages)
   */
  constructor (compare: ComparePositions, sizeOf: (message: M) => number = () => 1) {
    this.#compare = compare
    this.#sizeOf = sizeOf
  }

  /** Size of what is held now, by `sizeOf`: the caller bounds it. */
  get heldSize (): number {
    return this.#heldSize
  }

  /** Messages held now. */
  get heldCount (): number {
    return this.#held.length
  }

  /** Holds one live message until {@link join}. */
  hold (message: M): void {
    this.#held.push(message)
    this.#heldSize += this.#sizeOf(message)
  }

  /**
   * Drops the oldest held messages until at most `size` is held (a bounded hold
   * under a drop-oldest policy).
   *
   * @returns the dropped messages, oldest first (the read may still cover them)
   */
  dropOldest (size: number): M[] {
    let count = 0
    while (this.#heldSize > size && count < this.#held.length) this.#heldSize -= this.#sizeOf(this.#held[count++])
    return count === 0 ? [] : this.#held.splice(0, count)
  }

  /**
   * Joins the read with what was held: `replayed` (every retained message after
   * `after`, in order) first, then held messages strictly after the last position
   * given. Messages without a position (channels without history) are kept as they
   * come. The hold is emptied.
   *
   * @returns the messages to deliver, each once, in order
   */
  join (after: string | undefined, replayed: readonly M[]): M[] {
    const out: M[] = []
    let cursor = after
    for (const message of [...replayed, ...this.#held]) {
      if (!isAfter(message, cursor, this.#compare)) continue
      out.push(message)
      if (message.id !== undefined) cursor = message.id
    }
    this.#held = []
    this.#heldSize = 0
    return out
  }

  /**
   * Ends the hold without a read (the read failed, or there was nothing to read):
   * the held messages after `after`, in order.
   */
  release (after: string | undefined): M[] {
    return this.join(after, [])
  }
}
