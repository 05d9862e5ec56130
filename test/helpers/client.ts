/**
 * HTTP/1.1 clients for tests: `openStream` reads a response with node:http and feeds
 * its raw body bytes to the spec parser; `rawConnect` is a bare TCP client that sees
 * the exact bytes on the wire (status line, headers, chunk framing) and can stop reading.
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
 * Decodes `Transfer-Encoding: chunked` framing (RFC 9112 §7.1). Returns the payload
 * of every complete chunk, and whether the last (zero-size) chunk was seen.
 */
export function dechunk (body: Buffer): { payload: Buffer, isComplete: boolean } {
  const parts: Buffer[] = []
  let offset = 0
  for (;;) {
    const lineEnd = body.indexOf('\r\n', offset)
    if (lineEnd === -1) break
    const size = Number.parseInt(body.subarray(offset, lineEnd).toString('latin1'), 16)
    if (!Number.isInteger(size)) throw new Error(`bad chunk size line at ${offset}`)
    if (size === 0) return { payload: Buffer.concat(parts), isComplete: true }
    const start = lineEnd + 2
    if (body.length < start + size + 2) break
    parts.push(body.subarray(start, start + size))
    offset = start + size + 2
  }
  return { payload: Buffer.concat(parts), isComplete: false }
}
