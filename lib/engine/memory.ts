/**
 * The default engine: fan-out and history inside one process. Several Fastify
 * instances in one process may share one engine, and then share its channels.
 */
import { randomBytes } from 'node:crypto'
import { withWireSafeIds, type ChannelFeatures, type ChannelListener, type EngineChannel, type EngineMessage, type PageLimit, type ReplayPage, type ResolvedHistory, type SseEngine } from './engine.js'
import { ChannelConflictError, TooManyKeysError } from '../core/errors.js'
import { RingHistory } from './history.js'
import { MemoryPresence } from './presence.js'
import { KeyedState } from './state.js'

interface SharedChannel {
  readonly history: RingHistory | undefined
  /** The history bounds the channel was declared with. */
  readonly bounds: ResolvedHistory | undefined
  /**
   * The last position an earlier channel of this name (dropped since) may have published at:
   * a replay from before it could miss what that channel published, since this one does not
   * have its history. 0 when the name is new: every id then replays this channel's history.
   */
  readonly earlierUpTo: number
  /**
   * The channel's listener of every instance that opened it (once per open). Replaced, never
   * changed, when one opens or closes: a delivery runs over the list it started with.
   * Called as they are: no closure per open between the engine and the channel.
   */
  listeners: readonly ChannelListener[]
  /** The latest message per key (channels with `state`), and the members (with `presence`). */
  readonly state: KeyedState | undefined
  readonly presence: MemoryPresence | undefined
}

/**
 * Ids are `<boot>_<position>`: the boot part is new in every process, so an id kept
 * by a client across a restart is recognised as unknown (and the client resynced)
 * instead of being matched against a new, unrelated history. Positions come from
 * one counter for all channels, so one Last-Event-ID orders events of every channel.
 */
const ID_PATTERN = /^([0-9a-z]+)_([1-9][0-9]{0,15})$/

/**
 * Dropped names whose last position is remembered one by one (rooms named from input come
 * and go); beyond it the oldest are folded into one position, which errs towards a resync.
 */
const REMEMBERED_DROPS = 10_000

/** What a publish without history resolves with: one settled promise for all of them. */
const NO_ID: Promise<undefined> = Promise.resolve(undefined)

/** `T` with its fields writable. */
type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/** The position part of an id this engine gave (both ids of one comparison come from one boot). */
function positionOf (id: string): number {
  return Number(id.slice(id.indexOf('_') + 1))
}

/**
 * Creates an in-memory engine (the plugin's default).
 *
 * @example
 * const engine = memoryEngine()
 * await a.register(sse, { engine }); await b.register(sse, { engine }) // a and b share channels
 */
export function memoryEngine (): SseEngine {
  const boot = (Date.now().toString(36) + randomBytes(3).toString('hex'))
  const channels = new Map<string, SharedChannel>()
  let position = 0
  const idPrefix = `${boot}_`
  /** The id of the message at `at`: rings make it again on a read instead of keeping one string per message. */
  const idOf = (at: number): string => idPrefix + at
  /** Per dropped history channel not made again: the position when it was dropped. */
  const dropped = new Map<string, number>()
  /** The greatest drop position forgotten from `dropped`. */
  let forgottenUpTo = 0

  function remember (name: string): void {
    dropped.delete(name)
    dropped.set(name, position)
    if (dropped.size > REMEMBERED_DROPS) {
      const [oldest, at] = dropped.entries().next().value as [string, number]
      dropped.delete(oldest)
      forgottenUpTo = Math.max(forgottenUpTo, at)
    }
  }

  function earlierUpTo (name: string): number {
    const at = dropped.get(name)
    if (at === undefined) return forgottenUpTo
    dropped.delete(name)
    return at
  }

  function readPage (shared: SharedChannel, lastEventId: string | undefined, { maxEvents }: PageLimit): ReplayPage {
    if (lastEventId === undefined) return shared.history?.readAll(maxEvents) ?? { status: 'ok', messages: [], isLast: true }
    const match = ID_PATTERN.exec(lastEventId)
    const after = match === null || match[1] !== boot ? NaN : Number(match[2])
    if (!(after <= position) || after < shared.earlierUpTo || shared.history === undefined) return { status: 'unknown' }
    return shared.history.readAfter(after, maxEvents)
  }

  return withWireSafeIds({
    channel (name: string, history: ResolvedHistory | undefined, listener: ChannelListener, features: ChannelFeatures = {}): EngineChannel {
      let shared = channels.get(name)
      if (shared === undefined) {
        shared = { history: history === undefined ? undefined : new RingHistory(history, idOf), bounds: history, earlierUpTo: history === undefined ? 0 : earlierUpTo(name), listeners: [],
          state: features.maxKeys === undefined ? undefined : new KeyedState(features.maxKeys),
          presence: features.presence === true ? new MemoryPresence() : undefined
        }
        channels.set(name, shared)
      } else if (shared.bounds?.maxEvents !== history?.maxEvents || shared.bounds?.maxAgeMs !== history?.maxAgeMs ||
        shared.state?.maxKeys !== features.maxKeys || (shared.presence !== undefined) !== (features.presence === true)) {
        // Instances sharing this engine must declare a channel alike, or one would lose history.
        throw new ChannelConflictError(name)
      }
      const current = shared
      current.listeners = [...current.listeners, listener]
      let isClosed = false
      return {
        publish (message) {
          const { key } = message
          if (key !== undefined && current.state !== undefined && !current.state.accepts(key, message.event)) {
            return Promise.reject(new TooManyKeysError(name, current.state.maxKeys, JSON.stringify(key)))
          }
          const history = current.history
          // The publisher's own object is delivered, its id set here: no copy per publish
          // (publishers hand the engine a fresh object; the channel's has an `id` field already).
          const delivered = message as Mutable<EngineMessage>
          if (history === undefined) {
            delivered.id = undefined
          } else {
            delivered.id = idOf(++position)
            // The ring keeps the fields it needs, not this object (nor the payload).
            history.append(position, delivered)
          }
          const { id } = delivered
          if (key !== undefined && id !== undefined) current.state?.apply(key, { id, event: message.event, data: message.data })
          const { listeners } = current
          for (let i = 0; i < listeners.length; i++) listeners[i].deliver(delivered)
          return id === undefined ? NO_ID : Promise.resolve(id)
        },
        readPage: (lastEventId, limit) => readPage(current, lastEventId, limit),
        snapshot: current.state === undefined ? undefined : () => (current.state as KeyedState).snapshot(position === 0 ? undefined : idOf(position)),
        presence: current.presence,
        close () {
          if (!isClosed) {
            isClosed = true
            const at = current.listeners.indexOf(listener)
            current.listeners = current.listeners.filter((_, i) => i !== at)
          }
          if (current.listeners.length === 0) {
            channels.delete(name)
            if (current.history !== undefined) remember(name)
          }
        }
      }
    },
    compareIds: (a, b) => positionOf(a) - positionOf(b),
    // Channels let go one by one (their close()); an engine shared by several
    // instances must outlive the first of them to close.
    async close () {}
  })
}
