/**
 * Keyed state, the channel's side: a channel option `state` names, per event, the key
 * its data is stored under; the latest event of every key is the channel's state, kept
 * by the engine beside the history (bounded by `maxKeys`; engine/state.ts in memory),
 * sent as a snapshot to subscribers that ask (`subscribe(stream, { snapshot: true })`,
 * replay.ts) and coalesced per key for slow readers (`queuePolicy: 'coalesce'`). This
 * file holds the option's types and checks, and the key function's guard.
 */
import { findEvent, type EventCatalog, type EventData, type EventName, type Events, type SseMessage } from '../core/catalog.js'
import { JOIN_EVENT, REMOVE_EVENT } from '../core/control.js'
import { ChannelDroppedError, InvalidOptionError, InvalidStateKeyError } from '../core/errors.js'
import { controlFrame, describe } from '../core/frame.js'
import { positiveInteger } from '../core/validate.js'
import type { EngineChannel, EngineMessage, StateSnapshot } from '../engine/engine.js'
import type { ReadQueue } from '../engine/replay-reads.js'
import type { ChannelPresence } from './presence.js'

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

/** One entry of a channel's keyed state (`channel.state()`): the latest event of its key. */
export type StateEntry<C extends EventCatalog<any>> = SseMessage<Events<C>> & { key: string, id: string }

/**
 * Reads a channel's state for a snapshot, in turn with replays' reads (a bounded
 * number at once), with the `sse:join` frames of the members present when the channel
 * announces presence.
 *
 * @throws TYPED_SSE_CHANNEL_DROPPED when the channel was dropped while the read waited
 */
export async function readSnapshot (engine: EngineChannel, reads: ReadQueue, name: string, isDropped: () => boolean,
  presence: ChannelPresence | undefined): Promise<StateSnapshot & { readonly joins: readonly Buffer[] }> {
  const snapshot = await reads.run(() => {
    if (isDropped()) throw new ChannelDroppedError(name)
    return engine.snapshot === undefined ? { entries: [], position: undefined } : engine.snapshot()
  })
  const members = presence?.resolved.events === true ? await presence.list() : []
  return { ...snapshot, joins: members.map(({ id, info }) => controlFrame(JOIN_EVENT, { id, info })) }
}

/**
 * The entries of a snapshot as `channel.state()` gives them: decoded, with their keys
 * (entries the catalog cannot take are left out).
 */
export function stateEntries<C extends EventCatalog<any>> (state: ResolvedState, entries: readonly EngineMessage[],
  decode: (message: EngineMessage) => { readonly message: SseMessage<any> } | undefined): Array<StateEntry<C>> {
  const out: Array<StateEntry<C>> = []
  for (const message of entries) {
    const decoded = decode(message)
    const key = decoded === undefined ? undefined : stateKey(state, message.event, decoded.message.data)
    if (decoded !== undefined && key !== undefined) out.push({ ...decoded.message, key, id: message.id } as StateEntry<C>)
  }
  return out
}

/**
 * A channel's keyed state as the channel uses it: the key of each publish, removals,
 * and the entries `channel.state()` returns.
 *
 * @example
 * const keyed = new ChannelState('prices', resolved, engine, reads, () => false, decode)
 * keyed.keyOf('price', { symbol: 'ACME', value: 1 }) // 'ACME'
 */
export class ChannelState<C extends EventCatalog<any>> {
  readonly #name: string
  readonly #state: ResolvedState | undefined
  readonly #engine: () => EngineChannel
  readonly #reads: ReadQueue
  readonly #isDropped: () => boolean
  readonly #decode: (message: EngineMessage) => { readonly message: SseMessage<any> } | undefined

  constructor (name: string, state: ResolvedState | undefined, engine: () => EngineChannel, reads: ReadQueue, isDropped: () => boolean,
    decode: (message: EngineMessage) => { readonly message: SseMessage<any> } | undefined) {
    this.#name = name
    this.#state = state
    this.#engine = engine
    this.#reads = reads
    this.#isDropped = isDropped
    this.#decode = decode
  }

  /** The state key of a publish, `undefined` for an unkeyed event (or a channel without state). */
  keyOf (event: string, data: unknown): string | undefined {
    return this.#state === undefined ? undefined : stateKey(this.#state, event, data)
  }

  /** Publishes `sse:remove` for `key`, which deletes it. */
  remove (key: unknown): Promise<string> {
    this.#resolved()
    const checked = checkKey(REMOVE_EVENT, key)
    return this.#engine().publish({ event: REMOVE_EVENT, data: JSON.stringify({ key: checked }), key: checked, publishedAt: Date.now() }) as Promise<string>
  }

  /** The state now, decoded. */
  async entries (): Promise<Array<StateEntry<C>>> {
    const state = this.#resolved()
    const { entries } = await readSnapshot(this.#engine(), this.#reads, this.#name, this.#isDropped, undefined)
    return stateEntries<C>(state, entries, this.#decode)
  }

  #resolved (): ResolvedState {
    if (this.#state === undefined) throw new InvalidOptionError('state', `channel "${this.#name}" keeps no keyed state: declare it with \`state\``)
    return this.#state
  }
}
