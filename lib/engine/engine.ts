/**
 * The engine interface: what carries a channel's messages to the streams of every
 * instance, and keeps its history for replay. The in-memory engine (the default)
 * serves one process; the Redis engine serves many. Channels know only this interface.
 */

/** A published message as engines carry it: validated and encoded once, by the publisher. */
export interface EngineMessage {
  /** The id the engine assigned: ordered, opaque. `undefined` on channels without history. */
  readonly id: string | undefined
  /** The event name (a key of the channel's catalog). */
  readonly event: string
  /** The payload serialized by its catalog (JSON, or the raw text of a `Text()` event). */
  readonly data: string
  /** The payload as published, when it was published on this instance (spares a parse for filters). */
  readonly payload?: unknown
  /** When it was published (epoch ms, the publisher's clock), for the delivery latency metric; absent in replays. */
  readonly publishedAt?: number
}

/** How much history a channel keeps. */
export interface HistoryOptions {
  /**
   * Messages kept for replay; older ones are evicted.
   * @default 1000
   */
  maxEvents?: number
  /**
   * Messages older than this are evicted. `false` keeps them until `maxEvents` pushes them out.
   * @default false
   */
  maxAgeMs?: number | false
}

/** History options with defaults applied. */
export interface ResolvedHistory {
  readonly maxEvents: number
  readonly maxAgeMs: number | false
}

/**
 * The result of a replay lookup: `'ok'` with every retained message after the id, in
 * order; `'unknown'` for an id this history never gave (another process's, malformed,
 * or from before a restart); `'evicted'` when messages after the id were already dropped.
 */
export type ReplayResult =
  | { readonly status: 'ok', readonly messages: readonly EngineMessage[] }
  | { readonly status: 'unknown' | 'evicted' }

/** How much one page of a replay may hold; a page always holds one message when one follows. */
export interface PageLimit {
  /** Messages at most. */
  readonly maxEvents: number
  /** Bytes of payload at most (once one message is in), for engines that copy them (Redis). */
  readonly maxBytes: number
}

/**
 * One page of a replay: `'ok'` with the retained messages right after the id, in order,
 * at most a {@link PageLimit}, and `isLast` when none followed them at the time of the
 * read; or why the history cannot be read from there (as {@link ReplayResult}).
 */
export type ReplayPage =
  | { readonly status: 'ok', readonly messages: readonly EngineMessage[], readonly isLast: boolean }
  | { readonly status: 'unknown' | 'evicted' }

/** What a channel gives its engine: where messages go on this instance. */
export interface ChannelListener {
  /** Every message published on the channel, on any instance: in order, once per instance. */
  deliver (message: EngineMessage): void
  /**
   * Presence members that left without a word (their instance stopped renewing its
   * lease): the channel announces them. Only engines with leases call it.
   */
  left? (members: readonly string[]): void
  /**
   * This instance may have missed messages and could not read them back (an outage
   * longer than the history, or a history that cannot be read): the channel resyncs
   * its subscribers. Delivery goes on with the messages that follow.
   */
  gap (): void
}

/** The state of an engine's connection to its backend, for readiness probes. */
export type EngineHealth = 'connected' | 'reconnecting' | 'down'

/** One channel as an engine serves it, on one instance. */
export interface EngineChannel {
  /**
   * Carries one message to every instance (this one included), where the engine calls
   * the channel's `deliver` with it, in the same order everywhere. With history, the
   * message is also stored and its id returned. The object is the engine's from then
   * on (a fresh one per publish): the in-memory engine delivers it as it is, its `id`
   * set, and callers give it an `id: undefined` field so its shape stays the same.
   */
  publish (message: { id?: undefined, event: string, data: string, payload?: unknown, publishedAt?: number, key?: string }): Promise<string | undefined>
  /**
   * The channel's keyed state (channels opened with `maxKeys`): the latest message of
   * every key, oldest first, and the position it was read at, read at once: every
   * message up to the position is in it (or was replaced or removed), none after.
   */
  snapshot? (): Promise<StateSnapshot> | StateSnapshot
  /** The channel's presence (channels opened with `presence`). */
  readonly presence?: EnginePresence
  /**
   * One page of the messages retained after `lastEventId`, for replay; with `undefined`,
   * from the oldest retained (status `'ok'`). A replay reads page after page, each after
   * the last id of the one before, so it costs the backend a page at a time however
   * long it is; an id evicted meanwhile answers `'evicted'`. Only called for channels
   * with history.
   *
   * @example
   * const page = await channel.readPage(lastEventId, { maxEvents: 256, maxBytes: 1 << 20 })
   */
  readPage (lastEventId: string | undefined, limit: PageLimit): Promise<ReplayPage> | ReplayPage
  /**
   * Resolves once this instance hears every message published from now on, wherever it
   * is published; rejects when that cannot be had in time. For an engine that has to
   * subscribe somewhere first (Redis); without it, a channel is live at once.
   */
  ready? (): Promise<void>
  /** Stops delivery to this instance and frees what the channel holds here. */
  close (): Promise<void> | void
}

/**
 * A channel's keyed state as read at one position (lib/state.ts): a message with `key`
 * set is stored under it (replacing the one before), an `sse:remove` with `key` deletes it.
 */
export interface StateSnapshot {
  /** The latest message of every key, in id order. */
  readonly entries: readonly EngineMessage[]
  /** The channel's last id when it was read; `undefined` when nothing was ever published. */
  readonly position: string | undefined
}

/** What a channel asks of its engine besides history. */
export interface ChannelFeatures {
  /** Keep keyed state, at most this many keys (a publish for one more is refused with TYPED_SSE_TOO_MANY_KEYS). */
  readonly maxKeys?: number
  /** Keep presence. */
  readonly presence?: boolean
}

/** One presence member as listed by an engine: its info as JSON text, its connections on every instance. */
export interface PresenceRecord {
  readonly id: string
  readonly info: string
  readonly connections: number
}

/** Who is subscribed to a channel, on every instance (lib/presence.ts). */
export interface EnginePresence {
  /** One more connection of `member`: resolves true when it is the member's first anywhere. */
  join (member: string, info: string): Promise<boolean>
  /** One connection of `member` less: resolves true when it was the member's last anywhere. */
  leave (member: string): Promise<boolean>
  /** The members on every instance. */
  list (): Promise<readonly PresenceRecord[]>
}

/** One slot of a key taken in an {@link AdmissionStore}; given back with `release`. */
export interface AdmissionLease {
  /** Where the store counts it (the store's name for the stream key; opaque to the plugin). */
  readonly key: string
  /** Unique among the leases of every instance. */
  readonly id: string
}

/**
 * Streams per key counted across every instance that shares the engine's backend, so
 * `maxStreamsPerKey` holds for the whole deployment. Leases of an instance that
 * stops (crash, kill -9) expire by themselves.
 */
export interface AdmissionStore {
  /**
   * Takes a slot of `key` when fewer than `limit` are taken: resolves with the lease,
   * or `undefined` when the key is at its limit.
   *
   * @throws TYPED_SSE_ENGINE_UNAVAILABLE when the count cannot be read (backend away)
   */
  acquire (key: string, limit: number): Promise<AdmissionLease | undefined>
  /** Gives a lease's slot back (once; errors are not reported: the lease expires anyway). */
  release (lease: AdmissionLease): void
}

/**
 * A fan-out and history engine, given to the plugin as `engine`.
 *
 * @example
 * await app.register(sse, { engine: redisEngine({ url: process.env.REDIS_URL }) })
 */
export interface SseEngine {
  /**
   * Opens the engine side of a channel, once per channel name on this instance.
   * `listener.deliver` receives every message published on the channel, on any
   * instance. Synchronous, so channels can be declared anywhere; an engine that needs
   * a round trip (a subscription) makes `publish` and `readPage` wait for it.
   */
  channel (name: string, history: ResolvedHistory | undefined, listener: ChannelListener, features?: ChannelFeatures): EngineChannel
  /**
   * Orders two ids this engine gave (negative, zero, positive), so replay and live
   * delivery can be joined by position (lib/merge.ts). Only called with ids of one channel.
   */
  compareIds (a: string, b: string): number
  /** The backend connection's state; an engine without one is always `'connected'`. */
  health? (): EngineHealth
  /**
   * Resolves when the engine can serve (e.g. Redis answered); the plugin awaits it at
   * register time, so an unreachable backend fails startup with a clear error.
   */
  ready? (): Promise<void>
  /**
   * A count of streams per key shared by every instance: when present, the plugin's
   * `maxStreamsPerKey` is checked against it (after this instance's own count).
   */
  readonly admission?: AdmissionStore
  /** Closes what the engine opened (not resources the user passed in). */
  close (): Promise<void>
}

/**
 * The engines marked by {@link withWireSafeIds}, with their `channel` method then: an engine
 * whose `channel` was replaced since (instrumentation patching the object) is not trusted.
 */
const wireSafeIds = new WeakMap<SseEngine, SseEngine['channel']>()

/**
 * Marks one of the library's own engines, whose ids cannot hold CR, LF, NUL or a lone
 * surrogate by construction (the memory engine makes `<boot>_<n>`; the Redis engine
 * checks every id it reads against its pattern): frames write them without checking
 * each again. Any other engine's ids are checked on every frame, and a message whose
 * id cannot be written is skipped.
 *
 * @example
 * return withWireSafeIds({ channel, compareIds, close })
 */
export function withWireSafeIds<E extends SseEngine> (engine: E): E {
  wireSafeIds.set(engine, engine.channel)
  return engine
}

/**
 * Whether `engine` was marked by {@link withWireSafeIds}.
 *
 * @example
 * hasWireSafeIds(memoryEngine()) // true
 */
export function hasWireSafeIds (engine: SseEngine): boolean {
  return wireSafeIds.get(engine) === engine.channel
}
