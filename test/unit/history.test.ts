/**
 * The in-memory history: a ring bounded by count and age, compared with a plain
 * array model over random operation sequences, and the memory engine's ids.
 */
import fc from 'fast-check'
import t from 'tap'
import { memoryEngine, type EngineMessage } from '../../lib/index.js'
import { resolveHistory, RingHistory } from '../../lib/engine/history.js'
import { sleep, thrown } from '../helpers/app.js'
import { readAll } from '../helpers/engine.js'

function message (position: number): EngineMessage {
  return { id: `m${position}`, event: 'e', data: `data: ${position}\n` }
}


/** A listener for engine channels whose deliveries a test does not look at. */
const ignore = { deliver () {}, gap () {} }

t.test('readAfter matches a model: everything after the id, or evicted when one after it is gone', async (t) => {
  fc.assert(fc.property(
    fc.integer({ min: 1, max: 20 }),
    fc.array(fc.integer({ min: 1, max: 5 }), { maxLength: 60 }),
    fc.integer({ min: 0, max: 400 }),
    (maxEvents, gaps, probe) => {
      const ring = new RingHistory({ maxEvents, maxAgeMs: false })
      const all: number[] = []
      let position = 0
      for (const gap of gaps) {
        position += gap
        all.push(position)
        ring.append(position, message(position))
      }
      const kept = all.slice(-maxEvents)
      const evicted = all.slice(0, all.length - kept.length)
      const result = ring.readAfter(probe)
      if (evicted.some((p) => p > probe)) return result.status === 'evicted'
      return result.status === 'ok' &&
        JSON.stringify(result.messages.map((m) => m.id)) === JSON.stringify(kept.filter((p) => p > probe).map((p) => `m${p}`))
    }
  ), { numRuns: 500 })
  t.pass('500 random histories agree with the model')
})

t.test('the ring gives back the event and data of every retained message exactly as appended (any UTF-16 text, short and long, any event name)', async (t) => {
  // UTF-16 units at random (lone surrogates included), sometimes long: whatever the ring
  // keeps a message's data as, a text UTF-8 cannot carry as it is must come back unchanged.
  const text = fc.oneof(
    fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 40 }).map((units) => String.fromCharCode(...units)),
    fc.string({ maxLength: 80 }),
    fc.tuple(fc.integer({ min: 1, max: 70_000 }), fc.constantFrom('x', 'é', '€', '😀')).map(([length, char]) => char.repeat(length))
  )
  fc.assert(fc.property(
    fc.integer({ min: 1, max: 12 }),
    fc.array(fc.tuple(fc.constantFrom('e', 'token', 'émoji 😀'), text), { maxLength: 40 }),
    (maxEvents, appended) => {
      const ring = new RingHistory({ maxEvents, maxAgeMs: false })
      appended.forEach(([event, data], i) => ring.append(i + 1, { id: `m${i + 1}`, event, data }))
      const kept = appended.slice(-maxEvents).map(([event, data]) => ({ event, data }))
      const result = ring.readAll()
      return result.status === 'ok' && result.messages.length === kept.length &&
        result.messages.every((m, i) => m.event === kept[i].event && m.data === kept[i].data)
    }
  ), { numRuns: 300 })
  t.pass('300 random histories give back what they kept')
})

t.test('readAll returns every retained message, oldest first', async (t) => {
  const ring = new RingHistory({ maxEvents: 3, maxAgeMs: false })
  for (let p = 1; p <= 5; p++) ring.append(p, message(p))
  const result = ring.readAll()
  t.same(result.status === 'ok' ? result.messages.map((m) => m.id) : result.status, ['m3', 'm4', 'm5'])
  t.equal(ring.size, 3)
})

t.test('messages older than maxAgeMs are evicted', async (t) => {
  const ring = new RingHistory({ maxEvents: 100, maxAgeMs: 30 })
  ring.append(1, message(1))
  await sleep(50)
  ring.append(2, message(2))
  const result = ring.readAfter(0)
  t.equal(result.status, 'evicted', 'message 1 aged out')
  const after = ring.readAfter(1)
  t.same(after.status === 'ok' ? after.messages.map((m) => m.id) : after.status, ['m2'])
})

t.test('history options: defaults, bounds and coded errors', async (t) => {
  t.equal(resolveHistory(undefined), undefined)
  t.equal(resolveHistory(false), undefined)
  t.same(resolveHistory(true), { maxEvents: 1000, maxAgeMs: false })
  t.same(resolveHistory({ maxAgeMs: 60_000 }), { maxEvents: 1000, maxAgeMs: 60_000 })
  for (const bad of [{ maxEvents: 0 }, { maxEvents: 1.5 }, { maxAgeMs: 0 }, { maxAgeMs: Number.NaN }]) {
    t.equal(thrown(() => resolveHistory(bad))?.code, 'TYPED_SSE_INVALID_OPTION', JSON.stringify(bad))
  }
})

t.test('memory engine ids: ordered across channels, unknown when from another process or malformed', async (t) => {
  const engine = memoryEngine()
  const history = { maxEvents: 10, maxAgeMs: false as const }
  const a = engine.channel('a', history, ignore)
  const b = engine.channel('b', history, ignore)
  const idA = await a.publish({ event: 'e', data: 'data: 1\n' }) as string
  const idB = await b.publish({ event: 'e', data: 'data: 2\n' }) as string
  await a.publish({ event: 'e', data: 'data: 3\n' })
  const fromB = await readAll(a, idB)
  t.same(fromB.status === 'ok' ? fromB.messages.map((m) => m.data) : fromB.status, ['data: 3\n'],
    'an id of channel b positions a replay of channel a: one counter orders them all')
  const other = memoryEngine().channel('a', history, ignore)
  const foreign = await other.publish({ event: 'e', data: 'data: x\n' }) as string
  t.not(foreign, idA, 'another engine (another process) never gives the same id')
  for (const id of [foreign, 'garbage', '', `${idA}0000000000000000`, idA.replace(/_\d+$/, '_999')]) {
    t.equal((await readAll(a, id)).status, 'unknown', `unknown: ${JSON.stringify(id)}`)
  }
  a.close(); b.close(); other.close()
})

t.test('two instances sharing one memory engine share its channels', async (t) => {
  const engine = memoryEngine()
  const history = { maxEvents: 10, maxAgeMs: false as const }
  const seenA: string[] = []
  const seenB: string[] = []
  const a = engine.channel('news', history, { deliver: (m) => seenA.push(m.data), gap () {} })
  const b = engine.channel('news', history, { deliver: (m) => seenB.push(m.data), gap () {} })
  await a.publish({ event: 'e', data: 'data: 1\n' })
  await b.publish({ event: 'e', data: 'data: 2\n' })
  t.same(seenA, ['data: 1\n', 'data: 2\n'])
  t.same(seenB, ['data: 1\n', 'data: 2\n'], 'each delivered once, in one order')
  a.close()
  await b.publish({ event: 'e', data: 'data: 3\n' })
  t.same(seenA.length, 2, 'a closed channel gets nothing more')
  t.same(seenB.length, 3)
  b.close()
})
