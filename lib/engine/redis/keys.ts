/**
 * The engine's key layout: one home for every name it writes in Redis, so that a name
 * chosen by a request can never reach a key of another kind.
 *
 * Every key starts with the engine's prefix, then a fixed word per kind: `ch:` for a
 * channel (its stream, and its pub/sub or shard channel of the same name), `admission:`
 * for the leases of a stream key. Neither word begins the other, so whatever follows
 * (a channel name, a stream key, any text) a channel key is never an admission key,
 * and the reverse. A new kind of key gets a word of its own that no other word begins.
 *
 * The variable part is a Redis Cluster hash tag (`{...}`): a channel's stream and
 * shard channel are one name, so one slot; channels and admission keys spread over
 * the shards by what follows their word. Braces inside the name only move the tag
 * (Redis hashes from the first `{` to the next `}`): the name is still the whole key.
 *
 *   <prefix>ch:{<channel name>}          stream (channels with history) and (shard) channel
 *   <prefix>ch:{<channel name>}:state    hash: the latest entry per state key (channels with `state`)
 *   <prefix>ch:{<channel name>}:members  hash: presence, per instance and member, connections and info
 *   <prefix>ch:{<channel name>}:counts   hash: presence, per member, connections on every instance
 *   <prefix>ch:{<channel name>}:leases   sorted set: presence, per instance, when its lease expires
 *   <prefix>ch:{<channel name>}:published          hash: the newest publish ids, each with its entry's id (scripts.ts)
 *   <prefix>ch:{<channel name>}:published:before   hash: the generation of publish ids before those
 *   <prefix>admission:{<stream key>}     sorted set of leases (maxStreamsPerKey)
 *
 * A channel's own keys share its hash tag, so its scripts run on one shard. They end
 * in a word after the closing brace, and a channel key ends with the brace: no
 * channel name makes one kind of key equal another (the suffixes differ, and none
 * ends another).
 */

/**
 * The stream key and (shard) channel name of a channel.
 *
 * @example
 * channelKey('sse:', 'admission:{alice}') // 'sse:ch:{admission:{alice}}', never alice's admission key
 */
export function channelKey (prefix: string, name: string): string {
  return `${prefix}ch:{${name}}`
}

/**
 * The key of the leases of one stream key (the plugin's `streamKey`).
 *
 * @example
 * admissionKey('sse:', 'alice') // 'sse:admission:{alice}'
 */
export function admissionKey (prefix: string, streamKey: string): string {
  return `${prefix}admission:{${streamKey}}`
}

/** The keys of one channel: its stream, and what lives beside it (same hash slot). */
export interface ChannelKeys {
  /** The stream (channels with history) and the (shard) channel: {@link channelKey}. */
  readonly stream: string
  readonly state: string
  readonly members: string
  readonly counts: string
  readonly leases: string
  /** The publish ids a publish looks up to append once (scripts.ts), newest generation first. */
  readonly published: string
  readonly publishedBefore: string
}

/**
 * The keys of a channel, from its {@link channelKey}.
 *
 * @example
 * channelKeys('sse:ch:{prices}').state // 'sse:ch:{prices}:state'
 */
export function channelKeys (channel: string): ChannelKeys {
  return {
    stream: channel,
    state: `${channel}:state`,
    members: `${channel}:members`,
    counts: `${channel}:counts`,
    leases: `${channel}:leases`,
    published: `${channel}:published`,
    publishedBefore: `${channel}:published:before`
  }
}
