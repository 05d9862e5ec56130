/**
 * The Redis catch-up (lib/redis/catch-up.ts) on its own, without a server: a topic
 * whose subscription came back reads what it missed, then waits for a round trip on
 * the subscription before it lets go of the live messages it holds. Messages published
 * before (or just after) the read may still be on their way to this instance through
 * the subscription; the round trip brings them into the hold. The end-to-end runs
 * against a real redis-server are in redis-catch-up.test.ts.
 */
import t from 'tap'
import type { EngineMessage } from '../../lib/engine/engine.js'
import { ReplayMerge } from '../../lib/core/merge.js'
import { catchUp, type CatchUpContext } from '../../lib/engine/redis/catch-up.js'
import type { HeardMessage } from '../../lib/engine/redis/codec.js'
import { compareIds } from '../../lib/engine/redis/ids.js'
import { newTopic } from '../../lib/engine/redis/topic.js'
import { Recorder } from '../helpers/redis.js'

/** A message as the publish script chains it: its publish id and the entry before it. */
function heard (seq: number): HeardMessage {
  return { id: `${seq}-0`, event: 'score', data: String(seq), publishId: `p.${seq}`, previous: `p.${seq - 1}`, previousId: `${seq - 1}-0` }
}

t.test('after its read, a catch-up waits for the subscription round trip: what that brings is joined, each message once, in order', async (t) => {
  const topic = newTopic('sse:scores', { maxEvents: 100, maxAgeMs: false })
  const recorder = new Recorder()
  topic.listeners.add(recorder)
  // Delivered 1 before the outage; 2 and 3 were published while it lasted.
  topic.lastId = '1-0'
  topic.lastPublishId = 'p.1'
  topic.lastEntryId = '1-0'
  topic.merge = new ReplayMerge<EngineMessage>(compareIds)
  const calls: string[] = []
  const context: CatchUpContext = {
    whenCommandsReady: async () => true,
    contains: async () => true,
    read: async (_topic, after) => {
      calls.push(`read after ${after}`)
      return { status: 'ok', messages: [heard(2), heard(3)] }
    },
    sync: async () => {
      calls.push('sync')
      // Heard on the subscription before the round trip's reply: 3 (in the read too)
      // and 4 (published right after the read).
      topic.merge?.hold(heard(3))
      topic.merge?.hold(heard(4))
    },
    waitMs: 1000
  }
  await catchUp(topic, () => true, context)
  t.same(calls, ['read after 1-0', 'sync'], 'one read, then the round trip')
  t.same(recorder.ids, ['2-0', '3-0', '4-0'], 'what was missed, then what the round trip brought, once each')
  t.equal(recorder.gaps, 0, 'no gap')
  t.equal(topic.merge, undefined, 'live again: nothing held')
  t.equal(topic.lastId, '4-0', 'the position moved to the last delivered')
})
