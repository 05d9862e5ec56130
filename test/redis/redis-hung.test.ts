/**
 * A hung Redis: the test's own redis-server frozen with SIGSTOP (its sockets stay
 * open, nothing answers, nothing is reset). Publishes and replay reads must not wait
 * forever nor pile up: they reject with TYPED_SSE_ENGINE_UNAVAILABLE within
 * `commandTimeoutMs`, later ones at once; thawed (SIGCONT), the engine serves again.
 */
import t from 'tap'
import { redisEngine } from '../../lib/redis.js'
import { sleep, waitUntil, withTimeout } from '../helpers/app.js'
import { Recorder, REDIS_MISSING, startRedis } from '../helpers/redis.js'
import { readAll } from '../helpers/engine.js'

const ENGINE_UNAVAILABLE = 'TYPED_SSE_ENGINE_UNAVAILABLE'
const HISTORY = { maxEvents: 1000, maxAgeMs: false } as const
const COMMAND_TIMEOUT_MS = 300
/** Publishing while Redis is frozen: one every TICK_MS for FROZEN_TICKS ticks. */
const TICK_MS = 10
const FROZEN_TICKS = 150

if (REDIS_MISSING !== undefined) t.comment(REDIS_MISSING)

t.test('a frozen Redis: publishes and reads reject with the coded error within commandTimeoutMs and pending work stays bounded; thawed, delivery resumes', { skip: REDIS_MISSING }, async (t) => {
  const redis = await startRedis(t)
  const engine = redisEngine({ url: redis.url, commandTimeoutMs: COMMAND_TIMEOUT_MS })
  t.teardown(async () => await engine.close())
  await engine.ready?.()
  const seen = new Recorder()
  const channel = engine.channel('scores', HISTORY, seen)
  const first = await channel.publish({ event: 'score', data: '0' }) as string
  await waitUntil(() => seen.messages.length === 1, 2000, 'the first message delivered')
  t.equal(engine.health?.(), 'connected')

  redis.signal('SIGSTOP')
  t.teardown(() => { try { redis.signal('SIGCONT') } catch {} })
  let pending = 0
  let maxPendingLate = 0
  const codes: Array<string | undefined> = []
  const track = async (call: Promise<unknown>): Promise<void> => {
    pending++
    await call.then(() => { codes.push('resolved') }, (err: { code?: string }) => { codes.push(err.code) }).finally(() => { pending-- })
  }
  const startedAt = Date.now()
  const burst = [
    ...Array.from({ length: 100 }, async (_, i) => await track(channel.publish({ event: 'score', data: String(i + 1) }))),
    track(readAll(channel, first))
  ]
  await withTimeout(Promise.all(burst), COMMAND_TIMEOUT_MS + 2000, 'calls made while Redis is frozen')
  const elapsed = Date.now() - startedAt
  t.ok(elapsed >= COMMAND_TIMEOUT_MS - 50 && elapsed < COMMAND_TIMEOUT_MS + 1500, `settled after the command timeout (${elapsed} ms)`)
  t.same([...new Set(codes)], [ENGINE_UNAVAILABLE], `all 101 calls rejected with ${ENGINE_UNAVAILABLE}`)
  await waitUntil(() => engine.health?.() === 'reconnecting', 1000, 'health tells a readiness probe')

  // Still frozen: new calls fail at once instead of queueing behind the hung server.
  const late: Array<Promise<void>> = []
  for (let tick = 0; tick < FROZEN_TICKS; tick++) {
    late.push(track(channel.publish({ event: 'score', data: String(1000 + tick) })))
    maxPendingLate = Math.max(maxPendingLate, pending)
    await sleep(TICK_MS)
  }
  await withTimeout(Promise.all(late), COMMAND_TIMEOUT_MS + 2000, 'late calls')
  t.ok(maxPendingLate <= Math.ceil(COMMAND_TIMEOUT_MS / TICK_MS) + 1, `at most one timeout's worth of calls pending (peak ${maxPendingLate} of ${FROZEN_TICKS})`)
  t.equal(pending, 0, 'nothing pending')
  t.ok(codes.every((code) => code === ENGINE_UNAVAILABLE), 'every call made while frozen rejected with the code')

  redis.signal('SIGCONT')
  const deadline = Date.now() + 15_000
  let id: string | undefined
  while (id === undefined) {
    id = await channel.publish({ event: 'score', data: 'back' }).catch((err: { code?: string }) => {
      if (err.code !== ENGINE_UNAVAILABLE || Date.now() > deadline) throw err
      return undefined
    })
    if (id === undefined) await sleep(50)
  }
  await waitUntil(() => seen.messages.some((message) => message.id === id), 5000, 'the message published after the thaw delivered')
  t.equal(engine.health?.(), 'connected', 'healthy again')
})

t.test('many commands timing out together on a frozen Redis reset the connection once (no listener piled up per command)', { skip: REDIS_MISSING }, async (t) => {
  const redis = await startRedis(t)
  const engine = redisEngine({ url: redis.url, commandTimeoutMs: COMMAND_TIMEOUT_MS })
  t.teardown(async () => await engine.close())
  await engine.ready?.()
  const channel = engine.channel('scores', HISTORY, new Recorder())
  await channel.publish({ event: 'score', data: '0' })
  const warnings: string[] = []
  const onWarning = (warning: Error): void => { warnings.push(`${warning.name}: ${warning.message}`) }
  process.on('warning', onWarning)
  t.teardown(() => { process.off('warning', onWarning) })
  redis.signal('SIGSTOP')
  t.teardown(() => { try { redis.signal('SIGCONT') } catch {} })
  // Sent together, so they time out together while the socket to the frozen server is still closing.
  const results = await Promise.allSettled(Array.from({ length: 30 }, async (_, i) => await channel.publish({ event: 'score', data: String(i) })))
  redis.signal('SIGCONT')
  await sleep(200)
  t.ok(results.every((result) => result.status === 'rejected'), '30 publishes rejected')
  t.same(warnings.filter((warning) => warning.includes('MaxListeners')), [], 'no MaxListenersExceededWarning')
})
