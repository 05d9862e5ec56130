/**
 * One connection for all the tabs of an origin (`shared: true`). Every tab asks for
 * the same Web Lock (`navigator.locks`); the one holding it is the leader: it runs
 * the real (fetch) transport and forwards what it receives to the other tabs over a
 * BroadcastChannel. The others wait in the lock's queue, and remember the id of the
 * last event forwarded to them. When the leader's tab closes, the browser releases
 * its lock, the next tab gets it and connects with that id as `Last-Event-ID`: a
 * stream that replays by id (a channel with history) then sends exactly what
 * followed, with no gap and no duplicate.
 *
 * Tabs share only when their requests would be the same, identity included: the lock
 * and channel are named after {@link sharingKey}. Anything arriving on the channel is
 * checked for shape before use (another version of this library, or any script of the
 * origin, may post there); a tab ignores what it cannot read.
 */
import { badOption, SseClientError, type ClientErrorCode } from './errors.js'
import type { FetchTransportOptions } from './fetch-options.js'
import type { StreamEvent } from './parser.js'
import type { ClientStatus, Transport, TransportSink } from './transport.js'

/**
 * `shared` as an object: `key` names whose stream it is (a user or account id). Tabs
 * share a connection only when their keys are equal, so a stream opened with one
 * user's token never serves another user's tab. Required when `headers` is a function or a `fetch` is given.
 *
 * @example
 * createClient('/inbox', { shared: { key: userId }, headers: () => ({ authorization: `Bearer ${token}` }) })
 */
export interface SharedOptions {
  readonly key: string
}

/** The part of `navigator.locks` (Web Locks API) used here. */
interface LockManagerLike {
  request (name: string, options: { signal: AbortSignal }, callback: () => Promise<void>): Promise<unknown>
}

/** The part of `BroadcastChannel` used here. */
interface BroadcastChannelLike {
  onmessage: ((message: { data: unknown }) => void) | null
  postMessage (message: SharedMessage): void
  close (): void
}

/** What tabs tell each other. */
type SharedMessage =
  | { readonly kind: 'hello' }
  | { readonly kind: 'status', readonly status: Exclude<ClientStatus, 'closed'> }
  | { readonly kind: 'event', readonly event: StreamEvent }
  | { readonly kind: 'stop', readonly error?: { code: ClientErrorCode, message: string, statusCode: number | undefined } }

/**
 * The prefix of the lock and channel names, so they cannot clash with the page's own;
 * the number is the message format's, so tabs running another version never meet.
 */
const NAME_PREFIX = 'fastify-typed-sse/2 '

const STATUSES: ReadonlySet<unknown> = new Set(['connecting', 'open', 'paused'])

/**
 * What tabs must have in common to share a connection: the method, URL, body and
 * credentials mode, the headers given as values (an object, a `Headers` or a `Map`,
 * read as `new Headers()` reads them), and the page's `key`. A headers function or a
 * `fetch` of the caller's can add anything at any time (a refreshed token, another
 * user's), so they cannot be compared: they need a `key`.
 *
 * @param customFetch the caller's `fetch` option, if any
 * @throws SseClientError TYPED_SSE_CLIENT_BAD_OPTION for a malformed `shared`, a body that is not a string, or a headers or fetch function without a key
 * @example
 * sharingKey(settings, { key: 'alice' }, undefined) // '["GET","https://app.example/inbox","","same-origin",[],"alice"]'
 */
export function sharingKey (request: Pick<FetchTransportOptions, 'method' | 'url' | 'body' | 'credentials' | 'headers'>, shared: unknown, customFetch: unknown): string {
  let key: string | undefined
  if (shared !== true) {
    const given = shared as Partial<SharedOptions> | null
    const extra = given !== null && typeof given === 'object' ? Object.keys(given).filter((name) => name !== 'key') : []
    if (given === null || typeof given !== 'object' || typeof given.key !== 'string' || given.key === '' || extra.length > 0) {
      throw badOption(`shared must be true, false or { key: string } (a non-empty key, nothing else), got ${describe(shared)}.`)
    }
    key = given.key
  }
  if (request.body !== undefined && typeof request.body !== 'string') {
    throw badOption('shared with a body needs a string body: tabs share a stream only when method, URL and body are the same.')
  }
  const opaque = typeof request.headers === 'function' ? 'a headers function' : customFetch !== undefined ? 'a fetch function' : undefined
  if (opaque !== undefined && key === undefined) {
    throw badOption(`shared with ${opaque} needs shared: { key } naming whose stream it is (the user id): ` +
      "tabs share a connection only with the same key, so one user's events never reach another user's tab.")
  }
  // As the request reads them (lowercased, sorted, combined): a Headers or a Map has no own entries to list.
  const headers = typeof request.headers === 'function' ? null : readHeaders(request.headers)
  return JSON.stringify([request.method.toUpperCase(), request.url, request.body ?? '', request.credentials, headers, key ?? null])
}

function readHeaders (headers: unknown): Array<[string, string]> {
  const pairs: Array<[string, string]> = []
  try {
    new Headers(headers as HeadersInit | undefined).forEach((value, name) => { pairs.push([name, value]) })
    return pairs
  } catch (cause) {
    throw badOption(`headers must be valid header names and values (an object, a Headers or a Map), got ${describe(headers)}.`, cause)
  }
}

function describe (value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}

/**
 * The message as this format defines it, or `undefined` for anything else. Errors
 * travel as plain fields: structured clone drops their class.
 */
function readMessage (data: unknown): SharedMessage | undefined {
  if (data === null || typeof data !== 'object') return undefined
  const message = data as Record<string, unknown>
  switch (message.kind) {
    case 'hello':
      return { kind: 'hello' }
    case 'status':
      return STATUSES.has(message.status) ? { kind: 'status', status: message.status as Exclude<ClientStatus, 'closed'> } : undefined
    case 'event': {
      const event = message.event as Record<string, unknown> | null
      if (event === null || typeof event !== 'object') return undefined
      const { type, data, lastEventId } = event
      // The id becomes the next leader's Last-Event-ID: only one a stream could have sent.
      return typeof type === 'string' && typeof data === 'string' && typeof lastEventId === 'string' && isStreamId(lastEventId)
        ? { kind: 'event', event: { type, data, lastEventId } }
        : undefined
    }
    case 'stop': {
      const error = message.error as Record<string, unknown> | null | undefined
      if (error === undefined) return { kind: 'stop' }
      if (error === null || typeof error !== 'object') return undefined
      const { code, message: text, statusCode } = error
      if (typeof code !== 'string' || !code.startsWith('TYPED_SSE_CLIENT_') || typeof text !== 'string') return undefined
      if (statusCode !== undefined && typeof statusCode !== 'number') return undefined
      return { kind: 'stop', error: { code: code as ClientErrorCode, message: text, statusCode } }
    }
    default:
      return undefined
  }
}

/** The longest id accepted from another tab, in UTF-16 units: far past any server's bound on Last-Event-ID. */
const MAX_ID_LENGTH = 4096

/** An id a stream can carry (§9.2.6: no CR, LF or NUL), of a sane length. */
function isStreamId (id: string): boolean {
  return id.length <= MAX_ID_LENGTH && !/[\r\n\0]/.test(id)
}

/**
 * Starts the real transport in the leader tab, resuming after `lastEventId`.
 *
 * @example
 * const start: LeaderTransportFactory = (lastEventId, sink) => new FetchTransport({ ...settings, lastEventId }, sink)
 */
export type LeaderTransportFactory = (lastEventId: string, sink: TransportSink) => Transport

/**
 * A transport that holds the connection in one tab and shares it with the others.
 *
 * @throws SseClientError TYPED_SSE_CLIENT_BAD_OPTION when the runtime has no Web Locks or BroadcastChannel
 * @example
 * const transport = new SharedTransport(`GET ${url}`, sink, (lastEventId, leaderSink) => new FetchTransport({ ...options, lastEventId }, leaderSink))
 */
export class SharedTransport implements Transport {
  readonly #sink: TransportSink
  readonly #start: LeaderTransportFactory
  readonly #channel: BroadcastChannelLike
  /** Aborts this tab's place in the lock queue when it closes before leading. */
  readonly #queue = new AbortController()
  #isClosed = false
  #isLeader = false
  #lastEventId = ''
  #status: Exclude<ClientStatus, 'closed'> = 'connecting'
  #inner: Transport | undefined
  #release: (() => void) | undefined

  constructor (key: string, sink: TransportSink, start: LeaderTransportFactory) {
    const locks = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator?.locks
    const Channel = (globalThis as { BroadcastChannel?: new (name: string) => BroadcastChannelLike }).BroadcastChannel
    if (locks === undefined || Channel === undefined) {
      throw badOption('shared: true needs Web Locks and BroadcastChannel (browsers, in a secure context or on localhost); leave it out here.')
    }
    this.#sink = sink
    this.#start = start
    this.#channel = new Channel(NAME_PREFIX + key)
    this.#channel.onmessage = this.#onMessage
    // A leader answers with its status, so a tab that joins an open stream shows it open.
    this.#channel.postMessage({ kind: 'hello' })
    // Rejects with an AbortError when this tab closes while still queued: nothing to do then.
    locks.request(NAME_PREFIX + key, { signal: this.#queue.signal }, () => this.#lead()).catch(() => {})
  }

  /** Whether this tab holds the connection. */
  get isLeader (): boolean {
    return this.#isLeader
  }

  listen (): void {
    // The leader's fetch transport hands every event on; there is nothing to subscribe to.
  }

  close (): void {
    if (this.#isClosed) return
    this.#isClosed = true
    this.#queue.abort()
    this.#inner?.close()
    this.#channel.close()
    // Gives the lock to the next tab, which takes over from the last id it saw.
    this.#release?.()
  }

  async #lead (): Promise<void> {
    // The old leader's last messages may still be queued for this tab: let them land
    // first, so the id this tab resumes from is the last one that was forwarded.
    await new Promise((resolve) => setTimeout(resolve, 0))
    if (this.#isClosed) return
    this.#isLeader = true
    const held = new Promise<void>((resolve) => { this.#release = resolve })
    this.#inner = this.#start(this.#lastEventId, this.#leaderSink)
    await held
  }

  readonly #leaderSink: TransportSink = {
    status: (status) => {
      this.#status = status
      this.#post({ kind: 'status', status })
      this.#sink.status(status)
    },
    event: (event) => {
      this.#lastEventId = event.lastEventId
      // Posted before the local dispatch: on `sse:end` the local client closes this transport.
      this.#post({ kind: 'event', event })
      this.#sink.event(event)
    },
    // Only the tab that holds the connection reports its hiccups.
    warn: (error) => { this.#sink.warn(error) },
    stop: (error) => {
      this.#post({ kind: 'stop', error: error === undefined ? undefined : { code: error.code, message: error.message, statusCode: error.statusCode } })
      this.#sink.stop(error)
    }
  }

  #post (message: SharedMessage): void {
    if (!this.#isClosed) this.#channel.postMessage(message)
  }

  readonly #onMessage = ({ data }: { data: unknown }): void => {
    const message = readMessage(data)
    if (this.#isClosed || message === undefined) return
    if (this.#isLeader) {
      if (message.kind === 'hello') this.#post({ kind: 'status', status: this.#status })
      // Anything else is a late message of the previous leader, already replayed to this one.
      return
    }
    switch (message.kind) {
      case 'event':
        this.#lastEventId = message.event.lastEventId
        this.#sink.event(message.event)
        break
      case 'status':
        this.#sink.status(message.status)
        break
      case 'stop':
        this.#sink.stop(message.error === undefined
          ? undefined
          : new SseClientError(message.error.code, message.error.message, { statusCode: message.error.statusCode }))
        break
      default:
        // 'hello' from another follower: only the leader answers.
    }
  }
}
