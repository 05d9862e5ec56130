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
  /** Written only with `maxAgeMs` (Date.now() per append is otherwise wasted). */
  #times: number[]
  // A message's fields in parallel arrays, not the message object: one retained
  // object less per event, which every young-generation GC would copy (most of a
  // publish's cost with one reader per channel). Reads make the objects again.
  #ids: Array<string | undefined>
  /** Makes a message's id from its position, when the store's owner can: ids are then not kept. */
  readonly #idOf: ((position: number) => string) | undefined
  #events: Array<string | undefined>
  #data: Array<string | undefined>
  #head = 0
  #size = 0
  /** The greatest position ever evicted: replay after an earlier one would have a gap. */
  #evictedUpTo = 0

  /**
   * @param idOf the id of the message at a position, when ids follow from positions
   *   (the memory engine's): then no id string is kept per message
   */
  constructor (options: ResolvedHistory, idOf?: (position: number) => string) {
    this.#options = options
    this.#idOf = idOf
    const capacity = Math.min(INITIAL_CAPACITY, options.maxEvents)
    this.#positions = new Array<number>(capacity)
    this.#times = new Array<number>(capacity)
    this.#ids = new Array<string | undefined>(capacity)
    this.#events = new Array<string | undefined>(capacity)
    this.#data = new Array<string | undefined>(capacity)
  }

  /** Slots allocated now. */
  get capacity (): number {
    return this.#positions.length
  }

  /** Messages held now. */
  get size (): number {
    return this.#size
  }

  /** Stores the message's id, event and data (not the object, nor its payload). */
  append (position: number, message: EngineMessage): void {
    if (this.#size === this.#positions.length) {
      if (this.#size < this.#options.maxEvents) this.#grow()
      else this.#evictHead()
    }
    const capacity = this.#positions.length
    const slot = (this.#head + this.#size) % capacity
    this.#positions[slot] = position
    if (this.#options.maxAgeMs !== false) this.#times[slot] = Date.now()
    if (this.#idOf === undefined) this.#ids[slot] = message.id
    this.#events[slot] = message.event
    this.#data[slot] = message.data
    this.#size++
  }

  /**
   * Up to `maxEvents` messages after `position` (a page of new message objects).
   * `'evicted'` when one that followed it is gone already. (Positions this store never
   * gave are the engine's to reject: it knows its ids.)
   */
  readAfter (position: number, maxEvents = Infinity): ReplayPage {
    this.trim()
    if (position < this.#evictedUpTo) return { status: 'evicted' }
    const capacity = this.#positions.length
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
    const capacity = this.#positions.length
    const end = Math.min(this.#size, from + maxEvents)
    const messages: EngineMessage[] = []
    for (let i = from; i < end; i++) {
      const slot = (this.#head + i) % capacity
      messages.push({ id: this.#idOf === undefined ? this.#ids[slot] : this.#idOf(this.#positions[slot]), event: this.#events[slot] as string, data: this.#data[slot] as string })
    }
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
    const head = this.#head
    this.#evictedUpTo = this.#positions[head]
    this.#ids[head] = undefined
    this.#events[head] = undefined
    this.#data[head] = undefined
    this.#head = (head + 1) % this.#positions.length
    this.#size--
  }

  /** Doubles the slots (up to maxEvents), oldest first from slot 0. */
  #grow (): void {
    const capacity = Math.min(this.#positions.length * 2, this.#options.maxEvents)
    const order = (array: any[]): any[] => {
      const next = new Array(capacity)
      for (let i = 0; i < this.#size; i++) next[i] = array[(this.#head + i) % array.length]
      return next
    }
    this.#positions = order(this.#positions)
    this.#times = order(this.#times)
    this.#ids = order(this.#ids)
    this.#events = order(this.#events)
    this.#data = order(this.#data)
    this.#head = 0
  }
}
