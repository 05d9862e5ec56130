/**
 * The client core, whatever the transport: handlers by event name, parsing (JSON, or
 * raw text for `Text()` events), validation, status, control events (`sse:resync`,
 * `sse:missed`, `sse:end`) and errors reported to `onError`.
 */
import { END_EVENT, MISSED_EVENT_NAME, RESYNC_EVENT_NAME, TEXT_MARK } from './names.js'
import { liveState, type LiveState } from './state.js'
import type { Missed, Resync } from '../core/control.js'
import { SseClientError } from './errors.js'
import type { StreamEvent } from './parser.js'
import type { ClientStatus, Transport, TransportSink } from './transport.js'
import type { CatalogLike, ClientInit, EventMeta, SseClient } from './types.js'

// Handlers are stored untyped: each is only ever called with its own event's data and name.
type AnyHandler = (data: unknown, meta: EventMeta<any>) => void

/**
 * A typed client over the transport `openTransport` makes. Create one with `createClient`.
 *
 * @example
 * new TypedEventClient(url, options, (sink) => new FetchTransport(settings, sink))
 */
export class TypedEventClient implements SseClient {
  readonly #url: string
  readonly #transport: Transport
  readonly #catalog: CatalogLike | undefined
  readonly #text: ReadonlySet<string>
  readonly #validate: ClientInit['validate']
  readonly #onError: (error: SseClientError) => void
  readonly #subscriptions = new Map<string, Set<AnyHandler>>()
  readonly #statusListeners = new Set<(status: ClientStatus) => void>()
  readonly #endListeners = new Set<() => void>()
  readonly #signal: AbortSignal | undefined
  #status: ClientStatus = 'connecting'
  /** The keyed state and presence maps, made on first use. */
  #live: LiveState | undefined

  constructor (url: string, options: ClientInit, openTransport: (sink: TransportSink) => Transport) {
    this.#url = url
    const catalog = options.catalog
    this.#catalog = catalog
    this.#text = new Set(catalog === undefined
      ? Object.keys(options.text ?? {})
      : Object.keys(catalog.schemas).filter((name) => isTextSchema(catalog.schemas[name])))
    this.#validate = options.validate
    this.#onError = options.onError ?? ((error) => { console.error(error) })
    this.#transport = openTransport(this.#sink)
    this.#transport.listen(END_EVENT)
    this.#signal = options.signal
    if (this.#signal?.aborted === true) this.close()
    this.#signal?.addEventListener('abort', this.#onAbort)
  }

  get url (): string {
    return this.#url
  }

  get status (): ClientStatus {
    return this.#status
  }

  get isLeader (): boolean {
    return this.#transport.isLeader ?? true
  }

  on (event: string, handler: AnyHandler): () => void {
    this.#assertKnown(event)
    return this.#subscribe(event, handler)
  }

  #assertKnown (event: string): void {
    if (this.#catalog !== undefined && !Object.hasOwn(this.#catalog.schemas, event)) {
      throw new SseClientError('TYPED_SSE_CLIENT_UNKNOWN_EVENT',
        `Event "${event}" is not in the catalog (known: ${Object.keys(this.#catalog.schemas).join(', ')}).`, { event })
    }
  }

  off (event: string, handler: AnyHandler): void {
    const handlers = this.#subscriptions.get(event)
    if (handlers === undefined) return
    handlers.delete(handler)
    if (handlers.size === 0) this.#subscriptions.delete(event)
  }

  onStatus (listener: (status: ClientStatus) => void): () => void {
    this.#statusListeners.add(listener)
    return () => { this.#statusListeners.delete(listener) }
  }

  onResync (listener: (info: Resync) => void): () => void {
    return this.#subscribe(RESYNC_EVENT_NAME, listener as AnyHandler)
  }

  onMissed (listener: (info: Missed) => void): () => void {
    return this.#subscribe(MISSED_EVENT_NAME, listener as AnyHandler)
  }

  state (event: string, keyOf: (data: any) => string | number): ReadonlyMap<string, any> {
    this.#assertKnown(event)
    return this.#liveState().map(event, keyOf)
  }

  presence (): ReadonlyMap<string, any> {
    return this.#liveState().presence()
  }

  onState (listener: () => void): () => void {
    return this.#liveState().onChange(listener)
  }

  #liveState (): LiveState {
    return this.#live ??= liveState((event, handler) => this.#subscribe(event, handler as AnyHandler))
  }

  onEnd (listener: () => void): () => void {
    this.#endListeners.add(listener)
    return () => { this.#endListeners.delete(listener) }
  }

  close (): void {
    this.#finish(undefined, false)
  }

  /** The one way to `'closed'`: stops the transport, tells the listeners, forgets them. */
  #finish (error: SseClientError | undefined, isEnd: boolean): void {
    if (this.#status === 'closed') return
    this.#transport.close()
    this.#signal?.removeEventListener('abort', this.#onAbort)
    this.#subscriptions.clear()
    this.#setStatus('closed')
    if (error !== undefined) this.#report(error)
    if (isEnd) {
      for (const listener of [...this.#endListeners]) {
        this.#call(() => { listener() }, 'An end listener threw.')
      }
    }
    this.#statusListeners.clear()
    this.#endListeners.clear()
  }

  #subscribe (event: string, handler: AnyHandler): () => void {
    let handlers = this.#subscriptions.get(event)
    if (handlers === undefined) {
      handlers = new Set()
      this.#subscriptions.set(event, handlers)
      this.#transport.listen(event)
    }
    handlers.add(handler)
    return () => { this.off(event, handler) }
  }

  #dispatch (message: StreamEvent): void {
    const event = message.type
    if (event === END_EVENT) {
      this.#finish(undefined, true)
      return
    }
    const handlers = this.#subscriptions.get(event)
    if (handlers === undefined) return
    const isControl = event.startsWith('sse:')
    let data: unknown = message.data
    if (isControl || !this.#text.has(event)) {
      try {
        data = JSON.parse(message.data)
      } catch (cause) {
        this.#report(new SseClientError('TYPED_SSE_CLIENT_INVALID_JSON',
          `Data of event "${event}" is not JSON. If the server declares it with Text(), ` +
          `list it in the client's \`text\` option or pass the catalog.`, { event, data: message.data, cause }))
        return
      }
    }
    const validate = this.#validate
    if (!isControl && validate !== undefined && !this.#isValid(validate, event, data)) return
    const meta: EventMeta = { event, lastEventId: message.lastEventId, id: message.lastEventId === '' ? undefined : message.lastEventId }
    // A copy: a handler may remove itself (or others) while the event is dispatched.
    for (const handler of [...handlers]) {
      this.#call(() => { handler(data, meta) }, `A handler of event "${event}" threw.`, { event, data })
    }
  }

  #isValid (validate: NonNullable<ClientInit['validate']>, event: string, data: unknown): boolean {
    let verdict: boolean | string
    let cause: unknown
    try {
      verdict = validate(event, data)
    } catch (err) {
      verdict = false
      cause = err
    }
    if (verdict === true) return true
    const reason = typeof verdict === 'string' ? `: ${verdict}` : ''
    this.#report(new SseClientError('TYPED_SSE_CLIENT_INVALID_DATA',
      `Data of event "${event}" failed validation${reason}. The event was not delivered.`, { event, data, cause }))
    return false
  }

  /** What the transport reports to: bound once, so the transport holds no reference to `this` beyond it. */
  readonly #sink: TransportSink = {
    status: (status) => { if (this.#status !== 'closed') this.#setStatus(status) },
    event: (event) => { if (this.#status !== 'closed') this.#dispatch(event) },
    warn: (error) => { this.#report(error) },
    stop: (error) => { this.#finish(error, error === undefined) }
  }

  readonly #onAbort = (): void => {
    this.close()
  }

  #setStatus (status: ClientStatus): void {
    if (status === this.#status) return
    this.#status = status
    for (const listener of [...this.#statusListeners]) {
      this.#call(() => { listener(status) }, `A status listener threw on "${status}".`)
    }
  }

  #call (fn: () => void, message: string, details: { event?: string, data?: unknown } = {}): void {
    try {
      fn()
    } catch (cause) {
      this.#report(new SseClientError('TYPED_SSE_CLIENT_HANDLER_FAILED', message, { ...details, cause }))
    }
  }

  #report (error: SseClientError): void {
    try {
      this.#onError(error)
    } catch {
      // onError itself failed: nothing is left to report to, and throwing here would
      // break the transport's dispatch for the other listeners.
    }
  }
}

function isTextSchema (schema: unknown): boolean {
  return typeof schema === 'object' && schema !== null && (schema as Record<string, unknown>)[TEXT_MARK] === 'text'
}
