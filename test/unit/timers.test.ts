/**
 * Far deadlines: Node fires a timer set past 2^31-1 ms after 1 ms, so a 30-day
 * `endsAt` or a 25-day `maxDurationMs` must still keep the stream open, and absurd
 * option values are refused at register time with a coded option error.
 */
import t from 'tap'
import { defineEvents, Type } from '../../lib/index.js'
import { resolvePluginOptions } from '../../lib/http/options.js'
import { MAX_TIMER_MS, runAt } from '../../lib/core/timers.js'
import { buildApp, sleep, thrown } from '../helpers/app.js'
import { openStream } from '../helpers/client.js'

const events = defineEvents({ n: Type.Integer() })
const DAY_MS = 24 * 3600 * 1000

t.test('a 30-day endsAt and a 25-day maxDurationMs keep the stream open (no misfire after 1 ms)', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  app.get('/ends', (_request, reply) => { reply.sse(events, { endsAt: Date.now() + 30 * DAY_MS }).send('n', 1) })
  app.get('/lasts', (_request, reply) => { reply.sse(events, { maxDurationMs: 25 * DAY_MS }).send('n', 1) })
  const origin = await start()
  const ends = await openStream(t, `${origin}/ends`)
  const lasts = await openStream(t, `${origin}/lasts`)
  await ends.events(1)
  await lasts.events(1)
  await sleep(300)
  t.equal(app.sse.stats().openStreams, 2, 'both still open after 300 ms')
  t.equal(app.sse.stats().closed.duration, 0, 'none closed for its duration')
})

t.test('runAt reaches a far deadline through a chain of timers', async (t) => {
  const calls: string[] = []
  const near = runAt(Date.now() + 20, () => calls.push('near'))
  const far = runAt(Date.now() + MAX_TIMER_MS + 1000, () => calls.push('far'))
  const past = runAt(Date.now() - 1000, () => calls.push('past'))
  await sleep(100)
  t.same(calls.sort(), ['near', 'past'], 'the near and the past deadlines ran; the far one waits')
  far.cancel()
  near.cancel()
  past.cancel()
})

t.test('runAt: each link of the chain that ends before the deadline arms the next; only the last runs the callback', async (t) => {
  // Weeks cannot pass in a test: the clock and setTimeout are stood in for while runAt
  // arms its links, and each link is fired by hand at the time it would have fired.
  const realNow = Date.now
  const realSetTimeout = globalThis.setTimeout
  let now = 1_000_000
  const links: Array<{ callback: () => void, delayMs: number }> = []
  Date.now = () => now
  globalThis.setTimeout = ((callback: () => void, delayMs: number) => {
    links.push({ callback, delayMs })
    return realSetTimeout(() => {}, 0).unref()
  }) as typeof setTimeout
  let calls = 0
  try {
    runAt(now + 2 * MAX_TIMER_MS + 5000, () => calls++)
    for (const expected of [MAX_TIMER_MS, MAX_TIMER_MS, 5000]) {
      const link = links.shift()
      t.equal(link?.delayMs, expected, `a link of ${expected} ms`)
      t.equal(calls, 0, 'the callback waits')
      now += expected
      link?.callback()
    }
  } finally {
    Date.now = realNow
    globalThis.setTimeout = realSetTimeout
  }
  t.equal(calls, 1, 'the last link ran the callback, once')
  t.equal(links.length, 0, 'and armed nothing more')
})

t.test('absurd durations are a coded option error (a RangeError) at register time', async (t) => {
  for (const [name, value] of [
    ['heartbeatMs', 200 * DAY_MS],
    ['closeGraceMs', 30 * DAY_MS],
    ['heartbeatMs', -1],
    ['maxDurationMs', 2 ** 60]
  ] as Array<[string, number]>) {
    const err = thrown(() => resolvePluginOptions({ [name]: value }))
    t.equal(err?.code, 'TYPED_SSE_INVALID_OPTION', `${name}: ${value}`)
    t.ok(err instanceof RangeError, 'a RangeError')
  }
  const typeErr = thrown(() => resolvePluginOptions({ heartbeatMs: '10' as unknown as number }))
  t.equal(typeErr?.code, 'TYPED_SSE_INVALID_OPTION')
  t.ok(typeErr instanceof TypeError, 'a wrong type is a TypeError')
  const { app } = await buildApp(t)
  t.equal(thrown(() => app.sse.channel('rooms', events, { idleMs: 40 * DAY_MS }))?.code, 'TYPED_SSE_INVALID_OPTION', 'idleMs too')
})
