/**
 * A channel's options and a subscription's: their types, and the lists of their keys
 * (any other key is refused). Checked once, by the registry (channel options) and by
 * `subscribe()`.
 */
import type { EventCatalog, Events, SseMessage } from '../core/catalog.js'
import type { Resync } from '../core/control.js'
import { optionNames } from '../core/validate.js'
import type { HistoryOptions, ResolvedHistory } from '../engine/engine.js'
import type { SseStream } from '../stream/stream.js'

/** Options of `app.sse.channel()`. */
export interface ChannelOptions<C extends EventCatalog<any> = EventCatalog> {
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
}

/** The keys of {@link ChannelOptions}: any other is refused (`{ histroy: true }` is never ignored). */
export const CHANNEL_OPTION_NAMES = optionNames<ChannelOptions>({ history: true, onResync: true, idleMs: true })
/** The keys of {@link SubscribeOptions}. */
export const SUBSCRIBE_OPTION_NAMES = optionNames<SubscribeOptions<EventCatalog>>({ filter: true, lastEventId: true, replayAll: true })

/** Options of `channel.subscribe()`. */
export interface SubscribeOptions<C extends EventCatalog<any>> {
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
}

/** A channel's options, checked and resolved once, by the registry. */
export interface ChannelSettings<C extends EventCatalog<any>> {
  readonly history: ResolvedHistory | undefined
  readonly idleMs: number | false
  readonly onResync: ChannelOptions<C>['onResync']
}

