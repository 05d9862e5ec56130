/**
 * One channel name on this instance as the engine serves it: one subscription however
 * many channels (listeners) use it, the position delivered so far, and the hold of
 * live messages while a catch-up read runs.
 */
import type { ChannelListener, EngineMessage, ResolvedHistory } from '../engine.js'
import type { ReplayMerge } from '../../core/merge.js'
import type { HeardMessage } from './codec.js'
import { compareIds } from './ids.js'

/** A publish() or readAfter() call waiting for the subscription. */
export interface Waiter {
  readonly resolve: () => void
  readonly reject: (err: Error) => void
}

export interface Topic {
  /** The stream key and the (shard) channel: prefix + channel name. */
  readonly key: string
  readonly history: ResolvedHistory | undefined
  readonly listeners: Set<ChannelListener>
  /**
   * The greatest id delivered here, or the stream's position when the topic was first
   * subscribed: a catch-up read after an outage starts there.
   */
  lastId: string | undefined
  /** The publish id of the last message delivered, when it had one: the next must name it as its previous... */
  lastPublishId: string | undefined
  /** ...with its id ({@link follows}); lastId is the greatest delivered, not always the last. */
  lastEntryId: string | undefined
  /** Bumped when the subscription is lost or dropped: work begun before is abandoned. */
  generation: number
  state: 'idle' | 'subscribing' | 'subscribed'
  /** Subscribed before: the next subscribe is a resubscribe, after which the topic catches up. */
  wasSubscribed: boolean
  /** Delivered a message here: the next subscribe is a resubscribe even if none was confirmed. */
  hasDelivered: boolean
  /** Live messages held while a catch-up read runs. */
  merge: ReplayMerge<EngineMessage> | undefined
  waiters: Waiter[]
}

/**
 * A topic not yet subscribed.
 *
 * @example
 * const topic = newTopic('sse:scores', { maxEvents: 1000, maxAgeMs: false })
 */
export function newTopic (key: string, history: ResolvedHistory | undefined): Topic {
  return { key, history, listeners: new Set(), lastId: undefined, lastPublishId: undefined, lastEntryId: undefined, generation: 0, state: 'idle', wasSubscribed: false, hasDelivered: false, merge: undefined, waiters: [] }
}

/** Moves the topic's position forward to `id` (never back: positions only grow). */
export function advance (topic: Topic, id: string): void {
  if (topic.lastId === undefined || compareIds(id, topic.lastId) > 0) topic.lastId = id
}

/**
 * True when `message` may follow what the topic delivered last: it names that entry
 * (id and publish id) as the one before it, or one of the two says nothing of the
 * chain (a message read from the stream; nothing delivered since a gap).
 *
 * @example
 * if (!follows(topic, message)) recover(topic, message)
 */
export function follows (topic: Topic, message: HeardMessage): boolean {
  return message.previous === undefined || topic.lastPublishId === undefined ||
    (message.previous === topic.lastPublishId && message.previousId === topic.lastEntryId)
}

/**
 * Gives one message to every channel listening on this instance.
 *
 * @example
 * deliver(topic, { id: '1-0', event: 'score', data: '{"seq":1}' })
 */
export function deliver (topic: Topic, message: HeardMessage): void {
  if (message.id !== undefined) advance(topic, message.id)
  topic.lastPublishId = message.publishId
  topic.lastEntryId = message.id
  topic.hasDelivered = true
  for (const listener of topic.listeners) {
    // A throw would unwind into ioredis's reply parser, and the other channels
    // sharing the topic must get the message anyway.
    try {
      listener.deliver(message)
    } catch (err) {
      process.emitWarning(err as Error)
    }
  }
}

/**
 * Tells every channel listening here that messages may have been missed and could not
 * be read back: they resync their streams.
 */
export function reportGap (topic: Topic): void {
  for (const listener of topic.listeners) {
    try {
      listener.gap()
    } catch (err) {
      process.emitWarning(err as Error)
    }
  }
}

/** Resolves (no error) or rejects every call waiting for the subscription. */
export function settle (topic: Topic, err?: Error): void {
  const waiters = topic.waiters
  topic.waiters = []
  for (const waiter of waiters) {
    if (err === undefined) waiter.resolve()
    else waiter.reject(err)
  }
}
