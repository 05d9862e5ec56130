/**
 * The HTTP/1.1 clients of the tests, one module: `openStream` reads a response with
 * node:http and feeds its raw body bytes to the spec parser; `openRawStream` does the
 * same on a bare socket, cheap enough for thousands at once; `rawConnect` sees the
 * exact bytes on the wire (status line, headers, chunk framing) and can stop reading.
 * Chunked bodies are decoded by one {@link ChunkDecoder}. Nothing of lib/ is used here.
 */
import http, { type IncomingHttpHeaders } from 'node:http'
import net from 'node:net'
import type { Teardown } from './app.js'
import { withTimeout } from './app.js'
import { EventStreamParser, type ParsedEvent } from './parser.js'

export interface StreamClient {
  readonly statusCode: number
  readonly headers: IncomingHttpHeaders
  readonly response: http.IncomingMessage
  readonly parser: EventStreamParser
  /** Every body chunk, as received. */
  readonly chunks: Buffer[]
  /** Resolves when the response ends cleanly (`'end'`: the final chunk arrived). */
  readonly ended: Promise<void>
  /** Resolves when the connection is gone, cleanly or not. */
  readonly closed: Promise<void>
  /** Resolves once `count` events were dispatched in total; rejects after `timeoutMs`. */
  events (count: number, timeoutMs?: number): Promise<ParsedEvent[]>
  /** Resolves once `count` comment lines were read in total; rejects after `timeoutMs`. */
  comments (count: number, timeoutMs?: number): Promise<string[]>
  /** Stops reading (the socket fills up and the server sees backpressure). */
  pause (): void
  resume (): void
  /** Drops the connection, as a browser tab closing. */
  destroy (): void
}

/**
 * GETs `url` on a connection of its own and resolves once the response head arrived.
 * The connection is destroyed in teardown.
 *
 * @example
 * const client = await openStream(t, `${origin}/s`)
 * const [event] = await client.events(1)
 */
export function openStream (t: Teardown, url: string, headers: http.OutgoingHttpHeaders = {}): Promise<StreamClient> {
  return withTimeout(new Promise<StreamClient>((resolve, reject) => {
    const request = http.get(url, { agent: false, headers: { accept: 'text/event-stream', ...headers } })
    t.teardown(() => { request.destroy() })
    request.once('error', reject)
    request.once('response', (response) => {
      const parser = new EventStreamParser()
      const chunks: Buffer[] = []
      const wait = <T>(ready: () => T | undefined, timeoutMs: number, label: string): Promise<T> => {
        const check = (resolve: (value: T) => void): boolean => {
          const value = ready()
          if (value === undefined) return false
          resolve(value)
          return true
        }
        return withTimeout(new Promise<T>((resolve) => {
          if (check(resolve)) return
          const onData = (): void => {
            if (check(resolve)) response.off('data', onData)
          }
          // Runs after the parser's own 'data' listener, registered first below.
          response.on('data', onData)
        }), timeoutMs, label)
      }
      response.on('data', (chunk: Buffer) => {
        chunks.push(chunk)
        parser.push(chunk)
      })
      const ended = new Promise<void>((resolve) => response.once('end', () => {
        parser.end()
        resolve()
      }))
      const closed = new Promise<void>((resolve) => response.once('close', resolve))
      // An aborted response emits 'error' (ECONNRESET / aborted); tests assert on `ended`/`closed`.
      response.on('error', () => {})
      request.off('error', reject)
      request.on('error', () => {})
      resolve({
        statusCode: response.statusCode ?? 0,
        headers: response.headers,
        response,
        parser,
        chunks,
        ended,
        closed,
        events: (count, timeoutMs = 2000) =>
          wait(() => parser.events.length >= count ? parser.events.slice(0, count) : undefined, timeoutMs, `${count} events`),
        comments: (count, timeoutMs = 2000) =>
          wait(() => parser.comments.length >= count ? parser.comments.slice(0, count) : undefined, timeoutMs, `${count} comments`),
        pause: () => { response.pause() },
        resume: () => { response.resume() },
        destroy: () => { request.destroy() }
      })
    })
  }), 3000, `open ${url}`)
}

/** A bare TCP connection that has sent one request. */
export interface RawClient {
  readonly socket: net.Socket
  /** Every byte received so far, status line and chunk framing included. */
  received (): Buffer
  /** Resolves once the received bytes satisfy `ready`; rejects after `timeoutMs`. */
  until (ready: (bytes: Buffer) => boolean, timeoutMs?: number): Promise<Buffer>
  /** Resolves when the server closed the connection. */
  readonly closed: Promise<void>
}

/**
 * Connects to `port` on 127.0.0.1 and writes a GET for `path`. With `read: false` it
 * never reads: the kernel buffers fill and the server must hold (or drop) what it sends.
 * The socket is destroyed in teardown.
 */
export function rawConnect (t: Teardown, port: number, path: string, { read = true, headers = '' } = {}): Promise<RawClient> {
  return withTimeout(new Promise<RawClient>((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' })
    t.teardown(() => { socket.destroy() })
    const parts: Buffer[] = []
    const listeners = new Set<() => void>()
    socket.on('data', (chunk: Buffer) => {
      parts.push(chunk)
      for (const listener of listeners) listener()
    })
    socket.on('error', () => {})
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
    const received = (): Buffer => Buffer.concat(parts)
    socket.once('error', reject)
    socket.once('connect', () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\n${headers}\r\n`)
      if (!read) socket.pause()
      resolve({
        socket,
        received,
        closed,
        until: (ready, timeoutMs = 2000) => withTimeout(new Promise<Buffer>((resolve) => {
          const check = (): void => {
            const bytes = received()
            if (!ready(bytes)) return
            listeners.delete(check)
            resolve(bytes)
          }
          listeners.add(check)
          check()
        }), timeoutMs, 'raw bytes')
      })
    })
  }), 3000, `connect ${path}`)
}

/** The HTTP head and body of raw response bytes (`undefined` while the head is incomplete). */
export function splitHead (bytes: Buffer): { head: string, body: Buffer } | undefined {
  const end = bytes.indexOf('\r\n\r\n')
  if (end === -1) return undefined
  return { head: bytes.subarray(0, end).toString('latin1'), body: bytes.subarray(end + 4) }
}

/**
 * Decodes `Transfer-Encoding: chunked` framing (RFC 9112 §7.1) incrementally: feed it
 * body bytes as they come; it hands on the payload of each complete chunk.
 */
export class ChunkDecoder {
  #pending: Buffer = Buffer.alloc(0)
  /** True once the last (zero-size) chunk was read. */
  isComplete = false

  /** Feeds bytes; calls `onPayload` with each complete chunk's payload. */
  push (bytes: Buffer, onPayload: (payload: Buffer) => void): void {
    this.#pending = this.#pending.length === 0 ? bytes : Buffer.concat([this.#pending, bytes])
    let offset = 0
    while (!this.isComplete) {
      const lineEnd = this.#pending.indexOf('\r\n', offset)
      if (lineEnd === -1) break
      const size = Number.parseInt(this.#pending.subarray(offset, lineEnd).toString('latin1'), 16)
      if (!Number.isInteger(size)) throw new Error(`bad chunk size line at ${offset}`)
      if (size === 0) {
        this.isComplete = true
        break
      }
      const start = lineEnd + 2
      if (this.#pending.length < start + size + 2) break
      onPayload(this.#pending.subarray(start, start + size))
      offset = start + size + 2
    }
    this.#pending = this.#pending.subarray(offset)
  }
}

/**
 * Decodes a whole chunked body: the payload of every complete chunk, and whether the
 * last (zero-size) chunk was seen.
 */
export function dechunk (body: Buffer): { payload: Buffer, isComplete: boolean } {
  const decoder = new ChunkDecoder()
  const parts: Buffer[] = []
  decoder.push(body, (payload) => parts.push(payload))
  return { payload: Buffer.concat(parts), isComplete: decoder.isComplete }
}

/** One stream on a bare socket, as a test sees it. */
export interface RawStream {
  readonly socket: net.Socket
  /** Status code of the response (after `ready`). */
  status: number
  /** Lower-cased response headers (after `ready`). */
  headers: Record<string, string>
  /** The spec parser fed with the de-chunked body. */
  readonly parser: EventStreamParser
  /** Resolves once the response head is read. */
  readonly ready: Promise<void>
  /** Resolves when the server ends the response or the socket closes. */
  readonly ended: Promise<void>
  /** Resolves when `count` events were dispatched in total, or rejects after `timeoutMs`. */
  waitForEvents (count: number, timeoutMs?: number): Promise<ParsedEvent[]>
  /** Destroys the socket (the client leaves). */
  close (): void
}

/**
 * Opens `GET path` on 127.0.0.1:port on a bare socket and parses the response as an
 * event stream; `paused` never reads (a client that stalls). Cheap: for thousands of
 * streams at once.
 *
 * @example
 * const client = openRawStream(port, '/time'); await client.ready
 * const [tick] = await client.waitForEvents(1)
 */
export function openRawStream (port: number, path: string, options: { headers?: Record<string, string>, paused?: boolean } = {}): RawStream {
  const socket = net.connect({ host: '127.0.0.1', port })
  const parser = new EventStreamParser()
  const headerLines = Object.entries({ host: `127.0.0.1:${port}`, accept: 'text/event-stream', ...options.headers })
    .map(([name, value]) => `${name}: ${value}\r\n`).join('')
  socket.write(`GET ${path} HTTP/1.1\r\n${headerLines}\r\n`)
  if (options.paused === true) socket.pause()

  let head: Buffer | undefined = Buffer.alloc(0)
  let decoder: ChunkDecoder | undefined
  let markReady: () => void = () => {}
  let markEnded: () => void = () => {}
  const ready = new Promise<void>((resolve) => { markReady = resolve })
  const ended = new Promise<void>((resolve) => { markEnded = resolve })
  const stream: RawStream = {
    socket,
    status: 0,
    headers: {},
    parser,
    ready,
    ended,
    waitForEvents (count, timeoutMs = 5000) {
      return withTimeout(new Promise<ParsedEvent[]>((resolve) => {
        const check = (): void => {
          if (parser.events.length < count) return
          socket.off('data', check)
          resolve(parser.events.slice(0, count))
        }
        socket.on('data', check)
        check()
      }), timeoutMs, `${count} events (got ${parser.events.length})`)
    },
    close () {
      socket.destroy()
    }
  }
  socket.on('data', (data: Buffer) => {
    if (head !== undefined) {
      head = Buffer.concat([head, data])
      const parts = splitHead(head)
      if (parts === undefined) return
      const [statusLine, ...lines] = parts.head.split('\r\n')
      stream.status = Number(statusLine.split(' ')[1])
      for (const line of lines) {
        const colon = line.indexOf(':')
        stream.headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
      }
      if (stream.headers['transfer-encoding'] === 'chunked') decoder = new ChunkDecoder()
      head = undefined
      data = parts.body
      markReady()
    }
    if (decoder === undefined) {
      parser.push(data)
      return
    }
    decoder.push(data, (payload) => parser.push(payload))
    if (decoder.isComplete) socket.end()
  })
  socket.on('error', () => {})
  socket.on('close', () => {
    parser.end()
    markReady()
    markEnded()
  })
  return stream
}

/**
 * {@link openRawStream} with an optional Last-Event-ID; the socket is destroyed at `t`'s teardown.
 *
 * @example
 * const client = openTracked(t, port, '/scores', lastId)
 */
export function openTracked (t: Teardown, port: number, path: string, lastEventId?: string): RawStream {
  const client = openRawStream(port, path, lastEventId === undefined ? {} : { headers: { 'last-event-id': lastEventId } })
  t.teardown(() => client.close())
  return client
}

/**
 * The `seq` of every event received, for catalogs whose events carry one.
 *
 * @example
 * t.same(seqs(client), [0, 1, 2])
 */
export function seqs (client: { readonly parser: EventStreamParser }): number[] {
  return client.parser.events.map((event) => (JSON.parse(event.data) as { seq: number }).seq)
}
