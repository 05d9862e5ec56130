/**
 * Keyed state in memory: what the memory engine keeps beside a channel's ring history
 * (channels with `state`; the option and its checks are the channel's, channel/state.ts).
 */
import { REMOVE_EVENT } from '../core/control.js'
import type { EngineMessage, StateSnapshot } from './engine.js'

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
