/**
 * Replay history: the store interface and the in-memory ring buffer behind it.
 */
import type { EngineMessage, HistoryOptions, ReplayPage, ResolvedHistory } from './engine.js'
import { InvalidOptionError } from '../core/errors.js'
import { describe } from '../core/frame.js'
import { optionNames, positiveInteger, positiveIntegerOrFalse, refuseUnknownOptions } from '../core/validate.js'

/** Messages a channel's history keeps unless told otherwise. */
export const DEFAULT_HISTORY_MAX_EVENTS = 1000

/**
 * A replay store: append in id order, read pages after an id, trim what is too old.
 * Its methods may be synchronous (memory) or asynchronous (Redis).
 */
export interface HistoryStore<Position> {
  /** Stores a message published at `position` (ordered: later appends have greater positions). */
  append (position: Position, message: EngineMessage): void | Promise<void>
  /** Up to `maxEvents` retained messages after `position`, or why that is impossible. */
  readAfter (position: Position, maxEvents?: number): ReplayPage | Promise<ReplayPage>
  /** Evicts messages past the age limit. */
  trim (): void | Promise<void>
}

/** The keys of {@link HistoryOptions}. */
const HISTORY_OPTION_NAMES = optionNames<HistoryOptions>({ maxEvents: true, maxAgeMs: true })

/**
 * Applies defaults to a channel's `history` option; `undefined` or `false` means no history.
 *
 * @throws TYPED_SSE_INVALID_OPTION
 * @example
 * resolveHistory(true) // { maxEvents: 1000, maxAgeMs: false }
 */
export function resolveHistory (given: boolean | HistoryOptions | undefined): ResolvedHistory | undefined {
  if (given === undefined || given === false) return undefined
  if (given !== true && (given === null || typeof given !== 'object')) {
    throw new InvalidOptionError('history', `expected a boolean or { maxEvents, maxAgeMs }, got ${describe(given)}`)
  }
  const options = given === true ? {} : given
  refuseUnknownOptions('history', options, HISTORY_OPTION_NAMES, 'history.')
  return Object.freeze({
    maxEvents: positiveInteger('history.maxEvents', options.maxEvents, DEFAULT_HISTORY_MAX_EVENTS),
    maxAgeMs: positiveIntegerOrFalse('history.maxAgeMs', options.maxAgeMs, false)
  })
}

/** Slots a ring starts with; it doubles as messages come, up to `maxEvents`. */
const INITIAL_CAPACITY = 4

/**
 * A ring of messages keyed by increasing integer positions, bounded by count and age.
 * Its memory grows with what it holds (doubling up to `maxEvents`), so thousands of
 * channels with a few events each cost little. Reads are a binary search; appends and
 * evictions are O(1) amortized.
 *
 * @example
 * const ring = new RingHistory({ maxEvents: 2, maxAgeMs: false })
 * ring.append(1, a); ring.append(2, b); ring.append(3, c)
 * ring.readAfter(1) // { status: 'ok', messages: [b, c], isLast: true }
 * ring.readAfter(1, 1) // { status: 'ok', messages: [b], isLast: false }
 * ring.readAfter(0) // { status: 'evicted' }: message 1 is gone
 */
export class RingHistory implements HistoryStore<number> {
  readonly #options: ResolvedHistory
  #positions: number[]
  #times: number[]
  #messages: Array<EngineMessage | undefined>
  #head = 0
  #size = 0
  /** The greatest position ever evicted: replay after an earlier one would have a gap. */
  #evictedUpTo = 0

  constructor (options: ResolvedHistory) {
    this.#options = options
    const capacity = Math.min(INITIAL_CAPACITY, options.maxEvents)
    this.#positions = new Array<number>(capacity)
    this.#times = new Array<number>(capacity)
    this.#messages = new Array<EngineMessage | undefined>(capacity)
  }

  /** Slots allocated now. */
  get capacity (): number {
    return this.#messages.length
  }

  /** Messages held now. */
  get size (): number {
    return this.#size
  }

  append (position: number, message: EngineMessage): void {
    if (this.#size === this.#messages.length) {
      if (this.#size < this.#options.maxEvents) this.#grow()
      else this.#evictHead()
    }
    const capacity = this.#messages.length
    const slot = (this.#head + this.#size) % capacity
    this.#positions[slot] = position
    this.#times[slot] = Date.now()
    this.#messages[slot] = message
    this.#size++
  }

  /**
   * Up to `maxEvents` messages after `position` (a page: the messages are shared, not
   * copied). `'evicted'` when one that followed it is gone already. (Positions this
   * store never gave are the engine's to reject: it knows its ids.)
   */
  readAfter (position: number, maxEvents = Infinity): ReplayPage {
    this.trim()
    if (position < this.#evictedUpTo) return { status: 'evicted' }
    const capacity = this.#messages.length
    // Binary search for the first retained position greater than `position`.
    let low = 0
    let high = this.#size
    while (low < high) {
      const middle = (low + high) >>> 1
      if (this.#positions[(this.#head + middle) % capacity] <= position) low = middle + 1
      else high = middle
    }
    return this.#page(low, maxEvents)
  }

  /** Up to `maxEvents` retained messages from the `from`-th oldest on. */
  #page (from: number, maxEvents: number): ReplayPage {
    const capacity = this.#messages.length
    const end = Math.min(this.#size, from + maxEvents)
    const messages: EngineMessage[] = []
    for (let i = from; i < end; i++) messages.push(this.#messages[(this.#head + i) % capacity] as EngineMessage)
    return { status: 'ok', messages, isLast: end === this.#size }
  }

  /** Up to `maxEvents` retained messages from the oldest on. */
  readAll (maxEvents = Infinity): ReplayPage {
    this.trim()
    return this.#page(0, maxEvents)
  }

  trim (): void {
    const { maxAgeMs } = this.#options
    if (maxAgeMs === false) return
    const oldest = Date.now() - maxAgeMs
    while (this.#size > 0 && this.#times[this.#head] < oldest) this.#evictHead()
  }

  #evictHead (): void {
    this.#evictedUpTo = this.#positions[this.#head]
    this.#messages[this.#head] = undefined
    this.#head = (this.#head + 1) % this.#messages.length
    this.#size--
  }

  /** Doubles the slots (up to maxEvents), oldest first from slot 0. */
  #grow (): void {
    const capacity = Math.min(this.#messages.length * 2, this.#options.maxEvents)
    const order = (array: any[]): any[] => {
      const next = new Array(capacity)
      for (let i = 0; i < this.#size; i++) next[i] = array[(this.#head + i) % array.length]
      return next
    }
    this.#positions = order(this.#positions)
    this.#times = order(this.#times)
    this.#messages = order(this.#messages)
    this.#head = 0
  }
}
