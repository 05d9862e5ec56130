/**
 * Catch-up after a resubscribe: what other instances published while this one's
 * subscription was down is read back from the channel's stream and joined with the
 * live messages held meanwhile (lib/merge.ts, the one replay merge). It does not give
 * up silently: the read waits for the command connection and is retried, bounded;
 * when the range truly cannot be read (evicted, a Redis that restarted empty, a start
 * the stream never held, retries exhausted, or the hold overflowed), the channels are
 * told of the gap.
 */
import type { EngineMessage, ReplayResult } from '../engine.js'
import { ReplayMerge } from '../../core/merge.js'
import type { HeardMessage } from './codec.js'
import { compareIds } from './ids.js'
import type { Topic } from './topic.js'
import { deliver, follows, reportGap } from './topic.js'

/** Read attempts of one catch-up before it reports a gap. */
const CATCH_UP_ATTEMPTS = 8
/** Back-off between attempts: doubles from this... */
const FIRST_RETRY_DELAY_MS = 50
/** ...up to this. */
const MAX_RETRY_DELAY_MS = 1000

/** What a catch-up needs of the engine. */
export interface CatchUpContext {
  /** Resolves when the command connection is up, false when `deadline` passed first. */
  whenCommandsReady (deadline: number): Promise<boolean>
  /** Reads the topic's stream after `after`; rejects when Redis cannot answer. */
  read (topic: Topic, after: string): Promise<ReplayResult>
  /** False when the topic's stream never held the entry `id`, or held it for another publish than `publishId` (see scripts.ts). */
  contains (topic: Topic, id: string, publishId: string | undefined): Promise<boolean>
  /** A round trip on the subscription that hears the topic (see PubSub.sync). */
  sync (topic: Topic): Promise<void>
  /** How long one attempt waits for the command connection. */
  readonly waitMs: number
}

async function sleep (ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms).unref())
}

/** Rounds of one catch-up while held messages do not follow the stream (see {@link catchUp}). */
const CATCH_UP_ROUNDS = 5

/**
 * Reads what the topic missed and delivers it, then the held live messages, each once
 * and in order. Returns early, delivering nothing, when `isCurrent()` turns false (the
 * subscription was lost again: the next resubscribe catches up from the same place)
 * or the hold was given up meanwhile (the gap was already reported).
 *
 * A held message is delivered only if it follows the last one delivered (it names that
 * one's id and publish id as its previous, scripts.ts). One that does not is not the stream's
 * (a woken master's, relayed to the shard) when the read covered its id; when it came
 * after the read, another round reads again. Rounds are bounded: what still does not
 * follow is dropped with a reported gap, and if it was the stream's after all, the next
 * live message will not follow either and its catch-up reads it back.
 *
 * @example
 * topic.merge = new ReplayMerge(compareIds)  // before (re)subscribing
 * await catchUp(topic, () => topic.generation === generation, context)
 */
export async function catchUp (topic: Topic, isCurrent: () => boolean, context: CatchUpContext): Promise<void> {
  for (let round = 0; round < CATCH_UP_ROUNDS; round++) {
    const merge = topic.merge
    const after = topic.lastId
    if (merge === undefined || after === undefined) return
    if (round > 0) await sleep(FIRST_RETRY_DELAY_MS * 2 ** (round - 1))
    const isHolding = (): boolean => isCurrent() && topic.merge === merge
    const result = await readMissed(topic, after, isHolding, context)
    if (!isHolding()) return
    topic.merge = undefined
    let readTo: string | undefined
    let candidates: HeardMessage[]
    if (result?.status === 'ok') {
      readTo = result.messages.at(-1)?.id ?? after
      candidates = merge.join(after, result.messages)
    } else {
      reportGap(topic)
      // After a gap the streams start over: the next message starts the chain. What
      // was held is delivered, even with an id at or before the position: after a
      // woken master's entries, the successor's own can carry the same ids.
      topic.lastPublishId = undefined
      candidates = merge.release(undefined)
    }
    const unlinked: HeardMessage[] = []
    for (const message of candidates) {
      if (follows(topic, message)) deliver(topic, message)
      else if (readTo === undefined || message.id === undefined || compareIds(message.id, readTo) > 0) unlinked.push(message)
    }
    if (unlinked.length === 0) return
    const next = new ReplayMerge<EngineMessage>(compareIds)
    for (const message of unlinked) next.hold(message)
    topic.merge = next
  }
  if (topic.merge === undefined || !isCurrent()) return
  topic.merge = undefined
  reportGap(topic)
}

/**
 * The stream after `after`, read once the command connection is up (retried, bounded);
 * undefined when no attempt succeeded or the hold ended.
 */
async function readMissed (topic: Topic, after: string, isHolding: () => boolean, context: CatchUpContext): Promise<ReplayResult | undefined> {
  for (let attempt = 0; attempt < CATCH_UP_ATTEMPTS && isHolding(); attempt++) {
    if (attempt > 0) await sleep(Math.min(FIRST_RETRY_DELAY_MS * 2 ** (attempt - 1), MAX_RETRY_DELAY_MS))
    if (!isHolding() || !await context.whenCommandsReady(Date.now() + context.waitMs)) continue
    try {
      // A position the stream never held (delivered by a master that was failed over,
      // or lost with it) is no place to read from: the entries the new master gave
      // ids around it, or that very id, would be skipped silently. That is a gap. The
      // position is the last message delivered: its publish id tells it apart.
      const read: ReplayResult = await context.contains(topic, after, topic.lastPublishId) ? await context.read(topic, after) : { status: 'unknown' }
      // Every message published before the read has now reached the hold.
      await context.sync(topic)
      return read
    } catch {}
  }
  return undefined
}
