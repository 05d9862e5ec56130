/**
 * HTTP/1.1 frames written to the socket as one chunk each (lib/stream/adapters/chunked.ts):
 * the bytes are those Node's `response.write()` sends, and whatever else holds writes of
 * the response (a pipelined request before it, the application's `cork()`, a replaced
 * `write()`, an HTTP/1.0 client without chunking) is obeyed: through `response.write()`.
 */
import diagnostics from 'node:diagnostics_channel'
import net from 'node:net'
import t from 'tap'
import { defineEvents, Type, type SseStream } from '../../lib/index.js'
import { buildApp, Inbox, sleep, withTimeout } from '../helpers/app.js'
import { ChunkDecoder, dechunk, openTracked, rawConnect, splitHead } from '../helpers/client.js'
import { parseAll } from '../helpers/parser.js'

const events = defineEvents({ n: Type.Integer(), text: Type.String() })
type Events = typeof events

/** Sends the same events, in one tick, on every stream it is given, then ends it. */
function sendAll (stream: SseStream<Events>): void {
  stream.send('n', 1, { id: 'a' })
  stream.send('text', 'zwei, deux, två: ünïcödé 😀', { id: 'b' })
  stream.comment('between')
  stream.send('n', 3)
}

/** The chunk payloads of a whole chunked body, and whether it ended with the last chunk. */
function chunksOf (body: Buffer): { chunks: string[], isComplete: boolean } {
  const decoder = new ChunkDecoder()
  const chunks: string[] = []
  decoder.push(body, (payload) => chunks.push(payload.toString('utf8')))
  return { chunks, isComplete: decoder.isComplete }
}

/** Bytes of a raw connection until `done` says they are complete. */
async function readUntil (socket: net.Socket, done: (bytes: Buffer) => boolean, label: string): Promise<Buffer> {
  const parts: Buffer[] = []
  return await withTimeout(new Promise<Buffer>((resolve) => {
    const check = (): void => {
      const bytes = Buffer.concat(parts)
      if (done(bytes)) resolve(bytes)
    }
    socket.on('data', (chunk: Buffer) => { parts.push(chunk); check() })
    socket.once('close', () => resolve(Buffer.concat(parts)))
  }), 5000, label)
}

t.test('each frame is one chunk, and the stream the same bytes as through response.write()', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  let socketWrites = -1
  app.get('/direct', (_request, reply) => {
    const stream = reply.sse(events)
    const socket = reply.raw.socket as net.Socket
    const write = socket.write.bind(socket) as (chunk: Buffer) => boolean
    socketWrites = 0
    socket.write = ((chunk: Buffer) => { socketWrites++; return write(chunk) }) as typeof socket.write
    sendAll(stream)
    socket.write = write as typeof socket.write
    stream.close()
  })
  app.get('/through-write', (_request, reply) => {
    // A write() of the application's own (a plugin that counts bytes): every frame goes through it.
    const write = reply.raw.write.bind(reply.raw) as (chunk: Buffer) => boolean
    let frames = 0
    reply.raw.write = ((chunk: Buffer) => { frames++; return write(chunk) }) as typeof reply.raw.write
    const stream = reply.sse(events)
    sendAll(stream)
    stream.close()
    t.ok(frames >= 4, `the replaced write() saw every frame (${frames})`)
  })
  const port = Number(new URL(await start()).port)
  const direct = await rawConnect(t, port, '/direct')
  const throughWrite = await rawConnect(t, port, '/through-write')
  const ended = (bytes: Buffer): boolean => bytes.includes('\r\n0\r\n\r\n')
  const [a, b] = await Promise.all([direct.until(ended), throughWrite.until(ended)])
  const bodyA = splitHead(a)?.body as Buffer
  const bodyB = splitHead(b)?.body as Buffer
  const { chunks, isComplete } = chunksOf(bodyA)
  const throughWriteChunks = chunksOf(bodyB)
  t.ok(isComplete && throughWriteChunks.isComplete, 'both bodies end with the last chunk')
  // (Node 24 joins response.write()'s writes of one tick into one chunk; Node 20 and 22 frame each.)
  t.equal(chunks.join(''), throughWriteChunks.chunks.join(''), 'the same bytes as through response.write()')
  t.equal(socketWrites, 4, 'one socket write per frame (response.write() makes three)')
  t.same(chunks.slice(0, 4), [
    'event: n\nid: a\ndata: 1\n\n',
    'event: text\nid: b\ndata: "zwei, deux, två: ünïcödé 😀"\n\n',
    ': between\n\n',
    'event: n\ndata: 3\n\n'
  ], 'one chunk per frame, sizes counted in bytes (multi-byte text)')
})

t.test('an HTTP/1.0 client gets the frames unchunked, ended by closing the connection', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  app.get('/s', (_request, reply) => {
    const stream = reply.sse(events)
    sendAll(stream)
    setTimeout(() => stream.close(), 50)
  })
  const port = Number(new URL(await start()).port)
  const socket = net.connect({ port, host: '127.0.0.1' })
  t.teardown(() => { socket.destroy() })
  socket.write('GET /s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n')
  const bytes = await readUntil(socket, () => false, 'HTTP/1.0 response')
  const parts = splitHead(bytes)
  t.ok(parts !== undefined, 'a response head')
  t.notMatch(parts?.head ?? '', /transfer-encoding/i, 'no chunked encoding for HTTP/1.0')
  t.ok(parts?.body.toString().startsWith('event: n\nid: a\ndata: 1\n\nevent: text\nid: b\n'), 'the body is the frames themselves')
  t.notOk(parts?.body.includes('\r'), 'no chunk framing (CRLF) in it')
  const parsed = parseAll(parts?.body ?? Buffer.alloc(0))
  t.same(parsed.events.map((event) => event.data), ['1', '"zwei, deux, två: ünïcödé 😀"', '3'], 'every event, as sent')
  t.ok(parsed.comments.includes(' between'), `the comment too: ${JSON.stringify(parsed.comments)}`)
})

t.test('a stream behind a pipelined request: its early frames wait, then all arrive in order', async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  const slowDone = new Inbox<true>()
  app.get('/slow', async () => {
    await sleep(300)
    setImmediate(() => slowDone.push(true))
    return { slow: true }
  })
  app.get('/s', (_request, reply) => {
    const stream = reply.sse(events)
    // Sent while /slow still has the connection: Node holds these in the response.
    stream.send('n', 1)
    stream.send('n', 2)
    void slowDone.next(5000).then(() => {
      stream.send('n', 3)
      stream.send('n', 4)
      stream.close()
    })
  })
  const port = Number(new URL(await start()).port)
  const socket = net.connect({ port, host: '127.0.0.1' })
  t.teardown(() => { socket.destroy() })
  socket.write('GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
  const bytes = await readUntil(socket, (received) => received.includes('\r\n0\r\n\r\n'), 'the pipelined responses')
  const text = bytes.toString('utf8')
  const second = text.indexOf('HTTP/1.1 200', 1)
  t.ok(text.startsWith('HTTP/1.1 200') && text.slice(0, second).includes('{"slow":true}'), 'the first response comes whole first')
  const { chunks, isComplete } = chunksOf(splitHead(bytes.subarray(Buffer.byteLength(text.slice(0, second))))?.body as Buffer)
  t.ok(isComplete, 'the stream ends with the last chunk')
  t.same(parseAll(Buffer.from(chunks.join(''))).events.map((event) => event.data), ['1', '2', '3', '4'], 'every event, in order')
})

t.test("writes the application holds with the response's cork() go out before the stream's", async (t) => {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  const channel = app.sse.channel('corked', events)
  const subscribed = new Inbox<{ stream: SseStream<Events>, raw: typeof import('node:http').ServerResponse.prototype }>()
  app.get('/s', async (_request, reply) => {
    const stream = reply.sse(events)
    await channel.subscribe(stream)
    subscribed.push({ stream, raw: reply.raw })
  })
  const port = Number(new URL(await start()).port)
  const client = await rawConnect(t, port, '/s')
  const { stream, raw } = await subscribed.next()
  raw.cork()
  raw.write(': held by the application\n\n')
  // A channel publish corks the socket too (Node 20 counts that in the response's writableCorked).
  void channel.publish('n', 1)
  stream.send('n', 2)
  process.nextTick(() => raw.uncork())
  const payloadOf = (received: Buffer): Buffer => dechunk(splitHead(received)?.body ?? Buffer.alloc(0)).payload
  const bytes = await client.until((received) => parseAll(payloadOf(received)).events.length === 2)
  const parsed = parseAll(payloadOf(bytes))
  t.ok(parsed.comments.includes(' held by the application'), "the application's write arrived")
  const body = payloadOf(bytes).toString()
  t.ok(body.indexOf(': held by the application') < body.indexOf('data: 1'), `it came first: ${JSON.stringify(body)}`)
  t.same(parsed.events.map((event) => event.data), ['1', '2'], 'then the events, in order')
})

t.test('chunk sizes are right across hex digits (15, 16, 255, 256, 4095, 4096, 65536 bytes)', async (t) => {
  const sizes = [5, 15, 16, 255, 256, 4095, 4096, 65536]
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  app.get('/s', (_request, reply) => {
    const stream = reply.sse(events)
    // A comment's frame is ': ' + text + '\n\n'.
    for (const size of sizes) stream.comment('c'.repeat(size - 4))
    stream.close()
  })
  const client = await rawConnect(t, Number(new URL(await start()).port), '/s')
  const bytes = await client.until((received) => received.includes('\r\n0\r\n\r\n'))
  const body = splitHead(bytes)?.body as Buffer
  const { chunks, isComplete } = chunksOf(body)
  t.ok(isComplete, 'the body ends with the last chunk')
  t.same(chunks.slice(0, sizes.length).map((chunk) => chunk.length), sizes, 'one chunk per frame, of its size')
  t.match(body.subarray(0, 8).toString('latin1'), /^5\r\n: c\n\n/, 'sizes in lower-case hex without padding, as Node writes them')
  t.equal(body.includes('10000\r\n'), true, '65536 is 10000 in hex')
})

t.test('drained() waits for room when the application writes to reply.raw beside the stream', async (t) => {
  // The application's own refused write makes Node tell the response of the socket's next
  // drain too: the stream must not take that one and its own for two.
  const pad = 'x'.repeat(4000)
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, maxQueueBytes: 64 * 1024 * 1024 } })
  const done = new Inbox<{ sent: number, earlyResolves: number, backedUp: number }>()
  app.get('/s', (_request, reply) => {
    const stream = reply.sse(events)
    const socket = reply.raw.socket as net.Socket
    void (async () => {
      let sent = 0
      let earlyResolves = 0
      let backedUp = 0
      // Bounded: 2000 events of 4 KB.
      while (sent < 2000 && stream.isOpen) {
        if (stream.send('text', pad, { id: String(sent++) })) continue
        backedUp++
        reply.raw.write(': the application\n\n')
        for (let k = 0; k < 30 && sent < 2000; k++) stream.send('text', pad, { id: String(sent++) })
        await stream.drained()
        if (socket.writableLength >= socket.writableHighWaterMark) earlyResolves++
      }
      done.push({ sent, earlyResolves, backedUp })
      stream.close()
    })()
  })
  const client = openTracked(t, Number(new URL(await start()).port), '/s')
  // A slow reader: a pause after every read, so the server's socket fills again and again.
  client.socket.on('data', () => {
    client.socket.pause()
    setTimeout(() => client.socket.resume(), 2)
  })
  const result = await done.next(60_000)
  t.ok(result.backedUp > 0, `the socket filled (${result.backedUp} times)`)
  t.equal(result.earlyResolves, 0, 'drained() never resolved while the socket was still full')
  const received = await client.waitForEvents(result.sent, 30_000)
  t.same(received.map((event) => event.lastEventId), Array.from({ length: result.sent }, (_, i) => String(i)), 'every event arrived once, in order')
})

t.test('loading the plugin announces no response to diagnostics channels (an APM would see a request without a socket)', async (t) => {
  let announced = 0
  const count = (): void => { announced++ }
  diagnostics.subscribe('http.server.response.created', count)
  t.teardown(() => { diagnostics.unsubscribe('http.server.response.created', count) })
  // A fresh instance of the module: what runs when it loads runs again.
  await import(`../../lib/stream/adapters/chunked.js?fresh=${Date.now()}`)
  t.equal(announced, 0)
})
