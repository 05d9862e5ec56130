/**
 * The figures the library keeps anyway and shows through `app.sse.stats()` and the
 * metrics: types only, here so that the metrics read them without importing a channel.
 */

/** Figures of one channel on this instance. */
export interface ChannelStats {
  /** Streams subscribed now. */
  subscribers: number
  /** Events published through this instance. */
  published: number
  /** Events delivered to this instance's subscribers (published here or elsewhere). */
  delivered: number
  /** Subscribers whose Last-Event-ID was replayed. */
  replaysServed: number
  /** Subscribers whose Last-Event-ID was unknown or evicted (sent `sse:resync`). */
  replayMisses: number
}
