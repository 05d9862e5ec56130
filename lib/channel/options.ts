/**
 * A channel's options and a subscription's: their types, and the lists of their keys
 * (any other key is refused). Checked once, by the registry (channel options) and by
 * `subscribe()`.
 */
import type { TSchema } from '@sinclair/typebox'
import type { EventCatalog, Events, SseMessage } from '../core/catalog.js'
import type { Resync } from '../core/control.js'
import { InvalidOptionError } from '../core/errors.js'
import { describe } from '../core/frame.js'
import { optionNames, refuseUnknownOptions } from '../core/validate.js'
import type { HistoryOptions, ResolvedHistory } from '../engine/engine.js'
import type { SseStream } from '../stream/stream.js'
import { memberOf, type PresenceJoin, type PresenceOptions, type ResolvedPresence } from './presence.js'
import type { ResolvedState, StateKeys } from './state.js'

/** Options of `app.sse.channel()`. */
export interface ChannelOptions<C extends EventCatalog<any> = EventCatalog, S extends TSchema = TSchema> {
  /**
   * Keep published events for replay: `true` for the defaults, or bounds. Channels
   * with history give every event an id (ordered, opaque, unique across restarts).
   * @default false
   */
  history?: boolean | HistoryOptions
  /**
   * Called when a subscriber's Last-Event-ID cannot be replayed (unknown or evicted),
   * or when live delivery lost messages (`gap`), after the `sse:resync` control event
   * was sent to it: send it a full snapshot here.
   */
  onResync?: (stream: SseStream<C>, info: Resync) => void
  /**
   * Drop the channel (and its history on this instance's engine) once it has had no
   * subscriber and no publish for this long: for channels named from request input
   * (`room:${id}`), which would otherwise live until restart. `false` keeps it.
   * @default false
   */
  idleMs?: number | false
  /**
   * Keyed state (needs `history`): per event name, the key its data is stored under.
   * The latest event of every key is the channel's state (`state()`), sent first to
   * subscribers that ask (`snapshot: true`), coalesced for slow readers
   * (`queuePolicy: 'coalesce'`); `remove(key)` deletes a key (`sse:remove`).
   * @example { price: (d) => d.symbol }
   */
  state?: StateKeys<C>
  /**
   * Keys the state holds at most; a publish for one more is refused (TYPED_SSE_TOO_MANY_KEYS).
   * @default 10000
   */
  maxKeys?: number
  /** Who is subscribed, on every instance: `subscribe(stream, { presence: { id, info } })`, `presence()`. */
  presence?: PresenceOptions<S>
}

/** The keys of {@link ChannelOptions}: any other is refused (`{ histroy: true }` is never ignored). */
export const CHANNEL_OPTION_NAMES = optionNames<ChannelOptions>({ history: true, onResync: true, idleMs: true, state: true, maxKeys: true, presence: true })
/** The keys of {@link SubscribeOptions}. */
export const SUBSCRIBE_OPTION_NAMES = optionNames<SubscribeOptions<EventCatalog>>({ filter: true, lastEventId: true, replayAll: true, snapshot: true, presence: true })

/** Options of `channel.subscribe()`. */
export interface SubscribeOptions<C extends EventCatalog<any>, S extends TSchema = TSchema> {
  /**
   * Deliver only the messages for which this returns true (e.g. one user's). Runs on
   * the decoded message; the shared Buffer is written unchanged. A filter that throws
   * ends its own stream (reason `'error'`), never the publish.
   */
  filter?: (message: SseMessage<Events<C>>) => boolean
  /**
   * Replay after this id instead of the stream's `Last-Event-ID` (e.g. an id the
   * client passed in the query string; longer than `maxLastEventIdBytes`, it is
   * ignored like the header). `null` skips replay.
   */
  lastEventId?: string | null
  /**
   * With history, a stream that has no Last-Event-ID first receives every retained
   * event (e.g. a scoreboard's current state), then live ones.
   * @default false
   */
  replayAll?: boolean
  /**
   * On a channel with history and `state` (or `presence: { events: true }`): a stream
   * without Last-Event-ID first gets the state (one event per key, with its id) and the
   * members present (one `sse:join` each), then live events; one whose id cannot be
   * replayed gets `sse:resync` followed by the same. No gap and no duplicate between the two.
   * @default false
   */
  snapshot?: boolean
  /** On a channel with `presence`: who this stream is. It leaves when the stream closes. */
  presence?: PresenceJoin<S>
}

/** A channel's options, checked and resolved once, by the registry. */
export interface ChannelSettings<C extends EventCatalog<any>> {
  readonly history: ResolvedHistory | undefined
  readonly idleMs: number | false
  readonly onResync: ChannelOptions<C>['onResync']
  readonly state: ResolvedState | undefined
  readonly presence: ResolvedPresence | undefined
}


/** A subscription's options, checked: what `subscribe()` acts on. */
export interface CheckedSubscription {
  readonly filter: ((message: SseMessage<any>) => boolean) | undefined
  readonly isSnapshot: boolean
  /** The member id and its info as JSON text, with `presence`. */
  readonly member: { readonly id: string, readonly info: string } | undefined
}

/**
 * Checks the options of `subscribe()` on channel `name`.
 *
 * @param canSnapshot the channel has history and state (or presence events) to snapshot
 * @throws TYPED_SSE_INVALID_OPTION, TYPED_SSE_INVALID_PAYLOAD (presence info not matching its schema)
 * @example
 * const { filter, isSnapshot, member } = checkSubscription('scores', { snapshot: true }, true, undefined)
 */
export function checkSubscription (name: string, options: SubscribeOptions<any, any>, canSnapshot: boolean, presence: ResolvedPresence | undefined): CheckedSubscription {
  if (options === null || typeof options !== 'object') throw new InvalidOptionError('options', `subscribe() takes an options object, got ${describe(options)}`)
  refuseUnknownOptions('subscribe()', options, SUBSCRIBE_OPTION_NAMES)
  const filter = options.filter as CheckedSubscription['filter']
  if (filter !== undefined && typeof filter !== 'function') throw new InvalidOptionError('filter', `expected a function, got ${describe(filter)}`)
  if (options.lastEventId != null && typeof options.lastEventId !== 'string') {
    throw new InvalidOptionError('lastEventId', `expected a string or null, got ${describe(options.lastEventId)}`)
  }
  const isSnapshot = options.snapshot === true
  if (isSnapshot && !canSnapshot) {
    throw new InvalidOptionError('snapshot', `channel "${name}" has nothing to snapshot: declare it with \`history\` and \`state\` or \`presence: { events: true }\``)
  }
  return { filter, isSnapshot, member: options.presence === undefined ? undefined : memberOf(presence, options.presence) }
}
