/**
 * The state a client keeps from a channel with keyed state or presence: per event
 * name, the latest data of each key (built from the snapshot, live events and
 * `sse:remove`), and the members present (from `sse:join` and `sse:leave`). An
 * `sse:resync` empties both: the snapshot that follows it fills them again, so a view
 * built on them is whole after any reconnect. Closures, not a class: it ships in the
 * browser bundle, whose size a test bounds.
 */
import { JOIN_EVENT_NAME, LEAVE_EVENT_NAME, REMOVE_EVENT_NAME, RESYNC_EVENT_NAME } from './names.js'

/** How the client subscribes a handler to an event name, control events included. */
type Subscribe = (event: string, handler: (data: any) => void) => unknown

/** The live maps of one client, made on first use. */
export interface LiveState {
  /** The latest data of each key of `event`, keyed by `keyOf` (the same map on every call for that event). */
  map: (event: string, keyOf: (data: any) => unknown) => Map<string, unknown>
  /** The members present, by id, with their info. */
  presence: () => Map<string, unknown>
  /** Calls `listener` after every change of a map (an event, a removal, a join, a leave, a resync). */
  onChange: (listener: () => void) => () => void
}

/**
 * The live maps of a client that subscribes through `subscribe`.
 *
 * @example
 * const live = liveState(subscribe)
 * const prices = live.map('price', (d) => d.symbol) // a ReadonlyMap, kept up to date
 */
export function liveState (subscribe: Subscribe): LiveState {
  // Every map: the keyed ones by event name, presence under the join event's name.
  const maps = new Map<string, Map<string, unknown>>()
  const listeners = new Set<() => void>()
  const changed = (): void => { for (const listener of [...listeners]) listener() }
  const made = (name: string, listen: (map: Map<string, unknown>) => void): Map<string, unknown> => {
    let map = maps.get(name)
    if (map === undefined) {
      maps.set(name, map = new Map())
      listen(map)
    }
    return map
  }
  subscribe(RESYNC_EVENT_NAME, () => {
    for (const map of maps.values()) map.clear()
    changed()
  })
  subscribe(REMOVE_EVENT_NAME, (data) => {
    for (const [name, map] of maps) if (name !== JOIN_EVENT_NAME) map.delete(data.key)
    changed()
  })
  return {
    map: (event, keyOf) => made(event, (map) => {
      subscribe(event, (data) => { map.set(String(keyOf(data)), data); changed() })
    }),
    presence: () => made(JOIN_EVENT_NAME, (map) => {
      subscribe(JOIN_EVENT_NAME, (data) => { map.set(data.id, data.info); changed() })
      subscribe(LEAVE_EVENT_NAME, (data) => { map.delete(data.id); changed() })
    }),
    onChange (listener) {
      listeners.add(listener)
      return () => { listeners.delete(listener) }
    }
  }
}
