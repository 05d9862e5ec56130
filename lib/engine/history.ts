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

/** Where a slot keeps its fields: its strings (event, data, then the id when kept) and its numbers (position, then the time when kept). */
const EVENT = 0
const DATA = 1
const ID = 2
const POSITION = 0
const TIME = 1

/**
 * `text`, made one flat string in place. Serialized JSON is built by concatenation: a
 * tree of string pieces, about 340 B of heap for a 50-character token against 135 B
 * flat (bench/history-heap.ts). A frame's line-break check flattens it, but only when
 * the channel has a reader on this instance: a resumable stream whose reader is away
 * would keep the pieces, and every scavenge copy them. Reading a character makes V8
 * flatten the tree; the pieces then die young.
 */
function flattened (text: string): string {
  text.charCodeAt(0)
  return text
}

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
  readonly #maxEvents: number
  readonly #maxAgeMs: number | false
  // A message's fields side by side in two arrays (its strings; its numbers, which an
  // array of numbers keeps unboxed), not a message object per slot: no retained object
  // per event, which every young-generation GC would copy, and an append writes two
  // places instead of one array per field. Reads make the message objects again.
  #strings: Array<string | undefined>
  #numbers: number[]
  /** Strings per slot: event and data, and the id unless `idOf` makes it. */
  readonly #stringStride: number
  /** Numbers per slot: the position, and the time with `maxAgeMs`. */
  readonly #numberStride: number
  /** Makes a message's id from its position, when the store's owner can: ids are then not kept. */
  readonly #idOf: ((position: number) => string) | undefined
  /** Slots allocated now. */
  #capacity: number
  #head = 0
  #size = 0
  /** The greatest position ever evicted: replay after an earlier one would have a gap. */
  #evictedUpTo = 0

  /**
   * @param idOf the id of the message at a position, when ids follow from positions
   *   (the memory engine's): then no id string is kept per message
   */
  constructor (options: ResolvedHistory, idOf?: (position: number) => string) {
    this.#maxEvents = options.maxEvents
    this.#maxAgeMs = options.maxAgeMs
    this.#idOf = idOf
    this.#stringStride = idOf === undefined ? 3 : 2
    this.#numberStride = options.maxAgeMs === false ? 1 : 2
    this.#capacity = Math.min(INITIAL_CAPACITY, options.maxEvents)
    this.#strings = new Array<string | undefined>(this.#capacity * this.#stringStride)
    this.#numbers = new Array<number>(this.#capacity * this.#numberStride)
  }

  /** Slots allocated now. */
  get capacity (): number {
    return this.#capacity
  }

  /** Messages held now. */
  get size (): number {
    return this.#size
  }

  /** Stores the message's id, event and data (not the object, nor its payload). */
  append (position: number, message: EngineMessage): void {
    if (this.#size === this.#capacity) {
      if (this.#size < this.#maxEvents) this.#grow()
      else this.#evictHead()
    }
    const slot = (this.#head + this.#size) % this.#capacity
    const strings = this.#strings
    const at = slot * this.#stringStride
    strings[at + EVENT] = message.event
    strings[at + DATA] = flattened(message.data)
    if (this.#idOf === undefined) strings[at + ID] = message.id
    const numbers = this.#numbers
    const to = slot * this.#numberStride
    numbers[to + POSITION] = position
    if (this.#maxAgeMs !== false) numbers[to + TIME] = Date.now()
    this.#size++
  }

  /** The position of the `i`-th oldest retained message. */
  #positionOf (i: number): number {
    return this.#numbers[((this.#head + i) % this.#capacity) * this.#numberStride + POSITION]
  }

  /**
   * Up to `maxEvents` messages after `position` (a page of new message objects).
   * `'evicted'` when one that followed it is gone already. (Positions this store never
   * gave are the engine's to reject: it knows its ids.)
   */
  readAfter (position: number, maxEvents = Infinity): ReplayPage {
    this.trim()
    if (position < this.#evictedUpTo) return { status: 'evicted' }
    // Binary search for the first retained position greater than `position`.
    let low = 0
    let high = this.#size
    while (low < high) {
      const middle = (low + high) >>> 1
      if (this.#positionOf(middle) <= position) low = middle + 1
      else high = middle
    }
    return this.#page(low, maxEvents)
  }

  /** Up to `maxEvents` retained messages from the `from`-th oldest on. */
  #page (from: number, maxEvents: number): ReplayPage {
    const end = Math.min(this.#size, from + maxEvents)
    const strings = this.#strings
    const messages: EngineMessage[] = []
    for (let i = from; i < end; i++) {
      const slot = (this.#head + i) % this.#capacity
      const at = slot * this.#stringStride
      const id = this.#idOf === undefined ? strings[at + ID] : this.#idOf(this.#numbers[slot * this.#numberStride + POSITION])
      messages.push({ id, event: strings[at + EVENT] as string, data: strings[at + DATA] as string })
    }
    return { status: 'ok', messages, isLast: end === this.#size }
  }

  /** Up to `maxEvents` retained messages from the oldest on. */
  readAll (maxEvents = Infinity): ReplayPage {
    this.trim()
    return this.#page(0, maxEvents)
  }

  trim (): void {
    const maxAgeMs = this.#maxAgeMs
    if (maxAgeMs === false) return
    const oldest = Date.now() - maxAgeMs
    while (this.#size > 0 && this.#numbers[this.#head * this.#numberStride + TIME] < oldest) this.#evictHead()
  }

  #evictHead (): void {
    const head = this.#head
    this.#evictedUpTo = this.#numbers[head * this.#numberStride + POSITION]
    // Let go of the strings now: the slot may not be written again for a while.
    const strings = this.#strings
    const at = head * this.#stringStride
    strings[at + EVENT] = undefined
    strings[at + DATA] = undefined
    if (this.#idOf === undefined) strings[at + ID] = undefined
    this.#head = (head + 1) % this.#capacity
    this.#size--
  }

  /** Doubles the slots (up to maxEvents), oldest first from slot 0. */
  #grow (): void {
    const capacity = Math.min(this.#capacity * 2, this.#maxEvents)
    this.#strings = this.#ordered(this.#strings, this.#stringStride, capacity)
    this.#numbers = this.#ordered(this.#numbers, this.#numberStride, capacity)
    this.#capacity = capacity
    this.#head = 0
  }

  /** `fields` (`stride` per slot) in a new array of `capacity` slots, oldest first from slot 0. */
  #ordered<T> (fields: T[], stride: number, capacity: number): T[] {
    const next = new Array<T>(capacity * stride)
    for (let i = 0; i < this.#size; i++) {
      const from = ((this.#head + i) % this.#capacity) * stride
      for (let field = 0; field < stride; field++) next[i * stride + field] = fields[from + field]
    }
    return next
  }
}
