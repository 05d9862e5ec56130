/**
 * Shutdown: `fastify.close()` with 1000 open streams on real sockets resolves well
 * under a second and every client sees its stream end; a server process with an open
 * stream exits by itself after close().
 */
import { fork, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'
import t from 'tap'
import { defineEvents, Type, type CloseReason } from '../../lib/index.js'
import { buildApp, childOrigin, Inbox, withTimeout } from '../helpers/app.js'
import { openStream } from '../helpers/client.js'

const events = defineEvents({ hello: Type.Integer() })
const STREAMS = 1000

/** What test/helpers/stream-clients.ts reports. */
type ClientsMessage = { type: 'ready' } | { type: 'ended', ended: number, clean: number }

t.test(`fastify.close() with ${STREAMS} open streams resolves in under 1 s; every client sees its end`, async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: 1000 } })
  const reasons = new Map<CloseReason, number>()
  app.get('/s', (_request, reply) => {
    const stream = reply.sse(events)
    stream.send('hello', 1)
    stream.onClose((reason) => reasons.set(reason, (reasons.get(reason) ?? 0) + 1))
  })
  const origin = await start()
  // The clients run in a process of their own: their work does not share (and slow)
  // the event loop being measured. It loads TypeScript the way this process does.
  const clients = fork(fileURLToPath(new URL('../helpers/stream-clients.ts', import.meta.url)), [`${origin}/s`, String(STREAMS)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  t.teardown(() => { if (clients.exitCode === null && clients.signalCode === null) clients.kill('SIGKILL') })
  const messages = new Inbox<ClientsMessage>()
  clients.on('message', (message: ClientsMessage) => messages.push(message))
  t.same(await messages.next(30_000), { type: 'ready' }, `${STREAMS} streams open, each with its first event`)
  t.equal(app.sse.stats().openStreams, STREAMS)

  const begin = performance.now()
  await withTimeout(app.close(), 5000, 'app.close()')
  const elapsedMs = performance.now() - begin
  t.comment(`app.close() with ${STREAMS} open streams took ${elapsedMs.toFixed(1)} ms`)
  // How fast is the benchmark's business (a timed assertion fails on a busy machine); the
  // deadline above is the guarantee: close() never waits on open streams.
  t.same(Object.fromEntries(reasons), { shutdown: STREAMS }, 'every stream closed with reason shutdown')
  t.same(await messages.next(15_000), { type: 'ended', ended: STREAMS, clean: STREAMS },
    'every client saw its response end cleanly (final chunk received)')
})

t.test('fastify.close() spreads the reconnects: each stream gets a retry between closeGraceMs and twice that, not all the same', async (t) => {
  const closeGraceMs = 500
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, closeGraceMs } })
  app.get('/s', (_request, reply) => { reply.sse(events).send('hello', 1) })
  const origin = await start()
  const clients = await Promise.all(Array.from({ length: 20 }, async () => await openStream(t, `${origin}/s`)))
  await Promise.all(clients.map(async (client) => await client.events(1)))
  await withTimeout(app.close(), 5000, 'app.close()')
  await Promise.all(clients.map(async (client) => await withTimeout(client.ended, 3000, 'stream end')))
  const retries = clients.map((client) => client.parser.retry as number)
  t.ok(retries.every((ms) => Number.isInteger(ms) && ms >= closeGraceMs && ms < 2 * closeGraceMs), `every retry in [${closeGraceMs}, ${2 * closeGraceMs}): ${retries.join(' ')}`)
  // 20 draws from 500 values: all equal has a chance of 500^-19.
  t.ok(new Set(retries).size > 1, `spread: ${new Set(retries).size} distinct values`)
})

t.test('a server process with an open stream exits by itself after close()', async (t) => {
  // The child loads TypeScript the way this test process does (tap's loader, in
  // execArgv), falling back to tsx when run without tap.
  const loader = process.execArgv.length > 0 ? process.execArgv : ['--import', 'tsx']
  const child = spawn(process.execPath, [...loader, fileURLToPath(new URL('../helpers/shutdown-child.ts', import.meta.url))], {
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
  })
  const origin = await childOrigin(child)
  t.match(origin, /^http:\/\/127\.0\.0\.1:\d+$/)
  const client = await openStream(t, `${origin}/s`)
  await client.events(2)
  const begin = Date.now()
  child.kill('SIGTERM')
  // Bounded: a process held by a timer, socket or session would not exit at all.
  const { code, signal } = await withTimeout(exited, 5000, 'child exit')
  const elapsed = Date.now() - begin
  t.comment(`the child exited ${elapsed} ms after SIGTERM`)
  t.equal(signal, null, 'not killed by a signal: it exited by itself')
  t.equal(code, 0, 'exit code 0')
  await withTimeout(client.ended, 1000, 'the client sees its stream end')
  t.equal(client.response.complete, true, 'cleanly')
})
