/**
 * A channel's fan-out: a message is decoded and framed once for this instance, and the
 * one Buffer is written to every subscriber in a corked batch. One subscriber's failure
 * (a filter that throws, a stream that cannot take the write) ends that subscriber alone.
 */
import { findEvent, parsePayload, type EventCatalog, type SseMessage } from '../core/catalog.js'
import { JOIN_EVENT, LEAVE_EVENT, REMOVE_EVENT } from '../core/control.js'
import { ForeignEventError, SubscriberError } from '../core/errors.js'
import { controlFrame, describe, eventText, eventTextWithSafeId } from '../core/frame.js'
import { isAfter, type ComparePositions } from '../core/merge.js'
import { kCork, kEnd, kWrite } from '../core/symbols.js'
import type { EngineMessage } from '../engine/engine.js'
import type { CorkableSocket } from '../stream/adapters/index.js'
import type { SseStream } from '../stream/stream.js'
import { stateKey, type ResolvedState } from './state.js'

/** What the fan-out and the channel use of a subscriber's replay (replay.ts). */
export interface HeldReplay {
  /** Holds a live message, within the stream's queue limit and policy. */
  hold (message: EngineMessage): void
  /** The held messages: the channel's end goes here whatever the limit. */
  readonly merge: { hold (message: EngineMessage): void }
  /** The engine reported a gap during the replay: resync once it is live. */
  isGapped: boolean
}

/** A channel's record of one subscribed stream. */
export interface Subscriber {
  readonly stream: SseStream<any>
  readonly filter: ((message: SseMessage<any>) => boolean) | undefined
  /** Gets the channel's state instead of a bare resync (and when it has no Last-Event-ID). */
  readonly isSnapshot: boolean
  /** While this subscriber's replay runs (and is written): it holds the live messages. */
  replay: HeldReplay | undefined
  /**
   * After a replay: the last position the client has. An instance whose delivery lags
   * the one the client left (Redis) may still deliver messages up to it; they are
   * skipped until the first one after it.
   */
  cursor: string | undefined
}

/** A message decoded for this instance: its frame, and its payload for filters. */
export interface Decoded {
  readonly frame: Buffer
  readonly message: SseMessage<any>
  /** A control event of the channel's (`sse:remove`, `sse:join`, `sse:leave`): no filter applies. */
  readonly isControl?: boolean
  /** What a `'coalesce'` queue replaces it by: the channel's name and the state key. */
  readonly coalesceKey?: string
}

/**
 * A catalog event decoded: its message object is made when a filter (or the state) first
 * asks for it, once, not for every publish (most subscribers have no filter).
 */
class DecodedEvent implements Decoded {
  #message: SseMessage<any> | undefined

  constructor (readonly frame: Buffer, readonly event: string, readonly data: unknown, readonly id: string | undefined, readonly coalesceKey: string | undefined) {}

  get message (): SseMessage<any> {
    return this.#message ??= { event: this.event, data: this.data, id: this.id } as SseMessage<any>
  }
}

/**
 * Publish calls running now (nested when a delivery publishes): a delivery made inside
 * one comes from this instance's own publish (the in-memory engine delivers at once).
 */
let publishing = 0

/** A publish of this instance begins: what is delivered until {@link endPublish} is its own. */
export function beginPublish (): void {
  publishing++
}

/** The publish begun by {@link beginPublish} returned. */
export function endPublish (): void {
  publishing--
}

/**
 * The sockets of one batch (a tick's local publishes, or a turn's engine messages), in a
 * list kept from batch to batch: a list grown to 200 sockets every tick, then dropped, made
 * as much garbage per publish as the publish did. (Emptied by writing `undefined`, not by
 * `length = 0`, which gives the storage up.)
 */
interface CorkedBatch {
  readonly sockets: Array<CorkableSocket | undefined>
  size: number
}

/**
 * Sockets corked by deliveries of this tick (local publishes) and of this turn (engine
 * messages): one flush per batch for every channel. With one reader per channel, a
 * scheduled callback per publish cost as much as the write it batched.
 */
let corkedThisTick: CorkedBatch | undefined
let corkedThisTurn: CorkedBatch | undefined

/** An emptied batch, for the next; taken only once emptied, so a batch begun while one is uncorked has its own. */
let spareBatch: CorkedBatch | undefined

function takeBatch (): CorkedBatch {
  const batch = spareBatch ?? { sockets: [], size: 0 }
  spareBatch = undefined
  return batch
}

function uncorkBatch (batch: CorkedBatch): void {
  const { sockets } = batch
  for (let i = 0; i < batch.size; i++) {
    const socket = sockets[i] as CorkableSocket
    sockets[i] = undefined
    socket.uncork()
  }
  batch.size = 0
  spareBatch = batch
}

function uncorkThisTick (): void {
  const batch = corkedThisTick as CorkedBatch
  corkedThisTick = undefined
  uncorkBatch(batch)
}

/**
 * Uncorks in the event loop's next check phase: after the immediates queued so far
 * (a publisher that awaited its acknowledgement and yields a turn before its next
 * publish) and the I/O between.
 */
function uncorkAfterTurn (): void {
  const batch = corkedThisTurn as CorkedBatch
  corkedThisTurn = undefined
  setImmediate(uncorkBatch, batch)
}

/** Uncorks `socket` at the end of this tick (a local publish) or a loop turn later (an engine's message). */
function uncorkLater (socket: CorkableSocket, isLocal: boolean): void {
  let batch: CorkedBatch
  if (isLocal) {
    if (corkedThisTick === undefined) process.nextTick(uncorkThisTick)
    batch = corkedThisTick ??= takeBatch()
  } else {
    if (corkedThisTurn === undefined) setImmediate(uncorkAfterTurn)
    batch = corkedThisTurn ??= takeBatch()
  }
  batch.sockets[batch.size++] = socket
}

/** Resolves with `value` after the event loop ran I/O once. */
export function afterIo<T> (value: T): Promise<T> {
  return new Promise((resolve) => setImmediate(resolve, value))
}

/** What a fan-out needs of its channel. */
export interface FanoutContext {
  readonly name: string
  readonly catalog: EventCatalog<any>
  readonly compare: ComparePositions
  readonly log: (err: unknown, message: string) => void
  /** The channel's keyed state: a keyed message's key names it in a `'coalesce'` queue. */
  readonly state: ResolvedState | undefined
  /** Forgets a subscriber whose write failed (its stream is ended here). */
  readonly detach: (stream: SseStream<any>) => void
  /** The engine's ids cannot break a frame (engine.ts, `withWireSafeIds`): not checked per message. */
  readonly wireSafeIds: boolean
}

/**
 * Encodes once, writes to each: one per channel.
 *
 * @example
 * const fanout = new Fanout({ name, catalog, compare, log, detach, wireSafeIds: true })
 * fanout.deliver(subscribers, message)
 */
export class Fanout {
  /** A write of the last delivery was queued behind a slow client. */
  isBackedUp = false
  readonly #context: FanoutContext
  /** The context's catalog and state, read by every decode: here, not one object further. */
  readonly #catalog: EventCatalog<any>
  readonly #state: ResolvedState | undefined
  readonly #wireSafeIds: boolean
  /** Foreign events already logged, so a rolling deploy logs each once. */
  #foreign: Set<string> | undefined

  constructor (context: FanoutContext) {
    this.#context = context
    this.#catalog = context.catalog
    this.#state = context.state
    this.#wireSafeIds = context.wireSafeIds
  }

  /**
   * Writes a live message to every subscriber, in a corked batch; a replaying
   * subscriber holds it instead.
   */
  deliver (subscribers: ReadonlyMap<unknown, Subscriber>, message: EngineMessage): void {
    const decoded = this.decode(message)
    // Node schedules a flush (a nextTick) for every write to an uncorked socket; corked
    // here and uncorked together, every publish of this tick, on every channel, costs
    // one (uncorkLater). A message heard from the engine (another instance's, or this one's through Redis) is flushed a turn of the
    // event loop later instead: a publisher awaiting each publish, whose acknowledgement
    // arrives with this message, sends its next one first (also when it yields a turn
    // before it), so that round trip runs while these writes do instead of after them;
    // and messages heard meanwhile join the corked batch, one write per socket for all.
    const isLocal = publishing > 0
    // The map, not an iterator made by the caller: iterated here, its iterator is not kept.
    for (const subscriber of subscribers.values()) {
      if (subscriber.replay !== undefined) {
        subscriber.replay.hold(message)
        continue
      }
      if (decoded === undefined) continue
      if (subscriber.cursor !== undefined) {
        if (!isAfter(message, subscriber.cursor, this.#context.compare)) continue
        subscriber.cursor = undefined
      }
      // Scheduled as it is corked, so a throw below cannot leave a socket corked.
      const socket = subscriber.stream[kCork]()
      if (socket !== undefined) uncorkLater(socket, isLocal)
      this.writeTo(subscriber, decoded)
    }
  }

  /**
   * Writes one message to one subscriber; its failure (filter, write) ends that
   * subscriber alone.
   *
   * @returns false when the write was queued behind a slow client (or the stream closed)
   */
  writeTo (subscriber: Subscriber, decoded: Decoded): boolean {
    try {
      if (subscriber.filter !== undefined && decoded.isControl !== true && subscriber.filter(decoded.message) !== true) return true
      if (subscriber.stream[kWrite](decoded.frame, 1, decoded.coalesceKey)) return true
      if (subscriber.stream.isOpen) this.isBackedUp = true
    } catch (err) {
      this.#failSubscriber(subscriber, err)
    }
    return false
  }

  /** The frame and payload of a message, or `undefined` when this catalog cannot take it. */
  decode (message: EngineMessage): Decoded | undefined {
    if (message.event === REMOVE_EVENT || message.event === JOIN_EVENT || message.event === LEAVE_EVENT) return this.#decodeControl(message)
    const compiled = findEvent(this.#catalog, message.event)
    const data = compiled === undefined ? undefined
      : message.payload !== undefined ? message.payload : parsePayload(compiled, message.data)
    if (data === undefined) {
      // Another version of the application (a rolling deploy), or foreign history
      // entries: skipped the same way live and in replay, and said once.
      if (!(this.#foreign ??= new Set()).has(message.event)) {
        const { name } = this.#context
        this.#foreign.add(message.event)
        this.#context.log(new ForeignEventError(name, message.event), `channel "${name}" skipped an event its catalog cannot take`)
      }
      return undefined
    }
    let frame: Buffer
    try {
      frame = Buffer.from(this.#wireSafeIds ? eventTextWithSafeId(message.event, message.data, message.id) : eventText(message.event, message.data, message.id))
    } catch (err) {
      this.#context.log(err, `channel "${this.#context.name}" skipped a message with an id it cannot write`)
      return undefined
    }
    const key = this.#state === undefined ? undefined : stateKey(this.#state, message.event, data)
    return new DecodedEvent(frame, message.event, data, message.id, key === undefined ? undefined : `${this.#context.name}\n${key}`)
  }

  /** A control event of the channel's own (state removal, presence), checked: anyone may write to a Redis. */
  #decodeControl (message: EngineMessage): Decoded | undefined {
    let data: { key?: unknown, id?: unknown, info?: unknown } | undefined
    try {
      data = JSON.parse(message.data)
    } catch {}
    const isValid = data !== null && typeof data === 'object' && (message.event === REMOVE_EVENT ? typeof data.key === 'string' : typeof data.id === 'string')
    if (!isValid) return undefined
    const payload = message.event === REMOVE_EVENT ? { key: data?.key } : message.event === JOIN_EVENT ? { id: data?.id, info: data?.info } : { id: data?.id }
    const frame = controlFrame(message.event as typeof REMOVE_EVENT, payload, message.id)
    const coalesceKey = message.event === REMOVE_EVENT ? `${this.#context.name}\n${payload.key as string}` : undefined
    return { frame, message: { event: message.event, data: payload, id: message.id } as SseMessage<any>, isControl: true, coalesceKey }
  }

  #failSubscriber (subscriber: Subscriber, err: unknown): void {
    this.#context.detach(subscriber.stream)
    const failure = new SubscriberError(this.#context.name, err instanceof Error ? err.message : describe(err), { cause: err })
    subscriber.stream.request.log.error({ err: failure }, failure.message)
    subscriber.stream[kEnd]('error')
  }
}
