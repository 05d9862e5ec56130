/**
 * Replay storms on the Redis engine, against a real, private redis-server: many clients
 * coming back at once from far behind (a deploy that drops every connection of a busy
 * channel), some of which never read. Replays read history a page at a time, a bounded
 * number at once, shared where they meet (lib/replay-reads.ts): every reader gets every
 * event, nobody is told to resync, Redis grows by a bounded amount, publishing goes on.
 * The clients run in child processes (test/helpers/replay-clients.ts), so their parsing
 * does not share the server's event loop.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { defineEvents, Text } from '../../lib/index.js'
import { redisEngine } from '../../lib/redis.js'
import { buildApp, withTimeout } from '../helpers/app.js'
import type { ReplayClientsReport } from '../helpers/replay-clients.js'
import { REDIS_MISSING, startRedis } from '../helpers/redis.js'

const blobs = defineEvents({ blob: Text() })
const MB = 1024 * 1024

/** Forks the clients; killed (by PID, through the handle) at teardown. */
function clients (t: Test, options: { port: number, path: string, count: number, lastEventId: string, paused: boolean, timeLimitMs: number, expectEvents?: number }): ChildProcess {
  const child = fork(fileURLToPath(new URL('../helpers/replay-clients.ts', import.meta.url)), [JSON.stringify(options)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  t.teardown(() => { child.kill('SIGKILL') })
  return child
}

async function reportOf (child: ChildProcess, type: ReplayClientsReport['type'], timeoutMs: number): Promise<ReplayClientsReport> {
  return await withTimeout(new Promise((resolve, reject) => {
    child.on('message', (message: ReplayClientsReport) => { if (message.type === type) resolve(message) })
    child.once('exit', (code) => reject(new Error(`the clients exited (${code}) before reporting ${type}`)))
  }), timeoutMs, `the clients' ${type} report`)
}

/** A field of INFO memory, in bytes. */
async function memoryField (admin: Redis, field: string): Promise<number> {
  const info = await admin.info('memory')
  return Number(new RegExp(`^${field}:(\\d+)`, 'm').exec(info)?.[1])
}

t.test('a storm: 1,000 events of 32 KB, 60 replays from the oldest id that never read and 20 that read: every reader gets every event, no resync, Redis grows < 300 MB, no publish refused', { skip: REDIS_MISSING, timeout: 900_000 }, async (t) => {
  const redis = await startRedis(t)
  const admin = new Redis(redis.url)
  t.teardown(() => { admin.disconnect() })
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, engine: redisEngine({ url: redis.url }) } })
  const channel = app.sse.channel('storm', blobs, { history: { maxEvents: 10_000 } })
  app.get('/storm', async (_request, reply) => { await channel.subscribe(reply.sse(blobs)) })
  await start()
  const port = (app.server.address() as { port: number }).port
  const pad = 'x'.repeat(32 * 1024)
  let seq = 0
  const oldest = await channel.publish('blob', `${++seq}:${pad}`) as string
  while (seq < 1000) await channel.publish('blob', `${++seq}:${pad}`)

  const before = await memoryField(admin, 'used_memory')
  let most = before
  let mostRss = await memoryField(admin, 'used_memory_rss')
  const rssBefore = mostRss
  let isSampling = true
  const sampler = (async () => {
    for (let i = 0; isSampling && i < 100_000; i++) {
      most = Math.max(most, await memoryField(admin, 'used_memory'))
      mostRss = Math.max(mostRss, await memoryField(admin, 'used_memory_rss'))
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  })()

  const stalled = clients(t, { port, path: '/storm', count: 60, lastEventId: oldest, paused: true, timeLimitMs: 0 })
  await reportOf(stalled, 'open', 30_000)
  const readers = clients(t, { port, path: '/storm', count: 20, lastEventId: oldest, paused: false, timeLimitMs: 600_000 })
  const done = reportOf(readers, 'done', 700_000)
  // Publishing goes on while the replays run (small events: the history keeps them all).
  let refused = 0
  const liveEnd = Date.now() + 5000
  for (let i = 0; Date.now() < liveEnd && i < 1000; i++) {
    try {
      await channel.publish('blob', `${seq + 1}:live`)
      seq++
    } catch {
      refused++
    }
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  // The end reaches the readers after everything before it: their streams then close.
  await channel.end().catch(() => { refused++ })
  const report = await done
  isSampling = false
  await sampler
  const peak = await memoryField(admin, 'used_memory_peak')

  t.equal(refused, 0, `no publish refused (${seq - 1000} published during the storm)`)
  if (report.type !== 'done') throw new Error('unreachable')
  const summaries = report.streams
  t.equal(summaries.length, 20)
  for (const [i, summary] of summaries.entries()) {
    t.same(summary, { events: seq - 1, firstSeq: 2, lastSeq: seq, isInOrder: true, resyncs: 0, isEnded: true }, `reader ${i}: every event after the oldest id, in order, no resync`)
  }
  t.ok(most - before < 300 * MB, `Redis used_memory grew by ${((most - before) / MB).toFixed(1)} MB at most (sampled)`)
  t.ok(peak - before < 300 * MB, `used_memory_peak is ${((peak - before) / MB).toFixed(1)} MB above the start of the storm`)
  t.comment(`readers done in ${report.elapsedMs} ms; Redis RSS ${(rssBefore / MB).toFixed(0)} MB before, ${(mostRss / MB).toFixed(0)} MB at most`)
})

t.test('1,000 clients reconnecting at once 10 events behind: all replayed, no resync', { skip: REDIS_MISSING, timeout: 300_000 }, async (t) => {
  const redis = await startRedis(t)
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, engine: redisEngine({ url: redis.url }) } })
  const channel = app.sse.channel('crowd', blobs, { history: true })
  app.get('/crowd', async (_request, reply) => { await channel.subscribe(reply.sse(blobs)) })
  await start()
  const port = (app.server.address() as { port: number }).port
  const pad = 'x'.repeat(1024)
  const ids: string[] = []
  for (let seq = 1; seq <= 20; seq++) ids.push(await channel.publish('blob', `${seq}:${pad}`) as string)

  const crowd = clients(t, { port, path: '/crowd', count: 1000, lastEventId: ids[9], paused: false, timeLimitMs: 240_000, expectEvents: 10 })
  const report = await reportOf(crowd, 'done', 250_000)
  if (report.type !== 'done') throw new Error('unreachable')
  const wrong = report.streams.filter((summary) => summary.events !== 10 || summary.firstSeq !== 11 || summary.lastSeq !== 20 || !summary.isInOrder || summary.resyncs !== 0)
  t.equal(report.streams.length, 1000)
  t.same(wrong, [], 'every client got events 11 to 20, in order, without a resync')
  t.equal(app.sse.stats().replaysServed, 1000)
  t.comment(`1,000 replays of 10 events (1 KB each) done in ${report.elapsedMs} ms, connections included`)
})
