/**
 * The state a client keeps from a channel with keyed state or presence: per event
 * name, the latest data of each key (built from the snapshot, live events and
 * `sse:remove`), and the members present (from `sse:join` and `sse:leave`). An
 * `sse:resync` empties both: the snapshot that follows it fills them again, so a view
 * built on them is whole after any reconnect.
 */
import { JOIN_EVENT_NAME, LEAVE_EVENT_NAME, REMOVE_EVENT_NAME, RESYNC_EVENT_NAME } from './names.js'

/** How the client subscribes a handler to an event name, control events included. */
type Subscribe = (event: string, handler: (data: any) => void) => () => void

interface KeyedMap {
  readonly keyOf: (data: unknown) => unknown
  readonly map: Map<string, unknown>
}

/**
 * The live maps of one client, made on first use.
 *
 * @example
 * const live = new LiveState(subscribe)
 * const prices = live.map('price', (d) => d.symbol) // a ReadonlyMap, kept up to date
 */
export class LiveState {
  readonly #subscribe: Subscribe
  readonly #maps = new Map<string, KeyedMap>()
  readonly #listeners = new Set<() => void>()
  #presence: Map<string, unknown> | undefined

  constructor (subscribe: Subscribe) {
    this.#subscribe = subscribe
    subscribe(RESYNC_EVENT_NAME, () => {
      for (const { map } of this.#maps.values()) map.clear()
      this.#presence?.clear()
      this.#changed()
    })
    subscribe(REMOVE_EVENT_NAME, (data: { key?: unknown }) => {
      if (typeof data?.key !== 'string') return
      for (const { map } of this.#maps.values()) map.delete(data.key)
      this.#changed()
    })
  }

  /** The latest data of each key of `event`, keyed by `keyOf` (the same map on every call for that event). */
  map (event: string, keyOf: (data: any) => unknown): Map<string, unknown> {
    const existing = this.#maps.get(event)
    if (existing !== undefined) return existing.map
    const keyed: KeyedMap = { keyOf, map: new Map() }
    this.#maps.set(event, keyed)
    this.#subscribe(event, (data: unknown) => {
      keyed.map.set(String(keyed.keyOf(data)), data)
      this.#changed()
    })
    return keyed.map
  }

  /** The members present, by id, with their info. */
  presence (): Map<string, unknown> {
    if (this.#presence !== undefined) return this.#presence
    const members = this.#presence = new Map()
    this.#subscribe(JOIN_EVENT_NAME, (data: { id?: unknown, info?: unknown }) => {
      if (typeof data?.id !== 'string') return
      members.set(data.id, data.info)
      this.#changed()
    })
    this.#subscribe(LEAVE_EVENT_NAME, (data: { id?: unknown }) => {
      if (typeof data?.id !== 'string') return
      members.delete(data.id)
      this.#changed()
    })
    return members
  }

  /** Calls `listener` after every change of a map (an event, a removal, a join, a leave, a resync). */
  onChange (listener: () => void): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  #changed (): void {
    for (const listener of [...this.#listeners]) listener()
  }
}
