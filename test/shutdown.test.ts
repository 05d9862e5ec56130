/**
 * Shutdown: `fastify.close()` with 1000 open streams on real sockets resolves well
 * under a second and every client sees its stream end; a server process with an open
 * stream exits by itself after close().
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'
import t from 'tap'
import { defineEvents, Type, type CloseReason } from '../lib/index.js'
import { buildApp, waitUntil, withTimeout } from './helpers/app.js'
import { openStream, type StreamClient } from './helpers/client.js'

const events = defineEvents({ hello: Type.Integer() })
const STREAMS = 1000
const BATCH = 100

t.test(`fastify.close() with ${STREAMS} open streams resolves in under 1 s; every client sees its end`, async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: 1000 } })
  const reasons = new Map<CloseReason, number>()
  app.get('/s', (_request, reply) => {
    const stream = reply.sse(events)
    stream.send('hello', 1)
    stream.onClose((reason) => reasons.set(reason, (reasons.get(reason) ?? 0) + 1))
  })
  const origin = await start()
  const clients: StreamClient[] = []
  for (let opened = 0; opened < STREAMS; opened += BATCH) {
    clients.push(...await Promise.all(Array.from({ length: BATCH }, () => openStream(t, `${origin}/s`))))
  }
  await waitUntil(() => app.sse.stats().openStreams === STREAMS, 5000, 'all streams open')
  await waitUntil(() => clients.every((client) => client.parser.events.length === 1), 5000, 'every client got its first event')

  const begin = performance.now()
  await withTimeout(app.close(), 5000, 'app.close()')
  const elapsedMs = performance.now() - begin
  t.comment(`app.close() with ${STREAMS} open streams took ${elapsedMs.toFixed(1)} ms`)
  t.ok(elapsedMs < 1000, `closed in ${elapsedMs.toFixed(1)} ms (< 1000 ms)`)
  t.same(Object.fromEntries(reasons), { shutdown: STREAMS }, 'every stream closed with reason shutdown')

  await withTimeout(Promise.all(clients.map((client) => client.ended)), 3000, 'every client sees its end')
  t.equal(clients.filter((client) => client.response.complete).length, STREAMS, 'every response ended cleanly (final chunk received)')
})

t.test('a server process with an open stream exits by itself after close()', async (t) => {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./helpers/shutdown-child.ts', import.meta.url))], {
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
  })
  const origin = await withTimeout(new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      if (out.includes('\n')) resolve(out.trim())
    })
    child.once('exit', () => reject(new Error('the child exited before listening')))
  }), 15_000, 'child listening')
  t.match(origin, /^http:\/\/127\.0\.0\.1:\d+$/)
  const client = await openStream(t, `${origin}/s`)
  await client.events(2)
  const begin = Date.now()
  child.kill('SIGTERM')
  const { code, signal } = await withTimeout(exited, 5000, 'child exit')
  const elapsed = Date.now() - begin
  t.comment(`the child exited ${elapsed} ms after SIGTERM`)
  t.equal(signal, null, 'not killed by a signal: it exited by itself')
  t.equal(code, 0, 'exit code 0')
  t.ok(elapsed < 2000, `exited in ${elapsed} ms`)
  await withTimeout(client.ended, 1000, 'the client sees its stream end')
  t.equal(client.response.complete, true, 'cleanly')
})
