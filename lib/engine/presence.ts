/**
 * Presence in memory: the memory engine's (the option and the channel's side are
 * channel/presence.ts; Redis's is engine/redis/presence.ts).
 */
import type { EnginePresence, PresenceRecord } from './engine.js'

/**
 * Presence in memory: the memory engine's, shared by the instances of one process.
 *
 * @example
 * const presence = new MemoryPresence()
 * await presence.join('alice', '{}') // true: her first connection
 */
export class MemoryPresence implements EnginePresence {
  readonly #members = new Map<string, { info: string, connections: number }>()

  async join (member: string, info: string): Promise<boolean> {
    const held = this.#members.get(member)
    if (held !== undefined) {
      held.info = info
      held.connections++
      return false
    }
    this.#members.set(member, { info, connections: 1 })
    return true
  }

  async leave (member: string): Promise<boolean> {
    const held = this.#members.get(member)
    if (held === undefined) return false
    if (--held.connections > 0) return false
    this.#members.delete(member)
    return true
  }

  async list (): Promise<readonly PresenceRecord[]> {
    return [...this.#members].map(([id, { info, connections }]) => ({ id, info, connections }))
  }
}
