/**
 * The browser's own `EventSource` (or the `eventsource` package in Node) as a
 * transport. Reconnects are the EventSource's (WHATWG HTML §9.2.3): it waits the
 * server's `retry:` delay and reconnects with `Last-Event-ID`. It cannot send
 * headers, a method or a body, and it gives up on any response that is not a 200
 * event stream: the fetch transport does those things.
 */
import { SseClientError } from './errors.js'
import type { Transport, TransportSink } from './transport.js'

/** `EventSource.CLOSED` (WHATWG HTML §9.2.2): the source gave up and will not reconnect. */
const READY_STATE_CLOSED = 2

/** The message events the client reads: the standard `MessageEvent`, or a polyfill's. */
interface MessageEventLike {
  readonly data: string
  readonly lastEventId: string
}

/** The part of the `EventSource` API the client uses; the standard one and the `eventsource` package fit. */
interface EventSourceLike {
  readonly readyState: number
  addEventListener (type: string, listener: (event: MessageEventLike) => void): void
  removeEventListener (type: string, listener: (event: MessageEventLike) => void): void
  close (): void
}

/**
 * An `EventSource` constructor: `globalThis.EventSource`, or `EventSource` from the `eventsource` package.
 *
 * @example
 * import { EventSource } from 'eventsource'
 * const Source: EventSourceConstructor = EventSource
 */
export type EventSourceConstructor = new (url: string, init?: { withCredentials?: boolean }) => EventSourceLike

/**
 * Receives the stream through an EventSource.
 *
 * @example
 * const transport = new EventSourceTransport(EventSource, url, false, sink)
 */
export class EventSourceTransport implements Transport {
  readonly #source: EventSourceLike
  readonly #sink: TransportSink
  readonly #listeners = new Map<string, (message: MessageEventLike) => void>()

  constructor (Source: EventSourceConstructor, url: string, withCredentials: boolean, sink: TransportSink) {
    this.#sink = sink
    this.#source = new Source(url, { withCredentials })
    this.#source.addEventListener('open', this.#onOpen)
    this.#source.addEventListener('error', this.#onError)
  }

  listen (event: string): void {
    if (this.#listeners.has(event)) return
    // One EventSource listener per event name: the core parses the data once, whatever the number of handlers.
    const listener = (message: MessageEventLike): void => {
      this.#sink.event({ type: event, data: message.data, lastEventId: message.lastEventId })
    }
    this.#listeners.set(event, listener)
    this.#source.addEventListener(event, listener)
  }

  close (): void {
    this.#source.close()
    this.#source.removeEventListener('open', this.#onOpen)
    this.#source.removeEventListener('error', this.#onError)
    for (const [event, listener] of this.#listeners) this.#source.removeEventListener(event, listener)
    this.#listeners.clear()
  }

  readonly #onOpen = (): void => {
    this.#sink.status('open')
  }

  readonly #onError = (event: unknown): void => {
    if (this.#source.readyState !== READY_STATE_CLOSED) {
      // A dropped or ended stream: the EventSource reconnects by itself.
      this.#sink.status('connecting')
      return
    }
    // The EventSource "failed the connection" (§9.2.3): the response was not a 200
    // text/event-stream (a 204, 401, 404, 406, 503...). It will not retry.
    this.close()
    this.#sink.stop(new SseClientError('TYPED_SSE_CLIENT_CONNECTION_FAILED',
      'The stream was refused (not a 200 text/event-stream response); the EventSource will not reconnect. ' +
      "Check the route and its auth, or use transport: 'fetch', which retries 5xx and 429 and can refresh credentials.", { cause: event }))
  }
}
