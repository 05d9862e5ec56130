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
import { deliver, follows, newTopic } from '../../lib/engine/redis/topic.js'
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

t.test('a message follows the last delivered only if it names both its id and its publish id: one publish run by two masters at two ids forks the chain', async (t) => {
  const topic = newTopic('sse:scores', { maxEvents: 100, maxAgeMs: false })
  t.ok(follows(topic, heard(1)), 'nothing delivered yet: anything follows')
  deliver(topic, { ...heard(7), publishId: 'twice.1' })
  t.ok(follows(topic, { ...heard(8), previous: 'twice.1', previousId: '7-0' }), 'the successor\'s next names its run of the publish')
  t.notOk(follows(topic, { ...heard(9), previous: 'twice.1', previousId: '5-0' }), 'the woken master\'s next names its own run of it, at another id')
  t.notOk(follows(topic, { ...heard(9), previous: 'p.6', previousId: '7-0' }), 'the same id for another publish (both masters make ids from one clock)')
  t.notOk(follows(topic, { ...heard(9), previous: '-', previousId: undefined }), 'the first entry of a stream, after something was delivered')
  t.ok(follows(topic, { id: '9-0', event: 'score', data: '9', publishId: 'p.9' }), 'a message read from the stream says nothing of the chain')
  topic.lastPublishId = undefined
  t.ok(follows(topic, { ...heard(9), previous: 'twice.1', previousId: '5-0' }), 'after a gap the chain starts again')
})
