/**
 * A raw HTTP/1.1 event-stream client on a `node:net` socket: cheap enough to open a
 * thousand at once, and it sees the exact bytes (de-chunked, then parsed by the
 * spec parser). Nothing of lib/ is used here.
 */
import { connect, type Socket } from 'node:net'
import { EventStreamParser, type ParsedEvent } from './parser.js'

/** One open stream as a test sees it. */
export interface RawStream {
  readonly socket: Socket
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

/** Options of {@link openStream}. */
export interface OpenStreamOptions {
  headers?: Record<string, string>
  /** Never read from the socket: a client that stalls (its kernel buffers fill, then the server queues). */
  paused?: boolean
}

/**
 * Opens `GET path` on 127.0.0.1:port and parses the response as an event stream.
 *
 * @example
 * const client = openStream(port, '/time'); await client.ready
 * const [tick] = await client.waitForEvents(1)
 */
export function openStream (port: number, path: string, options: OpenStreamOptions = {}): RawStream {
  const socket = connect({ host: '127.0.0.1', port })
  const parser = new EventStreamParser()
  const headerLines = Object.entries({ host: `127.0.0.1:${port}`, accept: 'text/event-stream', ...options.headers })
    .map(([name, value]) => `${name}: ${value}\r\n`).join('')
  socket.write(`GET ${path} HTTP/1.1\r\n${headerLines}\r\n`)
  if (options.paused === true) socket.pause()

  let head = Buffer.alloc(0)
  let isHeadRead = false
  let isChunked = false
  let body = Buffer.alloc(0)
  let waiters: Array<() => void> = []
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
      if (parser.events.length >= count) return Promise.resolve(parser.events.slice(0, count))
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters = waiters.filter((waiter) => waiter !== check)
          reject(new Error(`got ${parser.events.length} of ${count} events within ${timeoutMs} ms`))
        }, timeoutMs)
        const check = (): void => {
          if (parser.events.length < count) return
          clearTimeout(timer)
          waiters = waiters.filter((waiter) => waiter !== check)
          resolve(parser.events.slice(0, count))
        }
        waiters.push(check)
      })
    },
    close () {
      socket.destroy()
    }
  }
  parser.onEvent = () => { for (const waiter of [...waiters]) waiter() }

  // De-chunks `Transfer-Encoding: chunked` incrementally (RFC 9112 §7.1).
  function readChunks (): void {
    for (;;) {
      const lineEnd = body.indexOf('\r\n')
      if (lineEnd === -1) return
      const size = Number.parseInt(body.subarray(0, lineEnd).toString('latin1'), 16)
      if (size === 0) {
        socket.end()
        return
      }
      if (body.length < lineEnd + 2 + size + 2) return
      parser.push(body.subarray(lineEnd + 2, lineEnd + 2 + size))
      body = body.subarray(lineEnd + 2 + size + 2)
    }
  }

  socket.on('data', (data: Buffer) => {
    if (!isHeadRead) {
      head = Buffer.concat([head, data])
      const headEnd = head.indexOf('\r\n\r\n')
      if (headEnd === -1) return
      const [statusLine, ...lines] = head.subarray(0, headEnd).toString('latin1').split('\r\n')
      stream.status = Number(statusLine.split(' ')[1])
      for (const line of lines) {
        const colon = line.indexOf(':')
        stream.headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
      }
      isHeadRead = true
      isChunked = stream.headers['transfer-encoding'] === 'chunked'
      data = head.subarray(headEnd + 4)
      markReady()
    }
    if (isChunked) {
      body = Buffer.concat([body, data])
      readChunks()
    } else {
      parser.push(data)
    }
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
 * Opens `path` with an optional Last-Event-ID; the socket is destroyed at `t`'s teardown.
 *
 * @example
 * const client = openTracked(t, port, '/scores', lastId)
 */
export function openTracked (t: { teardown (fn: () => unknown): void }, port: number, path: string, lastEventId?: string): RawStream {
  const client = openStream(port, path, lastEventId === undefined ? {} : { headers: { 'last-event-id': lastEventId } })
  t.teardown(() => client.close())
  return client
}

/**
 * The `seq` of every event received, for catalogs whose events carry one.
 *
 * @example
 * t.same(seqs(client), [0, 1, 2])
 */
export function seqs (client: RawStream): number[] {
  return client.parser.events.map((event) => (JSON.parse(event.data) as { seq: number }).seq)
}
