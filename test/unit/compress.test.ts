/**
 * With @fastify/compress registered globally, event streams are still sent as they
 * are written: uncompressed, readable, each event on the wire within a few ms of its
 * send (compression buffers its output until a block fills, which would hold events back).
 */
import compress from '@fastify/compress'
import http from 'node:http'
import t from 'tap'
import { defineEvents, Type, type SseMessage, type SseStream } from '../../lib/index.js'
import { buildApp, Inbox, sleep, withTimeout } from '../helpers/app.js'
import { dechunk, rawConnect, splitHead } from '../helpers/client.js'
import { EventStreamParser } from '../helpers/parser.js'

const events = defineEvents({ n: Type.Integer() })
type Events = typeof events

/** How soon an event must reach the client after its send. */
const PROMPT_MS = 500

async function compressedApp (t: Parameters<typeof buildApp>[0]): Promise<{ origin: string, streams: Inbox<SseStream<Events>> }> {
  const { app, start } = await buildApp(t, { sse: { heartbeatMs: false } })
  await app.register(compress, { global: true, threshold: 0, encodings: ['gzip', 'deflate', 'br'] })
  const streams = new Inbox<SseStream<Events>>()
  app.get('/json', async () => ({ items: Array.from({ length: 200 }, (_, i) => ({ i, text: 'compress me' })) }))
  app.get('/events', (_request, reply) => {
    streams.push(reply.sse(events))
  })
  app.get('/iterable', { sse: events }, async function * (): AsyncGenerator<SseMessage<Events>> {
    for (let n = 0; n < 3; n++) {
      yield { event: 'n', data: n }
      await sleep(50)
    }
  })
  return { origin: await start(), streams }
}

/** The response head of a plain GET with `Accept-Encoding: gzip` (the body is not decoded). */
function headOf (url: string): Promise<http.IncomingHttpHeaders> {
  return withTimeout(new Promise((resolve, reject) => {
    http.get(url, { agent: false, headers: { 'accept-encoding': 'gzip' } }, (response) => {
      response.resume()
      resolve(response.headers)
    }).once('error', reject)
  }), 3000, `GET ${url}`)
}

/** The event-stream payload of raw HTTP/1.1 response bytes (de-chunked). */
function payloadOf (bytes: Buffer): Buffer {
  return dechunk(splitHead(bytes)?.body ?? Buffer.alloc(0)).payload
}

t.test('compression is active for ordinary routes (the premise of the other tests)', async (t) => {
  const { origin } = await compressedApp(t)
  const headers = await headOf(`${origin}/json`)
  t.equal(headers['content-encoding'], 'gzip')
})

t.test('a client sending Accept-Encoding: gzip gets every event uncompressed, within ms of its send', async (t) => {
  const { origin, streams } = await compressedApp(t)
  const raw = await rawConnect(t, Number(new URL(origin).port), '/events', { headers: 'Accept-Encoding: gzip, deflate, br\r\n' })
  const stream = await streams.next()
  const head = splitHead(await raw.until((bytes) => splitHead(bytes) !== undefined))?.head as string
  t.match(head, /^HTTP\/1\.1 200/)
  t.match(head, /\r\ncontent-type: text\/event-stream/i)
  t.notMatch(head, /content-encoding/i, 'no Content-Encoding')
  t.match(head, /\r\nx-accel-buffering: no/i, 'proxies told not to buffer')
  t.match(head, /\r\ncache-control: no-cache/i)

  const latencies: number[] = []
  for (let n = 0; n < 5; n++) {
    await sleep(30)
    const sentAt = Date.now()
    stream.send('n', n)
    const expected = `event: n\ndata: ${n}\n\n`
    await raw.until((bytes) => payloadOf(bytes).toString('latin1').endsWith(expected), PROMPT_MS)
    latencies.push(Date.now() - sentAt)
  }
  t.ok(latencies.every((ms) => ms < PROMPT_MS), `each event arrived in ${latencies.join(', ')} ms`)
  const payload = payloadOf(raw.received())
  t.not(payload[0], 0x1f, 'not gzip (magic 1f 8b)')
  const parser = new EventStreamParser()
  parser.push(payload)
  t.same(parser.events.map((event) => event.data), ['0', '1', '2', '3', '4'], 'readable as plain text')
})

t.test('fetch (which asks for gzip, deflate, br) reads the first event within 500 ms of its send', async (t) => {
  const { origin, streams } = await compressedApp(t)
  const controller = new AbortController()
  t.teardown(() => { controller.abort() })
  const response = await fetch(`${origin}/events`, { headers: { accept: 'text/event-stream' }, signal: controller.signal })
  t.equal(response.status, 200)
  t.equal(response.headers.get('content-encoding'), null)
  const stream = await streams.next()
  const reader = (response.body as ReadableStream<Uint8Array>).getReader()
  await sleep(50)
  const sentAt = Date.now()
  stream.send('n', 7)
  const { value } = await withTimeout(reader.read(), PROMPT_MS, 'first chunk')
  const elapsed = Date.now() - sentAt
  t.equal(Buffer.from(value as Uint8Array).toString('utf8'), 'event: n\ndata: 7\n\n')
  t.ok(elapsed < PROMPT_MS, `arrived ${elapsed} ms after the send`)
})

t.test('a stream route returning an iterable is not compressed either', async (t) => {
  const { origin } = await compressedApp(t)
  const raw = await rawConnect(t, Number(new URL(origin).port), '/iterable', { headers: 'Accept-Encoding: gzip\r\n' })
  const opened = Date.now()
  await raw.until((bytes) => payloadOf(bytes).toString('latin1').startsWith('event: n\ndata: 0\n\n'), PROMPT_MS)
  t.ok(Date.now() - opened < PROMPT_MS, 'the first event arrived before the producer finished')
  const bytes = await raw.until((all) => dechunk(splitHead(all)?.body ?? Buffer.alloc(0)).isComplete, 2000)
  t.notMatch(splitHead(bytes)?.head, /content-encoding/i)
  const parser = new EventStreamParser()
  parser.push(payloadOf(bytes))
  t.same(parser.events.map((event) => event.type), ['n', 'n', 'n', 'sse:end'])
})
