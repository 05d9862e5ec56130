/**
 * Catch-up after a resubscribe: what other instances published while this one's
 * subscription was down is read back from the channel's stream and joined with the
 * live messages held meanwhile (lib/merge.ts, the one replay merge). It does not give
 * up silently: the read waits for the command connection and is retried, bounded;
 * when the range truly cannot be read (evicted, a Redis that restarted empty, retries
 * exhausted, or the hold overflowed), the channels are told of the gap.
 */
import type { ReplayResult } from '../engine.js'
import type { Topic } from './topic.js'
import { deliver, reportGap } from './topic.js'

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
  /** A round trip on the subscription that hears the topic (see Subscriber.sync). */
  sync (topic: Topic): Promise<void>
  /** How long one attempt waits for the command connection. */
  readonly waitMs: number
}

async function sleep (ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms).unref())
}

/**
 * Reads what the topic missed and delivers it, then the held live messages, each once
 * and in order. Returns early, delivering nothing, when `isCurrent()` turns false (the
 * subscription was lost again: the next resubscribe catches up from the same place)
 * or the hold was given up meanwhile (the gap was already reported).
 *
 * @example
 * topic.merge = new ReplayMerge(compareIds)  // before (re)subscribing
 * await catchUp(topic, () => topic.generation === generation, context)
 */
export async function catchUp (topic: Topic, isCurrent: () => boolean, context: CatchUpContext): Promise<void> {
  const merge = topic.merge
  const after = topic.lastId
  if (merge === undefined || after === undefined) return
  const isHolding = (): boolean => isCurrent() && topic.merge === merge
  let result: ReplayResult | undefined
  for (let attempt = 0; attempt < CATCH_UP_ATTEMPTS && isHolding(); attempt++) {
    if (attempt > 0) await sleep(Math.min(FIRST_RETRY_DELAY_MS * 2 ** (attempt - 1), MAX_RETRY_DELAY_MS))
    if (!isHolding() || !await context.whenCommandsReady(Date.now() + context.waitMs)) continue
    try {
      const read = await context.read(topic, after)
      // Every message published before the read has now reached the hold.
      await context.sync(topic)
      result = read
      break
    } catch {}
  }
  if (!isHolding()) return
  topic.merge = undefined
  if (result?.status === 'ok') {
    for (const message of merge.join(after, result.messages)) deliver(topic, message)
    return
  }
  reportGap(topic)
  for (const message of merge.release(undefined)) deliver(topic, message)
}
