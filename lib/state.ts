/**
 * Keyed state: a channel option `state` names, per event, the key its data is stored
 * under; the latest event of every key is the channel's state, kept by the engine
 * beside the history (bounded by `maxKeys`), sent as a snapshot to subscribers that ask
 * (`subscribe(stream, { snapshot: true })`) and coalesced per key for slow readers
 * (`queuePolicy: 'coalesce'`). This file holds the option's types and checks, the key
 * function's guard, and the in-memory store the memory engine keeps.
 */
import type { EventCatalog, EventData, EventName } from './catalog.js'
import { findEvent } from './catalog.js'
import { REMOVE_EVENT } from './control.js'
import type { EngineMessage, StateSnapshot } from './engine.js'
import { InvalidOptionError, InvalidStateKeyError } from './errors.js'
import { describe } from './frame.js'
import { positiveInteger } from './options.js'
import type { Events } from './stream.js'

/** Keys a channel's state holds at most unless told otherwise. */
export const DEFAULT_MAX_KEYS = 10_000
/** A longer key is refused: keys travel in every `sse:remove` and are stored in Redis. */
export const MAX_STATE_KEY_LENGTH = 512

/**
 * Per event name, the function that gives the key an event's data is stored under
 * (a string, or a number taken as its decimal string).
 *
 * @example
 * const state: StateKeys<typeof prices> = { price: (d) => d.symbol }
 */
export type StateKeys<C extends EventCatalog<any>> = {
  readonly [K in EventName<Events<C>>]?: (data: EventData<Events<C>, K>) => string | number
}

/** The `state` and `maxKeys` options, checked. */
export interface ResolvedState {
  /** The key function of every keyed event. */
  readonly keys: ReadonlyMap<string, (data: unknown) => unknown>
  readonly maxKeys: number
}

/**
 * Checks a channel's `state` and `maxKeys` options.
 *
 * @throws TYPED_SSE_INVALID_OPTION for an event the catalog lacks, a key that is not a
 *   function, a channel without history (state entries carry ids), or `maxKeys` without `state`
 * @example
 * resolveState({ price: (d) => d.symbol }, undefined, prices, true) // { keys: Map { 'price' => fn }, maxKeys: 10000 }
 */
export function resolveState (given: unknown, maxKeys: unknown, catalog: EventCatalog<any>, hasHistory: boolean): ResolvedState | undefined {
  if (given === undefined) {
    if (maxKeys !== undefined) throw new InvalidOptionError('maxKeys', 'it bounds keyed state: give `state` too')
    return undefined
  }
  if (given === null || typeof given !== 'object') throw new InvalidOptionError('state', `expected { [event]: (data) => key }, got ${describe(given)}`)
  if (!hasHistory) throw new InvalidOptionError('state', 'keyed state needs `history` (a snapshot joins live events by their ids)')
  const keys = new Map<string, (data: unknown) => unknown>()
  for (const [event, keyOf] of Object.entries(given)) {
    if (findEvent(catalog, event) === undefined) throw new InvalidOptionError(`state.${event}`, `the catalog has no event "${event}"`)
    if (typeof keyOf !== 'function') throw new InvalidOptionError(`state.${event}`, `expected a function of the event's data, got ${describe(keyOf)}`)
    keys.set(event, keyOf as (data: unknown) => unknown)
  }
  if (keys.size === 0) throw new InvalidOptionError('state', 'name at least one event and its key function')
  return Object.freeze({ keys, maxKeys: positiveInteger('maxKeys', maxKeys, DEFAULT_MAX_KEYS) })
}

/**
 * The key of one event, or `undefined` for an event that is not keyed.
 *
 * @throws TYPED_SSE_INVALID_STATE_KEY (also when the key function throws)
 * @example
 * stateKey(resolved, 'price', { symbol: 'ACME', value: 1 }) // 'ACME'
 */
export function stateKey (state: ResolvedState, event: string, data: unknown): string | undefined {
  const keyOf = state.keys.get(event)
  if (keyOf === undefined) return undefined
  let key: unknown
  try {
    key = keyOf(data)
  } catch (err) {
    throw new InvalidStateKeyError(event, `the key function threw: ${err instanceof Error ? err.message : describe(err)}`)
  }
  return checkKey(event, typeof key === 'number' && Number.isFinite(key) ? String(key) : key)
}

/**
 * A key given to `channel.remove()`, or returned by a key function, as a string.
 *
 * @throws TYPED_SSE_INVALID_STATE_KEY
 */
export function checkKey (event: string, key: unknown): string {
  if (typeof key === 'number' && Number.isFinite(key)) return String(key)
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_STATE_KEY_LENGTH) throw new InvalidStateKeyError(event, `got ${describe(key)}`)
  return key
}

/**
 * The latest message of every key, in memory: what the memory engine keeps beside a
 * channel's ring history. Kept in id order (an update moves its key to the end), so a
 * snapshot needs no sort.
 *
 * @example
 * const state = new KeyedState(100)
 * state.apply('ACME', { id: 'b_1', event: 'price', data: '{"symbol":"ACME"}' }) // true
 * state.snapshot('b_1').entries.length // 1
 */
export class KeyedState {
  readonly #entries = new Map<string, EngineMessage>()
  readonly maxKeys: number

  constructor (maxKeys: number) {
    this.maxKeys = maxKeys
  }

  /** Keys held now. */
  get size (): number {
    return this.#entries.size
  }

  /** True when a message for `key` can be stored: the key is held already, or there is room. */
  accepts (key: string, event: string): boolean {
    return event === REMOVE_EVENT || this.#entries.has(key) || this.#entries.size < this.maxKeys
  }

  /** Stores a published message under its key, or deletes the key for `sse:remove`. */
  apply (key: string, message: EngineMessage): void {
    this.#entries.delete(key)
    if (message.event !== REMOVE_EVENT) this.#entries.set(key, message)
  }

  /** The state as it stands at `position` (the engine's last id). */
  snapshot (position: string | undefined): StateSnapshot {
    return { entries: [...this.#entries.values()], position }
  }
}
