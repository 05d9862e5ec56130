/**
 * The fetch transport: the stream read with `fetch`, so requests can carry headers,
 * any method and a body, and reconnects are ours: the server's `retry:` first, then
 * doubling from a floor (lib/client/backoff.ts), `Retry-After` honoured on 429 and
 * 5xx, a hook to refresh credentials on 401/403, a deadline for the response head,
 * a liveness deadline for the body, a bound on an event's size, redirects to another
 * origin refused (lib/client/redirects.ts), and `Last-Event-ID` on every reconnect.
 */
import { backoffDelayMs, MAX_RECONNECT_DELAY_MS, retryAfterMs } from './backoff.js'
import { readBody } from './body-reader.js'
import { badOption, SseClientError } from './errors.js'
import { EventStreamParser } from './parser.js'
import { fetchFollowing } from './redirects.js'
import type { Transport, TransportSink } from './transport.js'
import type { FetchTransportOptions, HeadersOption, VisibilityDocument } from './fetch-options.js'
import { cancelBody, describeFailure, isSendableId, readFailure, utf8AsByteString } from './fetch-io.js'

/** The longest delay `setTimeout` takes; a longer one would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1

/** `text/event-stream`, with or without parameters (§9.2.3 checks the MIME type only). */
const EVENT_STREAM_TYPE = /^text\/event-stream\s*(;|$)/i

/**
 * Receives the stream with `fetch`, reconnecting until closed or told to stop.
 *
 * @example
 * const transport = new FetchTransport({ ...options, url }, sink)
 */
export class FetchTransport implements Transport {
  readonly #options: FetchTransportOptions
  readonly #sink: TransportSink
  readonly #document: VisibilityDocument | undefined
  #isClosed = false
  #isHidden = false
  #lastEventId: string
  /** `reconnectDelayMs`, until the server sends `retry:`. */
  #retryMs: number
  /** Reconnects since the last event: the backoff exponent. */
  #retries = 0
  #refusalsInRow = 0
  /** The last attempt failed before any response (reported once per outage, not per attempt). */
  #isUnreachable = false
  /** When a refusal was last retried at once (ms since the epoch). */
  #retriedAtOnceAt = -Infinity
  #attempt: AbortController | undefined
  /** Ends the current wait early (close, page shown or hidden). */
  #wake: (() => void) | undefined

  constructor (options: FetchTransportOptions, sink: TransportSink) {
    this.#options = options
    this.#sink = sink
    this.#lastEventId = options.lastEventId
    this.#retryMs = options.reconnectDelayMs
    const doc = (globalThis as { document?: VisibilityDocument }).document
    this.#document = options.pauseWhenHidden ? doc : undefined
    if (this.#document !== undefined) {
      this.#isHidden = this.#document.visibilityState === 'hidden'
      this.#document.addEventListener('visibilitychange', this.#onVisibility)
    }
    // A microtask later: a request refused at once (invalid headers) stops the client,
    // which must not happen before createClient has returned it.
    queueMicrotask(() => { void this.#run() })
  }

  /** The id that the next connection sends as `Last-Event-ID`. */
  get lastEventId (): string {
    return this.#lastEventId
  }

  listen (): void {
    // Every event is parsed and handed to the core, which drops those without handlers.
  }

  close (): void {
    if (this.#isClosed) return
    this.#isClosed = true
    this.#document?.removeEventListener('visibilitychange', this.#onVisibility)
    this.#attempt?.abort()
    this.#wake?.()
  }

  async #run (): Promise<void> {
    while (!this.#isClosed) {
      if (this.#isHidden) {
        this.#sink.status('paused')
        await this.#sleep(Infinity)
        continue
      }
      this.#sink.status('connecting')
      // A status listener may have closed the client: check before every await.
      if (this.#isClosed) return
      const delayMs = await this.#connect()
      if (delayMs === undefined || this.#isClosed) return
      if (this.#isHidden) continue
      this.#sink.status('connecting')
      if (this.#isClosed) return
      await this.#sleep(delayMs)
    }
  }

  /** One connection, from request to end of body: the wait before the next, or `undefined` to stop. */
  async #connect (): Promise<number | undefined> {
    const attempt = new AbortController()
    this.#attempt = attempt
    let isTimedOut = false
    const timeoutMs = this.#options.responseTimeoutMs
    const timer = Number.isFinite(timeoutMs)
      ? setTimeout(() => {
        isTimedOut = true
        attempt.abort()
      }, Math.min(timeoutMs, MAX_TIMER_MS))
      : undefined
    let response: Response
    try {
      const request = await this.#request(attempt.signal)
      if (request === 'retry') return this.#backoff()
      if (request === undefined) return undefined
      response = await fetchFollowing(this.#options.fetch, this.#options.url, request, this.#bareHeaders(), this.#options.crossOriginRedirect)
    } catch (cause) {
      if (this.#isClosed || this.#isHidden) return 0
      if (cause instanceof SseClientError) {
        this.#sink.stop(cause)
        return undefined
      }
      if (isTimedOut) {
        this.#sink.warn(new SseClientError('TYPED_SSE_CLIENT_TIMEOUT',
          `No response head within responseTimeoutMs (${this.#options.responseTimeoutMs} ms); reconnecting.`, { cause }))
      } else if (!this.#isUnreachable) {
        // A wrong port or host, a server down: said once, so a page or a log shows why nothing comes.
        this.#isUnreachable = true
        this.#sink.warn(new SseClientError('TYPED_SSE_CLIENT_NETWORK_ERROR',
          `Could not reach ${this.#options.url} (${describeFailure(cause)}); reconnecting with backoff.`, { cause }))
      }
      return this.#backoff()
    } finally {
      clearTimeout(timer)
    }
    this.#isUnreachable = false
    return await this.#read(response, attempt)
  }

  /** The request to send; `'retry'` when the headers function failed (reported), `undefined` when the client stopped. */
  async #request (signal: AbortSignal): Promise<RequestInit | 'retry' | undefined> {
    if (!isSendableId(this.#lastEventId)) {
      this.#sink.stop(new SseClientError('TYPED_SSE_CLIENT_UNSENDABLE_ID',
        `The last event id ${JSON.stringify(this.#lastEventId)} cannot be sent back exactly as Last-Event-ID (HTTP forbids control ` +
        'characters in a header, and trims spaces and tabs at its ends): resuming after another id would skip or repeat events, ' +
        'so the client will not reconnect. Have the server send ids without them.'))
      return undefined
    }
    const given = this.#options.headers
    let values: HeadersOption | undefined
    try {
      values = typeof given === 'function' ? await given() : given
    } catch (cause) {
      // The page's headers function failed (a token refresh that could not reach its server?): say so, retry later.
      this.#sink.warn(new SseClientError('TYPED_SSE_CLIENT_HANDLER_FAILED', 'The headers function threw; retrying with backoff.', { cause }))
      return 'retry'
    }
    if (this.#isClosed) return undefined
    let headers: Headers
    try {
      headers = new Headers(values as HeadersInit | undefined)
    } catch (cause) {
      this.#sink.stop(badOption(`${typeof given === 'function' ? 'What the headers function returned' : 'The headers option'} holds an invalid ` +
        'header name or value (a line break? a character above U+00FF?); the client will not connect.', cause))
      return undefined
    }
    this.#bareHeaders().forEach((value, name) => { headers.set(name, value) })
    return {
      method: this.#options.method,
      headers,
      body: this.#options.body,
      credentials: this.#options.credentials,
      cache: 'no-store',
      signal
    }
  }

  /** The headers every request carries, and the only ones sent past another origin. */
  #bareHeaders (): Headers {
    const headers = new Headers({ accept: 'text/event-stream' })
    // §9.2.3 sends it only when non-empty; an empty header would reset the server's position anyway.
    if (this.#lastEventId !== '') headers.set('last-event-id', utf8AsByteString(this.#lastEventId))
    return headers
  }

  async #read (response: Response, attempt: AbortController): Promise<number | undefined> {
    const statusCode = response.status
    if (statusCode !== 200) await cancelBody(response)
    // §9.2.3: 204 tells the client to stop; the server also answers it to a reconnect after the end.
    if (statusCode === 204) {
      this.#sink.stop()
      return undefined
    }
    if (statusCode === 401 || statusCode === 403) return await this.#refused(statusCode)
    if (statusCode === 429 || statusCode >= 500) {
      const delayMs = this.#backoff()
      const asked = retryAfterMs(response.headers.get('retry-after'))
      return asked === undefined ? delayMs : Math.min(Math.max(asked, delayMs), MAX_RECONNECT_DELAY_MS)
    }
    const type = response.headers.get('content-type') ?? ''
    if (statusCode !== 200 || !EVENT_STREAM_TYPE.test(type) || response.body === null) {
      if (statusCode === 200) await cancelBody(response)
      this.#sink.stop(new SseClientError('TYPED_SSE_CLIENT_CONNECTION_FAILED',
        `${this.#options.url} answered ${statusCode} ${type === '' ? 'without a content type' : type}, not a 200 text/event-stream; ` +
        'the client will not reconnect. Check the route, then create a new client.', { statusCode }))
      return undefined
    }
    this.#refusalsInRow = 0
    this.#sink.status('open')
    /** Events dispatched from the slice being parsed: the body reader yields to the page after enough of them. */
    let dispatched = 0
    const parser = new EventStreamParser({
      lastEventId: this.#lastEventId,
      maxEventBytes: this.#options.maxEventBytes,
      onRetry: (ms) => { this.#retryMs = ms },
      onEvent: (event) => {
        if (this.#isClosed) return
        dispatched++
        this.#retries = 0
        this.#lastEventId = event.lastEventId
        this.#sink.event(event)
      }
    })
    let isSilent = false
    const silenceMs = this.#options.heartbeatTimeoutMs
    try {
      await readBody(response.body, (bytes) => {
        dispatched = 0
        parser.push(bytes)
        this.#lastEventId = parser.lastEventId
        return dispatched
      }, {
        silenceMs,
        onSilence: () => {
          isSilent = true
          attempt.abort()
        },
        isStopped: () => this.#isClosed || this.#isHidden
      })
    } catch (cause) {
      attempt.abort()
      if (!this.#isClosed && !this.#isHidden) this.#sink.warn(readFailure(cause, isSilent, silenceMs))
    }
    if (this.#isClosed) return undefined
    // The body ended without the end event: a drop, so reconnect and resume.
    return this.#backoff()
  }

  async #refused (statusCode: number): Promise<number | undefined> {
    this.#refusalsInRow++
    const hook = this.#options.onUnauthorized
    let isRetry = false
    let cause: unknown
    try {
      isRetry = hook !== undefined && await hook({ statusCode, attempt: this.#refusalsInRow })
    } catch (err) {
      cause = err
    }
    if (this.#isClosed) return undefined
    if (isRetry !== true) {
      this.#sink.stop(new SseClientError('TYPED_SSE_CLIENT_UNAUTHORIZED',
        `${this.#options.url} answered ${statusCode}` + (hook === undefined
          ? '; pass onUnauthorized to refresh credentials and retry.'
          : '; onUnauthorized did not ask to retry.'), { statusCode, cause }))
      return undefined
    }
    // Fresh credentials are tried at once, at most once per maxReconnectDelayMs: a hook that
    // keeps saying yes backs off, even when a short stream between refusals resets the count.
    const now = Date.now()
    if (now - this.#retriedAtOnceAt < this.#options.maxReconnectDelayMs) return this.#backoff()
    this.#retriedAtOnceAt = now
    return 0
  }

  #backoff (): number {
    return backoffDelayMs(this.#retries++, this.#retryMs, { minMs: this.#options.minReconnectDelayMs, maxMs: this.#options.maxReconnectDelayMs })
  }

  /** Waits `ms` (Infinity: until woken); `close` and visibility changes end it early. */
  #sleep (ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.#isClosed) {
        resolve()
        return
      }
      // Not unref'd: an open client waiting to reconnect is work the process is doing.
      const timer = Number.isFinite(ms) ? setTimeout(done, Math.min(ms, MAX_TIMER_MS)) : undefined
      const wake = (): void => { done() }
      this.#wake = wake
      function done (): void {
        clearTimeout(timer)
        resolve()
      }
    })
  }

  readonly #onVisibility = (): void => {
    const isHidden = this.#document?.visibilityState === 'hidden'
    if (isHidden === this.#isHidden) return
    this.#isHidden = isHidden
    // Hidden: drop the connection (the server frees it); shown: reconnect at once with Last-Event-ID.
    if (isHidden) {
      this.#sink.status('paused')
      this.#attempt?.abort()
    }
    this.#wake?.()
  }
}
