/**
 * A burst published back to back (`await channel.publish()` in a loop, which resolves
 * without a turn of the event loop when nothing is backed up) must reach the readers
 * that keep up, while a client that never reads is evicted (or told, with
 * drop-oldest), and the server's memory stays bounded. The readers run in a child
 * process, so this process's memory is the server's.
 */
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { defineEvents, Type } from '../../lib/index.js'
import { buildApp, waitUntil, withTimeout } from '../helpers/app.js'
import { rawConnect } from '../helpers/client.js'

const feed = defineEvents({ item: Type.Object({ seq: Type.Integer(), pad: Type.String() }) })
const READERS = 100
const EVENTS = 2000
const PAD = 'p'.repeat(1000)
/** The burst and what the policy needs must be delivered within this long, or the test fails. */
const DELIVERY_DEADLINE_MS = 60_000

interface Counts { type: 'counts', counts: number[], outOfOrder: number }

for (const queuePolicy of ['close', 'drop-oldest'] as const) {
  t.test(`${READERS} readers that keep up get all ${EVENTS} events of a back-to-back burst; a never-reading client is ${queuePolicy === 'close' ? 'evicted' : 'told'} (${queuePolicy})`, async (t) => {
    const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, queuePolicy } })
    const channel = app.sse.channel('feed', feed)
    app.get('/feed', (_request, reply) => { void channel.subscribe(reply.sse(feed)) })
    const origin = await start()
    const readers = fork(fileURLToPath(new URL('../helpers/stream-clients.ts', import.meta.url)), [`${origin}/feed`, String(READERS), String(DELIVERY_DEADLINE_MS * 2)], {
      execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc']
    })
    t.teardown(() => { readers.kill() })
    const stuck = await rawConnect(t, Number(new URL(origin).port), '/feed', { read: false })
    await waitUntil(() => channel.size === READERS + 1, 10_000, 'all subscribed')
    const query = async (): Promise<Counts> => {
      const answer = new Promise<Counts>((resolve) => {
        const onMessage = (message: { type?: string }): void => {
          if (message.type !== 'counts') return
          readers.off('message', onMessage)
          resolve(message as Counts)
        }
        readers.on('message', onMessage)
      })
      readers.send({ type: 'query' })
      // The readers may be busy parsing a burst: an answer can take a while on a loaded machine.
      return await withTimeout(answer, 30_000, 'the readers answer')
    }
    const allHave = async (events: number): Promise<void> => {
      const deadline = Date.now() + DELIVERY_DEADLINE_MS
      for (;;) {
        const { counts } = await query()
        if (counts.length === READERS && counts.every((count) => count >= events)) return
        if (Date.now() > deadline) throw new Error(`after ${DELIVERY_DEADLINE_MS} ms the readers have ${Math.min(...counts)} to ${Math.max(...counts)} of ${events} events`)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }

    global.gc?.()
    const startRss = process.memoryUsage().rss
    let peakRss = startRss
    const publish = async (seq: number): Promise<void> => {
      await channel.publish('item', { seq, pad: PAD })
      if (seq % 50 === 0) peakRss = Math.max(peakRss, process.memoryUsage().rss)
    }
    for (let seq = 0; seq < EVENTS; seq++) await publish(seq)
    await allHave(EVENTS)
    t.equal(app.sse.stats().closed.policy, 0, 'no reader that keeps up was closed by the burst')

    // The kernel's socket buffers may hold the whole burst for the client that never
    // reads: go on until its queue really passes maxQueueBytes (bounded in count).
    const isDone = (): boolean => queuePolicy === 'close' ? app.sse.stats().closed.policy > 0 : app.sse.stats().droppedEvents > 0
    let total = EVENTS
    while (!isDone() && total < EVENTS + 20_000) await publish(total++)
    t.ok(isDone(), `the policy applied to the never-reading client after ${total} events`)
    await allHave(total)
    const { counts, outOfOrder } = await query()
    t.equal(counts.filter((count) => count === total).length, READERS, `every reader got all ${total} events, none twice`)
    t.equal(outOfOrder, 0, 'in order')
    const stats = app.sse.stats()
    if (queuePolicy === 'close') {
      t.equal(stats.closed.policy, 1, 'only the never-reading client was closed by the policy')
      // A paused socket sees its end only once it reads what the kernel holds.
      stuck.socket.resume()
      await withTimeout(stuck.closed, 10_000, 'the never-reading client is disconnected')
    } else {
      t.equal(stats.closed.policy, 0, 'nobody closed')
      stuck.socket.resume()
      await stuck.until((bytes) => bytes.includes('event: sse:missed'), 10_000)
      t.pass(`the never-reading client lost ${stats.droppedEvents} events and was told with sse:missed once it read`)
    }
    t.comment(`server rss ${Math.round(startRss / 2 ** 20)} MB before, peak ${Math.round(peakRss / 2 ** 20)} MB during ${total} events to ${READERS + 1} clients`)
  })
}
