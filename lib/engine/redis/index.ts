/**
 * The Redis engine: fan-out through Redis pub/sub and history in Redis Streams, so
 * several instances behind a load balancer serve the same channels. The only part of
 * lib/ that knows Redis; import it from 'fastify-typed-sse/redis' (ioredis is an
 * optional peer dependency, so users of the in-memory default never load it).
 *
 * Parts, each importing only those listed before it:
 *   ids.ts          stream ids: pattern, order
 *   codec.ts        messages to and from Redis, checked on the way in
 *   scripts.ts      the Lua (publish, read, position), registered with defineCommand
 *   options.ts      options, defaults, checks
 *   connections.ts  the engine's connections: settings, readiness, errors, reset, quit
 *   commands.ts     the command connection: commands with coded errors and a deadline (one watchdog)
 *   keys.ts         the key layout: channel keys and the engine's own, apart
 *   slot.ts         Redis Cluster hash slots
 *   pubsub.ts   subscriptions on one Redis (SUBSCRIBE)
 *   shard-pubsub.ts  subscriptions on a cluster (SSUBSCRIBE, one connection per master)
 *   topic.ts        one channel key on this instance: listeners, position, hold
 *   catch-up.ts     reading back what a resubscribed topic missed (lib/merge.ts)
 *   topics.ts       the topics: subscribe, resubscribe, route messages
 *   admission.ts    streams per key counted across instances (leases with a time to live)
 *   state.ts        keyed state: the keyed publish script, snapshots
 *   presence.ts     presence across instances (leases with a time to live)
 *   index.ts        redisEngine(): wires the parts into an SseEngine
 *
 * @example
 * import { redisEngine } from 'fastify-typed-sse/redis'
 * await app.register(sse, { engine: redisEngine({ url: process.env.REDIS_URL }) })
 */
import { randomBytes } from 'node:crypto'
import { Cluster, Redis } from 'ioredis'
import { withWireSafeIds, type ChannelFeatures, type ChannelListener, type EngineChannel, type ReplayPage, type ReplayResult, type ResolvedHistory, type SseEngine } from '../engine.js'
import { EngineError, TooManyKeysError } from '../../core/errors.js'
import { RedisAdmission } from './admission.js'
import { encode, entries } from './codec.js'
import { Commands } from './commands.js'
import { clusterOptions, commandConnectionOptions, connectionOptions, shardOptions, unavailable, whenConnected, whenReady, type Connection } from './connections.js'
import { compareIds, ID_PATTERN } from './ids.js'
import { channelKey, channelKeys } from './keys.js'
import { RedisPresences } from './presence.js'
import { defineStateScripts, STATE_FULL } from './state.js'
import { DEFAULT_HISTORY_TTL_MS, DEFAULT_REDIS_URL, resolveRedisOptions, type RedisEngineOptions, type ResolvedRedisOptions } from './options.js'
import { defineScripts, publishLimits, type ReadReply } from './scripts.js'
import { ShardPubSub } from './shard-pubsub.js'
import { SinglePubSub, type PubSub, type PubSubEvents } from './pubsub.js'
import { Topics } from './topics.js'
import type { Topic } from './topic.js'

export {
  DEFAULT_COMMAND_TIMEOUT_MS, DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_HISTORY_TTL_MS, DEFAULT_LEASE_TTL_MS, DEFAULT_MAX_CATCH_UP_MESSAGES, DEFAULT_REDIS_PREFIX,
  DEFAULT_PRESENCE_LEASE_MS, DEFAULT_REDIS_URL, type RedisAdmissionOptions, type RedisEngineOptions
} from './options.js'

/** XINFO STREAM's max-deleted-entry-id (how eviction is told apart) came in Redis 7. */
const MIN_REDIS_MAJOR = 7

/** The engine's connections: commands (a Redis or a Cluster), and how it subscribes. */
interface Wiring {
  readonly connection: Connection
  readonly isCluster: boolean
  readonly makePubSub: (events: PubSubEvents) => PubSub
}

/**
 * A client given is a template (host, auth, TLS, db, sentinels, a cluster's nodes):
 * the engine uses duplicates with its own settings, so a publish never waits in the
 * client's offline queue or is resent by its retries, and closing the engine leaves it alone.
 */
function wire (resolved: ResolvedRedisOptions): Wiring {
  const settings = connectionOptions(resolved.connectTimeoutMs, resolved.commandTimeoutMs)
  const template = resolved.client
  if (resolved.cluster !== undefined || template?.isCluster === true) {
    const user = template === undefined ? resolved.cluster?.options : (template as Cluster).options
    const options = clusterOptions(settings, user)
    const connection = template === undefined ? new Cluster(resolved.cluster?.nodes ?? [], options) : (template as Cluster).duplicate(undefined, options)
    connection.on('error', () => {})
    return {
      connection,
      isCluster: true,
      makePubSub: (events) => new ShardPubSub(connection, events, shardOptions(settings, user), resolved.commandTimeoutMs)
    }
  }
  const commandSettings = commandConnectionOptions(settings)
  const connection = (template as Redis | undefined)?.duplicate(commandSettings) ?? new Redis(resolved.url ?? DEFAULT_REDIS_URL, commandSettings)
  const subscriber = connection.duplicate(settings)
  // Without a listener ioredis prints every failed reconnection.
  for (const each of [connection, subscriber]) each.on('error', () => {})
  return { connection, isCluster: false, makePubSub: (events) => new SinglePubSub(subscriber, events) }
}

function replayResult (reply: ReadReply, withPublishIds = false): ReplayResult {
  if (reply[0] === 'ok') return { status: 'ok', messages: entries(reply[1], withPublishIds) }
  return { status: reply[0] === 'evicted' ? 'evicted' : 'unknown' }
}

function replayPage (reply: ReadReply): ReplayPage {
  if (reply[0] === 'ok') return { status: 'ok', messages: entries(reply[1]), isLast: reply[2] === 1 }
  return { status: reply[0] === 'evicted' ? 'evicted' : 'unknown' }
}

/**
 * Creates a Redis engine: channels fan out to every instance through Redis pub/sub,
 * and channels with history keep it in a Redis Stream (ids are stream ids, `ms-seq`).
 * Needs Redis 7 or later; `ready()` checks.
 *
 * Faults: `ready()` rejects with TYPED_SSE_ENGINE_UNAVAILABLE when Redis does not
 * answer within `connectTimeoutMs` (and then closes the engine). While Redis is away,
 * open streams stay open and `publish` rejects at once with that code; a command that
 * gets no answer within `commandTimeoutMs` (a hung Redis) rejects with it too. The
 * engine reconnects, resubscribes, and delivers to live streams what other instances
 * published while its subscription was down (channels with history), or, when that
 * cannot be read back, tells the channels of the gap (their streams resync).
 *
 * Admission: the plugin's `maxStreamsPerKey` is counted across every instance on this
 * Redis (option `admission`; `false` counts per instance); while Redis is away a new
 * stream gets 503 with Retry-After, or with `whenUnavailable: 'admit'` this
 * instance's own count decides.
 *
 * @throws TYPED_SSE_INVALID_OPTION
 * @example
 * await app.register(sse, { engine: redisEngine({ url: 'redis://127.0.0.1:6379', prefix: 'scores:' }) })
 */
export function redisEngine (options: RedisEngineOptions = {}): SseEngine {
  const resolved = resolveRedisOptions(options)
  const { prefix, connectTimeoutMs, commandTimeoutMs } = resolved
  const { connection, isCluster, makePubSub } = wire(resolved)
  const commands = new Commands(connection, commandTimeoutMs)
  const scripts = defineScripts(connection, isCluster)
  const stateScripts = defineStateScripts(connection, isCluster)
  // Made on first use: most engines serve no channel with presence, and it runs a timer.
  let presences: RedisPresences | undefined
  const maxAgeOf = (topic: Topic): number => topic.history?.maxAgeMs || 0
  // Never shorter than maxAgeMs by default: a stream that expired cannot tell a client
  // that is up to date (after a quiet spell) from one that missed messages.
  const ttlOf = (topic: Topic): number => resolved.historyTtlMs ?? Math.max(maxAgeOf(topic), DEFAULT_HISTORY_TTL_MS)
  const topics: Topics = new Topics(makePubSub, {
    waitMs: commandTimeoutMs,
    maxHeld: resolved.maxCatchUpMessages,
    whenCommandsReady: async (deadline) => await whenReady(connection, deadline),
    read: async (topic, after) => replayResult(await commands.run(async () => await scripts.read(topic.key, after, maxAgeOf(topic))), true),
    position: async (topic) => await commands.run(async () => await scripts.position(topic.key)),
    contains: async (topic, id, publishId) => await commands.run(async () => await scripts.contains(topic.key, id, publishId)),
    sync: async (topic) => await topics.pubsub.sync(topic.key)
  })
  const admission = resolved.admission === false
    ? undefined
    : new RedisAdmission(commands, { prefix, isCluster, ...resolved.admission })
  let isClosed = false
  // Unique per publish across instances: a random part per engine, a counter per publish.
  const publisher = randomBytes(9).toString('base64url')
  let published = 0
  const nextPublishId = (): string => `${publisher}.${(published++).toString(36)}`

  async function close (): Promise<void> {
    if (isClosed) return
    isClosed = true
    admission?.close()
    presences?.close()
    topics.close()
    await Promise.all([commands.close(), topics.pubsub.close()])
  }

  return withWireSafeIds({
    compareIds,
    admission,

    channel (name: string, history: ResolvedHistory | undefined, listener: ChannelListener, features: ChannelFeatures = {}): EngineChannel {
      const key = channelKey(prefix, name)
      const keys = channelKeys(key)
      const stateKey = keys.state
      const topic = topics.open(key, history, listener)
      const { maxKeys } = features
      const presence = features.presence === true ? (presences ??= new RedisPresences(commands, resolved.presenceLeaseMs)).open(key, (left) => listener.left?.(left)) : undefined
      // Returns ioredis's own promise (through Commands.run): no async wrapper per publish.
      // The topic's history is fixed: its limits are one argument, made once.
      const limits = topic.history === undefined ? '' : publishLimits(topic.history.maxEvents, maxAgeOf(topic), ttlOf(topic))
      const send = ({ event, data, publishedAt, key: itemKey }: Parameters<EngineChannel['publish']>[0]): Promise<string | undefined> => {
        if (topic.history === undefined) return publishText(event, data, publishedAt)
        // A first run of this publish (before a resend) is after what this instance has seen.
        const publishId = nextPublishId()
        const since = topic.lastId ?? '0-0'
        if (itemKey === undefined || maxKeys === undefined) return commands.run(() => scripts.append(keys, event, data, limits, publishId, since, publishedAt))
        return commands.run(() => stateScripts.append(keys, stateKey, event, data, limits, publishId, since, publishedAt, itemKey, maxKeys)).then((id) => {
          if (id === STATE_FULL) throw new TooManyKeysError(name, maxKeys, JSON.stringify(itemKey))
          return id
        })
      }
      const publishText = async (event: string, data: string, publishedAt: number | undefined): Promise<undefined> => {
        const text = encode('', event, data, publishedAt)
        await commands.run((redis) => isCluster ? redis.spublish(key, text) : redis.publish(key, text))
        return undefined
      }
      return {
        publish (message) {
          // The steady state, subscribed already: the command goes out now, with no
          // promise or microtask before it (a wait per publish cost as much as the client).
          if (!isClosed && topic.state === 'subscribed') return send(message)
          // Subscribed first, so this instance's own subscribers hear it too.
          return topics.whenSubscribed(topic).then(() => send(message))
        },
        snapshot: maxKeys === undefined
          ? undefined
          : async () => {
            await topics.whenSubscribed(topic)
            const snapshot = await commands.run(async () => await stateScripts.snapshot(key, stateKey))
            // Messages up to the snapshot's position reach this instance before the held ones are joined.
            await topics.pubsub.sync(key)
            return snapshot
          },
        presence,
        async readPage (lastEventId, { maxEvents, maxBytes }): Promise<ReplayPage> {
          if (topic.history === undefined) return { status: 'unknown' }
          if (lastEventId !== undefined && !ID_PATTERN.test(lastEventId)) return { status: 'unknown' }
          await topics.whenSubscribed(topic)
          const page = replayPage(await commands.run(async () => await scripts.readPage(key, lastEventId ?? '', maxAgeOf(topic), maxEvents, maxBytes)))
          // After the last page the channel holds every live message up to the read, so
          // it can drop those the client already had (this instance may lag the client's
          // previous one).
          if (page.status !== 'ok' || page.isLast) await topics.pubsub.sync(key)
          return page
        },
        ready: async () => { await topics.whenSubscribed(topic) },
        close () {
          presence?.close()
          topics.leave(topic, listener, name)
        }
      }
    },

    health () {
      if (isClosed) return 'down'
      return commands.isReady && topics.pubsub.isReady ? 'connected' : 'reconnecting'
    },

    async ready () {
      try {
        const deadline = Date.now() + connectTimeoutMs
        // Fails at once, naming the address and the cause, when waiting cannot help.
        await whenConnected(connection, connectTimeoutMs, resolved.address)
        if (!await topics.pubsub.whenReady(deadline)) throw unavailable(`the subscriber connection to Redis at ${resolved.address} did not answer within ${connectTimeoutMs} ms`)
        const info = await commands.run(async (redis) => await redis.info('server'))
        const version = /redis_version:([0-9.]+)/.exec(info)?.[1] ?? 'unknown'
        if (!(Number.parseInt(version, 10) >= MIN_REDIS_MAJOR)) {
          throw new EngineError(`Redis ${MIN_REDIS_MAJOR}.0 or later is required, the server at ${resolved.address} is ${version}`)
        }
      } catch (err) {
        // Nothing will close an engine whose registration failed: stop reconnecting now.
        await close()
        throw err
      }
    },

    close
  })
}
