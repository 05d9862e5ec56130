/**
 * What the client core and its transports (fetch, EventSource, shared tabs) say to
 * each other. Types only: nothing here exists at run time.
 */
import type { SseClientError } from './errors.js'
import type { StreamEvent } from './parser.js'

/**
 * The connection state: `'connecting'` also while reconnecting; `'paused'` while the
 * page is hidden (`pauseWhenHidden`); `'closed'` is final.
 *
 * @example
 * client.onStatus((status: ClientStatus) => { badge.dataset.state = status })
 */
export type ClientStatus = 'connecting' | 'open' | 'paused' | 'closed'

/**
 * Where a transport reports to: the client core.
 *
 * @example
 * const sink: TransportSink = { status: show, event: dispatch, warn: report, stop: finish }
 */
export interface TransportSink {
  /** Any state but `'closed'`, which only `stop` (or the core's `close`) sets. */
  status (status: Exclude<ClientStatus, 'closed'>): void
  /** A dispatched event, control events included. */
  event (event: StreamEvent): void
  /** A problem the transport recovers from by itself (it reconnects). */
  warn (error: SseClientError): void
  /** The transport stopped for good: with the reason, or none when the server said there is no more (HTTP 204). */
  stop (error?: SseClientError): void
}

/**
 * A way to receive the stream.
 *
 * @example
 * const transport: Transport = new FetchTransport(settings, sink)
 */
export interface Transport {
  /** `false` while another tab holds the connection (shared); absent means `true`. */
  readonly isLeader?: boolean
  /** The client has a handler for `event` (the EventSource delivers only names it listens to). */
  listen (event: string): void
  /** Ends the connection and any reconnect; reports nothing more. */
  close (): void
}
