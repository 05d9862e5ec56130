/**
 * The topics of one engine: which channel keys this instance listens to, their
 * subscriptions (made when a channel opens and again after every reconnect, each
 * resubscribe followed by a catch-up), and where each message heard goes.
 */
import type { ChannelListener, EngineMessage, ResolvedHistory } from '../engine.js'
import { EngineError } from '../../core/errors.js'
import { ReplayMerge } from '../../core/merge.js'
import { catchUp, type CatchUpContext } from './catch-up.js'
import { unavailable } from './connections.js'
import { decode } from './codec.js'
import { compareIds } from './ids.js'
import type { PubSub, PubSubEvents } from './pubsub.js'
import { advance, deliver, follows, newTopic, reportGap, settle, type Topic } from './topic.js'

/** What the topics need besides their subscriber. */
export interface TopicsContext extends CatchUpContext {
  /** The id of the stream's newest entry, `'0-0'` for none: where a new topic starts. */
  position (topic: Topic): Promise<string>
  /** Live messages one topic holds during a catch-up before it gives up with a gap. */
  readonly maxHeld: number
}

/**
 * The topics, by key.
 *
 * @example
 * const topics = new Topics((events) => new SinglePubSub(connection, events), context)
 * const topic = topics.open('sse:scores', history, listener)
 */
export class Topics implements PubSubEvents {
  readonly pubsub: PubSub
  readonly #topics = new Map<string, Topic>()
  readonly #context: TopicsContext
  #isClosed = false

  constructor (makePubSub: (events: PubSubEvents) => PubSub, context: TopicsContext) {
    this.#context = context
    this.pubsub = makePubSub(this)
  }

  /** The topic of `key` with `listener` added; subscribed now if the connection is up. */
  open (key: string, history: ResolvedHistory | undefined, listener: ChannelListener): Topic {
    let topic = this.#topics.get(key)
    if (topic === undefined) {
      topic = newTopic(key, history)
      this.#topics.set(key, topic)
      if (!this.#isClosed && this.pubsub.canSubscribe(key)) this.#subscribe([topic])
    }
    topic.listeners.add(listener)
    return topic
  }

  /** Removes `listener`; the last one out unsubscribes and drops the topic. */
  leave (topic: Topic, listener: ChannelListener, name: string): void {
    topic.listeners.delete(listener)
    if (topic.listeners.size > 0 || this.#topics.get(topic.key) !== topic) return
    this.#topics.delete(topic.key)
    topic.generation++
    topic.merge = undefined
    settle(topic, new EngineError(`channel "${name}" was closed`))
    this.pubsub.unsubscribe(topic.key)
  }

  /**
   * Resolves once this instance is subscribed to the topic (so it hears what follows)
   * and caught up; rejects with the coded error when that does not happen in time.
   */
  async whenSubscribed (topic: Topic): Promise<void> {
    if (this.#isClosed) throw new EngineError('the Redis engine is closed')
    if (topic.state === 'subscribed') return
    if (topic.state === 'idle') {
      if (!this.pubsub.canSubscribe(topic.key)) throw unavailable('the subscription connection to Redis is not up')
      this.#subscribe([topic])
    }
    const waitMs = this.#context.waitMs
    await new Promise<void>((resolve, reject) => {
      const waiter = {
        resolve: () => { clearTimeout(timer); resolve() },
        reject: (err: Error) => { clearTimeout(timer); reject(err) }
      }
      const timer = setTimeout(() => {
        topic.waiters = topic.waiters.filter((other) => other !== waiter)
        reject(unavailable(`the subscription to Redis was not ready within ${waitMs} ms`))
      }, waitMs)
      topic.waiters.push(waiter)
    })
  }

  /** Rejects every waiting call and forgets the topics (the connections are the engine's to quit). */
  close (): void {
    this.#isClosed = true
    for (const topic of this.#topics.values()) {
      topic.generation++
      settle(topic, new EngineError('the Redis engine is closed'))
    }
    this.#topics.clear()
  }

  message (key: string, text: string): void {
    const topic = this.#topics.get(key)
    const message = topic === undefined ? undefined : decode(text)
    // A channel with history publishes with an id, one without never does: anything
    // else was written to Redis by someone else.
    if (topic === undefined || message === undefined || (message.id === undefined) !== (topic.history === undefined)) return
    // Not subscribed, as far as the topic knows: a subscription left over from an attempt
    // that failed (one master refused while another confirmed, a confirmation after its
    // timeout) can still hear. Delivering would move the position past what the outage
    // missed; the next subscribe's catch-up reads this message back from the stream.
    if (topic.state === 'idle') return
    if (topic.merge === undefined) {
      // The message names the entry before it: another one than this instance delivered
      // last means it missed something, or hears a writer the stream does not follow (a
      // woken master's entries, relayed to its shard). Catch up from the stream instead.
      if (follows(topic, message)) deliver(topic, message)
      else this.#recover(topic, message)
    } else if (topic.merge.heldCount < this.#context.maxHeld) {
      topic.merge.hold(message)
    } else {
      this.#giveUpHold(topic, message)
    }
  }

  lost (keys: readonly string[] | undefined): void {
    const list = keys === undefined ? [...this.#topics.values()] : keys.flatMap((key) => this.#topics.get(key) ?? [])
    for (const topic of list) {
      topic.generation++
      topic.state = 'idle'
      // What was held is read again by the next catch-up, from the same position.
      topic.merge = undefined
      settle(topic, unavailable('the subscription to Redis was lost'))
    }
  }

  ready (): void {
    if (this.#isClosed) return
    const list = [...this.#topics.values()].filter((topic) => topic.state === 'idle' && this.pubsub.canSubscribe(topic.key))
    if (list.length > 0) this.#subscribe(list)
  }

  #subscribe (list: Topic[]): void {
    const generations = list.map((topic) => topic.generation)
    // A topic that delivered anything was subscribed, even if the attempt that delivered
    // failed (it may have been confirmed on one master and refused on another): what
    // follows must join what was delivered, by a catch-up or a reported gap.
    const resubscribes = list.map((topic) => topic.wasSubscribed || topic.hasDelivered)
    list.forEach((topic, i) => {
      topic.state = 'subscribing'
      // Hold from before the subscription: messages in the same read as its
      // confirmation reach us before the promise below continues.
      const canCatchUp = resubscribes[i] && topic.history !== undefined && topic.lastId !== undefined
      topic.merge = canCatchUp ? new ReplayMerge<EngineMessage>(compareIds) : undefined
    })
    this.pubsub.subscribe(list.map((topic) => topic.key)).then(
      async () => await Promise.all(list.map(async (topic, i) => await this.#subscribed(topic, generations[i], resubscribes[i]))),
      (err: Error) => {
        list.forEach((topic, i) => {
          if (topic.generation !== generations[i]) return
          topic.state = 'idle'
          topic.merge = undefined
          settle(topic, err)
        })
      }
    ).catch((err: unknown) => process.emitWarning(err as Error))
  }

  /**
   * The subscription is confirmed: from here on this instance hears every publish.
   * After a resubscribe it first delivers what it missed meanwhile, or reports a gap
   * when that cannot be read (no history, or no position to read from).
   */
  async #subscribed (topic: Topic, generation: number, isResubscribe: boolean): Promise<void> {
    const isCurrent = (): boolean => topic.generation === generation && this.#topics.get(topic.key) === topic
    if (!isCurrent()) return
    topic.wasSubscribed = true
    if (topic.merge !== undefined) await catchUp(topic, isCurrent, this.#context)
    else if (isResubscribe) reportGap(topic)
    else if (topic.history !== undefined) this.#locate(topic, isCurrent)
    if (!isCurrent()) return
    topic.state = 'subscribed'
    settle(topic)
  }

  /**
   * Records where a new topic's stream stood once it was subscribed, so a catch-up
   * after an outage knows where to start even if nothing was delivered here before.
   * Set only after a sync, so no message up to that position is still on its way.
   */
  #locate (topic: Topic, isCurrent: () => boolean): void {
    this.#context.position(topic).then(async (id) => {
      await this.#context.sync(topic)
      if (isCurrent()) advance(topic, id)
    }).catch(() => {})
  }

  /** Holds `message` and reads what the stream has after the last id delivered (a catch-up, as after a resubscribe). */
  #recover (topic: Topic, message: EngineMessage): void {
    const generation = topic.generation
    const merge = new ReplayMerge<EngineMessage>(compareIds)
    merge.hold(message)
    topic.merge = merge
    const isCurrent = (): boolean => topic.generation === generation && this.#topics.get(topic.key) === topic
    catchUp(topic, isCurrent, this.#context).catch((err: unknown) => process.emitWarning(err as Error))
  }

  /** The hold passed its bound: stop holding, report the gap, deliver what was held and go live. */
  #giveUpHold (topic: Topic, message: EngineMessage): void {
    const merge = topic.merge as ReplayMerge<EngineMessage>
    topic.merge = undefined
    reportGap(topic)
    for (const held of merge.release(undefined)) deliver(topic, held)
    deliver(topic, message)
  }
}
