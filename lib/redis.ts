/**
 * The Redis engine: fan-out through Redis pub/sub and history in Redis Streams, so
 * several instances behind a load balancer serve the same channels. The only file in
 * lib/ that knows Redis; import it from 'fastify-typed-sse/redis' (ioredis is an
 * optional peer dependency, so users of the in-memory default never load it).
 *
 * One publish is one Lua script: XADD to the channel's stream (the id), trim it, and
 * PUBLISH the message with that id. Redis runs scripts one at a time, so the pub/sub
 * order is the stream order, and every instance (the publisher included) delivers
 * only what its subscription hears: one order everywhere, and nothing twice.
 *
 * @example
 * import { redisEngine } from 'fastify-typed-sse/redis'
 * await app.register(sse, { engine: redisEngine({ url: process.env.REDIS_URL }) })
 */
import { createHash } from 'node:crypto'
import { Redis } from 'ioredis'
import type { ChannelListener, EngineChannel, EngineMessage, ReplayResult, ResolvedHistory, SseEngine } from './engine.js'
import { EngineError, InvalidOptionError } from './errors.js'

/** Where the engine connects when given neither `url` nor `client`. */
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379'
/** Prepended to channel names to make stream keys and pub/sub channel names. */
export const DEFAULT_REDIS_PREFIX = 'sse:'
/** Time `ready()` waits for Redis to answer before it rejects. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5000
/** Reconnection attempts back off exponentially up to this delay (plus jitter). */
const MAX_RECONNECT_DELAY_MS = 2000
/** Time `close()` waits for a connection it quits to end before it drops the socket. */
const QUIT_TIMEOUT_MS = 1000
/** ioredis's grace for a socket it ends before destroying it. */
const DISCONNECT_TIMEOUT_MS = 100
/** XINFO STREAM's max-deleted-entry-id (how eviction is told apart) came in Redis 7. */
const MIN_REDIS_MAJOR = 7

/** Options of {@link redisEngine}. */
export interface RedisEngineOptions {
  /**
   * Redis URL (`redis://`, `rediss://` for TLS, with user, password and db as usual).
   * The engine opens two connections to it (commands, subscriptions) and closes them.
   * @default 'redis://127.0.0.1:6379'
   */
  url?: string
  /**
   * An ioredis client you own, instead of `url`: the engine opens its two connections
   * with `client.duplicate()` (same host, auth, TLS, db), so they carry its settings
   * but not its offline queue. `close()` quits those, never your client.
   */
  client?: Redis
  /**
   * Prefix of the stream key and the pub/sub channel of every channel (`sse:scores`).
   * @default 'sse:'
   */
  prefix?: string
  /**
   * Time `ready()` (awaited when the plugin registers) waits for Redis, and the
   * connect timeout of the connections the engine opens.
   * @default 5000
   */
  connectTimeoutMs?: number
}

type Deliver = (message: EngineMessage) => void

/** One channel name on this instance: one subscription, however many Channel objects use it. */
interface Topic {
  /** The stream key and the pub/sub channel: prefix + channel name. */
  readonly key: string
  readonly history: ResolvedHistory | undefined
  readonly delivers: Set<Deliver>
  /** The id of the last message delivered here: where a catch-up read starts after an outage. */
  lastId: string | undefined
  /** SUBSCRIBE confirmed on the current subscriber connection (and catch-up done). */
  isSubscribed: boolean
  isSubscribing: boolean
  /** Live messages held while a catch-up read runs. */
  held: EngineMessage[] | undefined
  /** publish() and readAfter() calls waiting for the subscription. */
  waiters: Array<{ resolve: () => void, reject: (err: Error) => void }>
}

/** A Redis stream id: `<ms>-<seq>`, two unsigned 64-bit decimals without leading zeros. */
const ID_PATTERN = /^(?:0|[1-9][0-9]{0,19})-(?:0|[1-9][0-9]{0,19})$/

/** Compares two stream ids (ms, then seq) as decimals of any length. */
function compareIds (a: string, b: string): number {
  const [aMs, aSeq] = a.split('-')
  const [bMs, bSeq] = b.split('-')
  return compareDecimals(aMs, bMs) || compareDecimals(aSeq, bSeq)
}

function compareDecimals (a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length
  return a < b ? -1 : a > b ? 1 : 0
}

/**
 * Lua shared by the scripts. Ids may pass 2^53, so they are compared as decimal
 * strings. Eviction uses XDEL, oldest first, not XTRIM: only XDEL records the greatest
 * deleted id (XINFO STREAM's max-deleted-entry-id, Redis 7), which tells an evicted
 * Last-Event-ID (replay would have a gap) from the last one evicted (no gap). Trimming
 * is exact, so `maxEvents` means what it means in memory; memory is freed per stream
 * node, as with `MAXLEN ~`.
 */
const LUA_HELPERS = `
local function decimal (a, b)
  if #a ~= #b then return #a < #b and -1 or 1 end
  if a == b then return 0 end
  return a < b and -1 or 1
end
local function compare (a, b)
  local ams, aseq = string.match(a, '^(%d+)-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)-(%d+)$')
  local byMs = decimal(ams, bms)
  if byMs ~= 0 then return byMs end
  return decimal(aseq, bseq)
end
local function evict (key, entries)
  local ids = {}
  for i, entry in ipairs(entries) do
    ids[#ids + 1] = entry[1]
    if #ids == 500 or i == #entries then
      redis.call('XDEL', key, unpack(ids))
      ids = {}
    end
  end
end
local function evictOlder (key, nowMs, maxAgeMs)
  if maxAgeMs > 0 then evict(key, redis.call('XRANGE', key, '-', string.format('(%d-0', nowMs - maxAgeMs))) end
end
`

/**
 * KEYS[1] stream; ARGV pub/sub channel, event, data, maxEvents, maxAgeMs (0: none).
 * The age limit is measured on Redis's clock, the one that makes the ids.
 */
const PUBLISH_SCRIPT = LUA_HELPERS + `
local key = KEYS[1]
local id = redis.call('XADD', key, '*', 'e', ARGV[2], 'd', ARGV[3])
local excess = redis.call('XLEN', key) - tonumber(ARGV[4])
if excess > 0 then evict(key, redis.call('XRANGE', key, '-', '+', 'COUNT', excess)) end
evictOlder(key, tonumber(string.match(id, '^%d+')), tonumber(ARGV[5]))
redis.call('PUBLISH', ARGV[1], id .. '\\n' .. ARGV[2] .. '\\n' .. ARGV[3])
return id
`

/**
 * KEYS[1] stream; ARGV the last event id (checked against ID_PATTERN, or '' for every
 * entry retained), maxAgeMs. 'unknown': no such stream, an id it never reached, or one
 * from before the stream began (a Redis that restarted empty); 'evicted': an entry
 * after the id was deleted.
 */
const READ_SCRIPT = LUA_HELPERS + `
local key, after = KEYS[1], ARGV[1]
if redis.call('EXISTS', key) == 0 then return after == '' and {'ok', {}} or {'unknown'} end
local now = redis.call('TIME')
evictOlder(key, now[1] * 1000 + math.floor(now[2] / 1000), tonumber(ARGV[2]))
if after == '' then return {'ok', redis.call('XRANGE', key, '-', '+')} end
local info = redis.call('XINFO', 'STREAM', key)
local field = {}
for i = 1, #info, 2 do field[info[i]] = info[i + 1] end
if compare(after, field['last-generated-id']) > 0 then return {'unknown'} end
local deleted = field['max-deleted-entry-id']
if compare(after, deleted) < 0 then return {'evicted'} end
local first = field['first-entry']
if deleted == '0-0' and first and compare(after, first[1]) < 0 then return {'unknown'} end
return {'ok', redis.call('XRANGE', key, '(' .. after, '+')}
`

interface Script { readonly source: string, readonly sha: string }

function script (source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') }
}

const PUBLISH = script(PUBLISH_SCRIPT)
const READ = script(READ_SCRIPT)

/** EVALSHA, then EVAL when Redis does not have the script cached (first use, or after a restart). */
async function runScript (redis: Redis, { source, sha }: Script, key: string, args: Array<string | number>): Promise<unknown> {
  try {
    return await redis.evalsha(sha, 1, key, ...args)
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err
    return await redis.eval(source, 1, key, ...args)
  }
}

/** A message from Redis (pub/sub or stream), or undefined when it is not one channels could have made. */
function message (id: string, event: unknown, data: unknown): EngineMessage | undefined {
  if (typeof event !== 'string' || event.length === 0 || event.includes('\r') || event.includes('\n')) return undefined
  if (typeof data !== 'string') return undefined
  if (id !== '' && !ID_PATTERN.test(id)) return undefined
  return { id: id === '' ? undefined : id, event, data }
}

/** Decodes `${id}\n${event}\n${data}` (id empty on channels without history). */
function decode (text: string): EngineMessage | undefined {
  const first = text.indexOf('\n')
  const second = first === -1 ? -1 : text.indexOf('\n', first + 1)
  if (second === -1) return undefined
  return message(text.slice(0, first), text.slice(first + 1, second), text.slice(second + 1))
}

/** Stream entries as XRANGE returns them: `[id, [field, value, ...]]`. Foreign entries are skipped. */
function entries (reply: unknown): EngineMessage[] {
  const messages: EngineMessage[] = []
  for (const [id, fields] of reply as Array<[string, string[]]>) {
    let event: string | undefined
    let data: string | undefined
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i] === 'e') event = fields[i + 1]
      else if (fields[i] === 'd') data = fields[i + 1]
    }
    const parsed = message(id, event, data)
    if (parsed?.id !== undefined) messages.push(parsed)
  }
  return messages
}

function checkOptions (options: RedisEngineOptions): void {
  if (options.url !== undefined && options.client !== undefined) {
    throw new InvalidOptionError('url', 'give either url or client, not both')
  }
  if (options.url !== undefined && typeof options.url !== 'string') {
    throw new InvalidOptionError('url', `expected a redis:// or rediss:// URL, got ${String(options.url)}`)
  }
  if (options.client !== undefined && typeof options.client?.duplicate !== 'function') {
    throw new InvalidOptionError('client', 'expected an ioredis Redis instance')
  }
  if (options.prefix !== undefined && typeof options.prefix !== 'string') {
    throw new InvalidOptionError('prefix', `expected a string, got ${String(options.prefix)}`)
  }
  const timeout = options.connectTimeoutMs
  if (timeout !== undefined && (!Number.isSafeInteger(timeout) || timeout <= 0)) {
    throw new InvalidOptionError('connectTimeoutMs', `expected a positive integer, got ${String(timeout)}`)
  }
}

/**
 * Creates a Redis engine: channels fan out to every instance through Redis pub/sub,
 * and channels with history keep it in a Redis Stream (ids are stream ids, `ms-seq`).
 * Needs Redis 7 or later; `ready()` checks.
 *
 * Faults: `ready()` rejects with TYPED_SSE_ENGINE_UNAVAILABLE when Redis does not
 * answer within `connectTimeoutMs` (and then closes the engine). While Redis is away,
 * open streams stay open and `publish` rejects at once with that code; the engine
 * reconnects, resubscribes, and delivers to live streams what other instances
 * published while its subscription was down (channels with history).
 *
 * @throws TYPED_SSE_INVALID_OPTION
 * @example
 * await app.register(sse, { engine: redisEngine({ url: 'redis://127.0.0.1:6379', prefix: 'scores:' }) })
 */
export function redisEngine (options: RedisEngineOptions = {}): SseEngine {
  checkOptions(options)
  const prefix = options.prefix ?? DEFAULT_REDIS_PREFIX
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS
  // Our connections never queue: a command while Redis is away fails at once (publish
  // reports it), and one in flight when the connection drops fails instead of being
  // sent again after the reconnect (a resent publish could be delivered twice).
  const ours = {
    connectTimeout: connectTimeoutMs,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    // The engine resubscribes itself, so it knows when each subscription is back.
    autoResubscribe: false,
    lazyConnect: false,
    // Replies are read in one shape whatever the template client asked for.
    replyMapping: 'legacy' as const,
    // disconnect() between reconnection attempts arms a timer for a socket that is
    // already closed; keep it short so a closed engine does not hold the process.
    disconnectTimeout: DISCONNECT_TIMEOUT_MS,
    retryStrategy: (times: number) => Math.min(50 * 2 ** (times - 1), MAX_RECONNECT_DELAY_MS) + Math.floor(Math.random() * 100)
  }
  // A client given is a template (host, auth, TLS, db, sentinels): the engine uses
  // duplicates with the settings above, so a publish never waits in its offline queue
  // or is resent by its retries, and closing the engine leaves it alone.
  const commands = options.client?.duplicate(ours) ?? new Redis(options.url ?? DEFAULT_REDIS_URL, ours)
  const subscriber = commands.duplicate(ours)
  const topics = new Map<string, Topic>()
  let lastError: Error | undefined
  let isClosed = false
  /** Counts subscriber connections: work started on an earlier one must not finish on a later one. */
  let epoch = 0

  for (const connection of [commands, subscriber]) {
    // Without a listener ioredis prints every failed reconnection; the last one is
    // kept for the messages of the errors we throw.
    connection.on('error', (err: Error) => { lastError = err })
  }
  subscriber.on('message', (channel: string, text: string) => {
    const topic = topics.get(channel)
    const parsed = topic === undefined ? undefined : decode(text)
    if (topic === undefined || parsed === undefined) return
    if (topic.held !== undefined) topic.held.push(parsed)
    else deliver(topic, parsed)
  })
  subscriber.on('ready', () => {
    if (isClosed || subscriber.status !== 'ready') return
    const list = [...topics.values()].filter((topic) => !topic.isSubscribed && !topic.isSubscribing)
    if (list.length > 0) subscribe(list)
  })
  subscriber.on('close', () => {
    epoch++
    for (const topic of topics.values()) {
      topic.isSubscribed = false
      topic.isSubscribing = false
      settle(topic, unavailable('the subscription connection to Redis was lost'))
    }
  })

  function unavailable (reason: string, cause?: unknown): Error {
    const detail = cause instanceof Error ? cause.message : lastError?.message
    const err = new EngineError(detail === undefined ? reason : `${reason} (${detail})`)
    err.cause = cause ?? lastError
    return err
  }

  function deliver (topic: Topic, message: EngineMessage): void {
    if (message.id !== undefined) topic.lastId = message.id
    for (const fn of topic.delivers) {
      // A throw (a subscriber's filter) would unwind into ioredis's reply parser, and
      // the other channels sharing the topic must get the message anyway.
      try {
        fn(message)
      } catch (err) {
        process.emitWarning(err as Error)
      }
    }
  }

  function settle (topic: Topic, err?: Error): void {
    const waiters = topic.waiters
    topic.waiters = []
    for (const waiter of waiters) {
      if (err === undefined) waiter.resolve()
      else waiter.reject(err)
    }
  }

  function subscribe (list: Topic[]): void {
    const current = epoch
    for (const topic of list) {
      topic.isSubscribing = true
      // Hold from now: messages in the same read as the confirmation are emitted
      // before the promise below continues, and must wait for the catch-up read.
      if (topic.history !== undefined && topic.lastId !== undefined) topic.held ??= []
    }
    subscriber.subscribe(...list.map((topic) => topic.key)).then(
      async () => await Promise.all(list.map(async (topic) => await subscribed(topic, current))),
      (err: unknown) => {
        if (current !== epoch) return
        for (const topic of list) {
          topic.isSubscribing = false
          settle(topic, unavailable('Redis refused the subscription', err))
        }
      }
    ).catch(() => {})
  }

  /**
   * The subscription is confirmed: from here on this instance hears every publish.
   * If it heard some before (a reconnect), it first delivers what it missed meanwhile.
   */
  async function subscribed (topic: Topic, current: number): Promise<void> {
    if (topic.held !== undefined) await catchUp(topic, current, topic.held)
    if (current !== epoch || topics.get(topic.key) !== topic) return
    topic.isSubscribing = false
    topic.isSubscribed = true
    settle(topic)
  }

  /**
   * Reads the stream after the last id delivered here and delivers it, holding live
   * messages meanwhile; those the read also returned are then skipped. Best effort: if
   * the entries are gone (trimmed, or Redis restarted empty), live streams have a gap.
   */
  async function catchUp (topic: Topic, current: number, held: EngineMessage[]): Promise<void> {
    let last = topic.lastId as string
    try {
      const missed = entries(await commands.xrange(topic.key, `(${last}`, '+'))
      await syncSubscriber() // everything published before the read has now reached `held`
      if (current !== epoch) return
      for (const message of missed) deliver(topic, message)
      last = topic.lastId as string
    } catch {
      if (current !== epoch) return
    }
    topic.held = undefined
    for (const message of held) {
      if (message.id === undefined || compareIds(message.id, last) > 0) deliver(topic, message)
    }
  }

  /** Resolves once this instance is subscribed to the topic, so it hears what follows. */
  async function whenSubscribed (topic: Topic): Promise<void> {
    if (isClosed) throw new EngineError('the Redis engine is closed')
    if (topic.isSubscribed) return
    if (subscriber.status !== 'ready') throw unavailable(`the subscription connection to Redis is ${subscriber.status}`)
    if (!topic.isSubscribing) subscribe([topic])
    await new Promise<void>((resolve, reject) => topic.waiters.push({ resolve, reject }))
  }

  /**
   * Resolves when a PING answers on the subscriber connection: Redis sends that reply
   * after every message published before it, so they have all been delivered here.
   */
  async function syncSubscriber (): Promise<void> {
    if (subscriber.status !== 'ready') throw unavailable(`the subscription connection to Redis is ${subscriber.status}`)
    try {
      await subscriber.ping()
    } catch (err) {
      throw unavailable('the subscription connection to Redis failed', err)
    }
  }

  /** Runs one command, failing at once with the coded error when Redis is away. */
  async function command<T> (run: () => Promise<T>): Promise<T> {
    if (isClosed) throw new EngineError('the Redis engine is closed')
    if (commands.status !== 'ready') throw unavailable(`the command connection to Redis is ${commands.status}`)
    try {
      return await run()
    } catch (err) {
      throw unavailable('a Redis command failed', err)
    }
  }

  async function waitReady (connection: Redis, deadline: number): Promise<void> {
    if (connection.status !== 'ready' && connection.status !== 'end') {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer)
          connection.off('ready', done).off('end', done)
          resolve()
        }
        const timer = setTimeout(done, Math.max(0, deadline - Date.now()))
        connection.on('ready', done).on('end', done)
      })
    }
    if (connection.status !== 'ready') throw unavailable(`Redis did not answer within ${connectTimeoutMs} ms`)
  }

  async function quit (connection: Redis): Promise<void> {
    if (connection.status === 'end') return
    if (connection.status !== 'ready') {
      // Connecting, or waiting to retry: nothing to say goodbye on; stop retrying.
      connection.disconnect()
      return
    }
    let timer: NodeJS.Timeout | undefined
    const ended = new Promise<void>((resolve) => {
      connection.once('end', resolve)
      timer = setTimeout(() => { connection.disconnect(); resolve() }, QUIT_TIMEOUT_MS)
    })
    connection.quit().catch(() => connection.disconnect())
    await ended
    clearTimeout(timer)
  }

  async function close (): Promise<void> {
    if (isClosed) return
    isClosed = true
    for (const topic of topics.values()) settle(topic, new EngineError('the Redis engine is closed'))
    topics.clear()
    await Promise.all([quit(commands), quit(subscriber)])
  }

  return {
    compareIds,
    channel (name: string, history: ResolvedHistory | undefined, listener: ChannelListener): EngineChannel {
      const fn: Deliver = (message) => listener.deliver(message)
      const key = prefix + name
      let topic = topics.get(key)
      if (topic === undefined) {
        topic = { key, history, delivers: new Set(), lastId: undefined, isSubscribed: false, isSubscribing: false, held: undefined, waiters: [] }
        topics.set(key, topic)
        if (!isClosed && subscriber.status === 'ready') subscribe([topic])
      }
      const current = topic
      current.delivers.add(fn)
      return {
        async publish ({ event, data }) {
          await whenSubscribed(current) // so this instance's own subscribers hear it too
          if (current.history === undefined) {
            await command(async () => await commands.publish(key, `\n${event}\n${data}`))
            return undefined
          }
          const { maxEvents, maxAgeMs } = current.history
          return await command(async () => await runScript(commands, PUBLISH, key, [key, event, data, maxEvents, maxAgeMs || 0])) as string
        },
        async readAfter (lastEventId): Promise<ReplayResult> {
          if (current.history === undefined) return { status: 'unknown' }
          if (lastEventId !== undefined && !ID_PATTERN.test(lastEventId)) return { status: 'unknown' }
          await whenSubscribed(current)
          const { maxAgeMs } = current.history
          const reply = await command(async () => await runScript(commands, READ, key, [lastEventId ?? '', maxAgeMs || 0])) as [string, unknown?]
          // The channel now holds every live message up to the read, so it can drop
          // those the client already had (this instance may lag the client's previous one).
          await syncSubscriber()
          if (reply[0] === 'ok') return { status: 'ok', messages: entries(reply[1]) }
          return { status: reply[0] === 'evicted' ? 'evicted' : 'unknown' }
        },
        close () {
          current.delivers.delete(fn)
          if (current.delivers.size > 0 || topics.get(key) !== current) return
          topics.delete(key)
          settle(current, new EngineError(`channel "${name}" was closed`))
          if (subscriber.status === 'ready') subscriber.unsubscribe(key).catch(() => {})
        }
      }
    },

    async ready () {
      try {
        const deadline = Date.now() + connectTimeoutMs
        await Promise.all([waitReady(commands, deadline), waitReady(subscriber, deadline)])
        const info = await commands.info('server')
        const version = /redis_version:([0-9.]+)/.exec(info)?.[1] ?? 'unknown'
        if (!(Number.parseInt(version, 10) >= MIN_REDIS_MAJOR)) {
          throw new EngineError(`Redis ${MIN_REDIS_MAJOR}.0 or later is required, this server is ${version}`)
        }
      } catch (err) {
        // Nothing will close an engine whose registration failed: stop reconnecting now.
        await close()
        throw err instanceof EngineError ? err : unavailable('Redis did not answer', err)
      }
    },

    close
  }
}
