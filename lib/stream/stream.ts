/**
 * The typed API of a stream: events validated against its catalog, comments, retry,
 * close, end, and `from()` an iterable. Its life on the response (backlog, close,
 * heartbeats, shutdown) is response.ts's.
 */
import { compiledEvent, serializePayload, type EventCatalog, type EventData, type EventName, type Events, type SendOptions, type SseMessage } from '../core/catalog.js'
import { END_EVENT } from '../core/control.js'
import { EventTooLargeError } from '../core/errors.js'
import { commentFrame, controlFrame, eventText, retryFrame } from '../core/frame.js'
import { kContext, kEnd, kFail, kWrite } from '../core/symbols.js'
import { pipe } from './producer.js'
import { ResponseStream } from './response.js'

export type { CloseReason } from './hub.js'

/**
 * An open event stream to one client, typed by its catalog. Get one with
 * `reply.sse(catalog)` (or `reply.sse()` in a route declared `{ sse: catalog }`); name
 * its type `SseStream<typeof catalog>`.
 *
 * @example
 * app.get('/time', (request, reply) => {
 *   const stream = reply.sse(clock)
 *   const timer = setInterval(() => stream.send('tick', { now: new Date().toISOString(), epochMs: Date.now() }), 1000)
 *   stream.onClose(() => clearInterval(timer))
 * })
 */
export class SseStream<C extends EventCatalog<any> = EventCatalog> extends ResponseStream<C> {
  /**
   * Validates and sends one event. Everything is checked before anything is written:
   * an invalid payload, id or retry throws and leaves the stream as it was.
   *
   * @returns `true` when written at once; `false` when queued behind a slow client
   *   (await `drained()` before sending more) or when the stream is closed (a no-op).
   * @throws TYPED_SSE_INVALID_PAYLOAD, TYPED_SSE_INVALID_ID, TYPED_SSE_INVALID_RETRY,
   *   TYPED_SSE_UNKNOWN_EVENT, TYPED_SSE_EVENT_TOO_LARGE
   * @example
   * stream.send('tick', { now: new Date().toISOString(), epochMs: Date.now() }, { id: 42 })
   */
  send<K extends EventName<Events<C>>> (event: K, data: EventData<Events<C>, K>, options?: SendOptions): boolean {
    const text = serializePayload(compiledEvent(this.catalog, event), data)
    const { maxEventBytes } = this[kContext]
    // A UTF-16 unit is at least one byte: a text this long is too large whatever it holds,
    // and is refused before its frame is built.
    if (maxEventBytes !== false && text.length > maxEventBytes) throw new EventTooLargeError(event, Buffer.byteLength(text), maxEventBytes)
    const frame = Buffer.from(eventText(event, text, options?.id, options?.retry))
    if (maxEventBytes !== false && frame.length > maxEventBytes) throw new EventTooLargeError(event, frame.length, maxEventBytes)
    return this[kWrite](frame)
  }

  /**
   * Sends a comment (ignored by clients, seen by proxies). Line breaks give several comment lines.
   *
   * @returns as `send()`
   * @throws TYPED_SSE_INVALID_COMMENT for a value that is neither a string nor a number
   * @example
   * stream.comment('still here')
   */
  comment (text: string | number = ''): boolean {
    const frame = commentFrame(text)
    return this[kWrite](frame, 0)
  }

  /**
   * Sets the client's reconnection delay.
   *
   * @throws TYPED_SSE_INVALID_RETRY unless a non-negative integer
   * @example
   * stream.retry(10_000)
   */
  retry (ms: number): boolean {
    const frame = retryFrame(ms)
    return this[kWrite](frame, 0)
  }

  /**
   * Closes the stream; the client reconnects (after its retry delay) with its last id.
   * Queued events are still flushed, within the plugin's `closeGraceMs`. A no-op when
   * already closed. Use `end()` for a stream that is finished for good.
   *
   * @example
   * stream.close()
   */
  close (): void {
    this[kEnd]('server')
  }

  /**
   * Finishes the stream for good: sends the `sse:end` control event (the typed client
   * stops; a plain EventSource that reconnects anyway gets 204 and stops), then closes.
   *
   * @example
   * stream.send('done', { tokens: 42 }); stream.end()
   */
  end (): void {
    if (!this.isOpen) return
    this[kWrite](controlFrame(END_EVENT, {}, END_EVENT), 0)
    this[kEnd]('server')
  }

  /**
   * Sends every message of `source`, honouring backpressure, then (unless
   * `end: false`) ends the stream for good (`end()`). When the client leaves, the
   * iterator's `return()` is called at once, so the producer's `finally` blocks run. A
   * producer error (or an invalid message) is logged through `request.log` with code
   * TYPED_SSE_PRODUCER_FAILED and closes the stream; the promise never rejects. An
   * error thrown after the stream closed (an abort through `signal`) is not a failure.
   *
   * @example
   * async function * tokens () { for await (const t of llm.stream(prompt)) yield { event: 'token', data: t } }
   * await stream.from(tokens())
   */
  from (source: AsyncIterable<SseMessage<Events<C>>> | Iterable<SseMessage<Events<C>>>, { end = true }: { end?: boolean } = {}): Promise<void> {
    const stream = this
    return pipe({
      get isOpen () { return stream.isOpen },
      send: ({ event, data, id, retry }) => this.send(event, data, id === undefined && retry === undefined ? undefined : { id, retry }),
      drained: () => this.drained(),
      onClose: (fn) => this.onClose(fn),
      end: () => this.end(),
      fail: (err) => this[kFail](err)
    }, source, end)
  }
}
