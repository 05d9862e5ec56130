/**
 * The open streams of one Fastify instance: one shared heartbeat ticker for all of
 * them (not a timer per stream), which also finds stalled clients; the counters behind
 * `app.sse.stats()`; and the shutdown that `fastify.close()` waits for. Streams report
 * what they do through its methods; nothing else writes its counters.
 */
import type { FastifyRequest } from 'fastify'
import { kHeartbeat, kHubIndex, kLastWriteTick, kShutdown } from '../core/symbols.js'

/**
 * Why a stream closed: `'client'` left, the application called `close()` or `end()`
 * (`'server'`), the queue policy (`'policy'`), a client that read nothing for two
 * heartbeat periods (`'stalled'`), `maxDurationMs` or `endsAt` (`'duration'`),
 * `fastify.close()` (`'shutdown'`), or a failure: a producer error, a failed
 * subscriber (`'error'`).
 */
export type CloseReason = 'client' | 'server' | 'policy' | 'stalled' | 'duration' | 'shutdown' | 'error'

/** Why a request for a stream was refused before it opened. */
export type RejectReason = 'max_streams' | 'max_streams_per_key' | 'admission_unavailable' | 'not_acceptable'

/** What the hub needs of a stream; implemented by `SseStream`. */
export interface HubMember {
  /** The request the stream answers: its declared route labels the open count. */
  readonly request: FastifyRequest
  /** The ticker's count at this stream's last write. */
  [kLastWriteTick]: number
  /** Where the hub keeps this stream (-1 when it does not): set by the hub only. */
  [kHubIndex]: number
  /** Writes a heartbeat if the stream is idle, or closes it if it is stalled (`isStalled`). */
  [kHeartbeat] (): void
  /** Ends the stream for shutdown; resolves when its connection has let go. */
  [kShutdown] (graceMs: number): Promise<void>
}

/** Counters of one hub, read by `app.sse.stats()`. */
export interface StreamCounters {
  /** Streams opened since start. */
  opened: number
  /** Streams closed since start, by reason. */
  closed: Record<CloseReason, number>
  /** Requests refused before a stream opened, by reason. */
  rejected: Record<RejectReason, number>
  /** Streams closed by their queue policy (a client that did not read): `closed.policy`. */
  closedByPolicy: number
  /** Events dropped by the `'drop-oldest'` policy. */
  droppedEvents: number
  /** Queued keyed events replaced by a newer event of the same key (the `'coalesce'` policy). */
  coalescedEvents: number
  /** Events (not comments) written or queued to clients. */
  eventsSent: number
  /** Bytes handed to sockets, comments and heartbeats included. */
  bytesWritten: number
  /** Bytes waiting in stream queues now. */
  queuedBytes: number
  /** Streams open now, by declared route (`/rooms/:id`, never the request's URL; `''` outside a route). */
  openByRoute: Record<string, number>
}

/** Ticks per heartbeat period: a heartbeat goes out after 1 to 1.25 periods of silence. */
export const TICKS_PER_HEARTBEAT = 4
/** Heartbeat periods without a single socket write after which a backed-up client counts as stalled. */
const STALLED_PERIODS = 2

function byReason<K extends string> (keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map((key) => [key, 0])) as Record<K, number>
}

const CLOSE_REASONS: readonly CloseReason[] = ['client', 'server', 'policy', 'stalled', 'duration', 'shutdown', 'error']
const REJECT_REASONS: readonly RejectReason[] = ['max_streams', 'max_streams_per_key', 'admission_unavailable', 'not_acceptable']

/**
 * Open streams, their shared clock and their counters.
 *
 * @example
 * const hub = new StreamHub(15_000)
 * hub.add(stream); hub.size // 1
 */
export class StreamHub {
  /** Incremented by the ticker; streams stamp it on every write. */
  tick = 0
  readonly #closed = byReason(CLOSE_REASONS)
  readonly #rejected = byReason(REJECT_REASONS)
  #opened = 0
  #droppedEvents = 0
  #coalescedEvents = 0
  #eventsSent = 0
  #bytesWritten = 0
  #queuedBytes = 0
  readonly #openByRoute = new Map<string, number>()
  /**
   * The open streams, each knowing its own index: an array slot per stream costs less
   * than a Set entry (about 8 to 12 B against 20 to 40), removal is a swap with the last.
   */
  readonly #members: HubMember[] = []
  #timer: NodeJS.Timeout | undefined
  /**
   * How long a backed-up client may accept no byte before it counts as stalled: two
   * heartbeat periods. Without heartbeats, nothing checks.
   */
  readonly stalledMs: number | false

  constructor (heartbeatMs: number | false) {
    this.stalledMs = heartbeatMs === false ? false : STALLED_PERIODS * heartbeatMs
    if (heartbeatMs === false) return
    this.#timer = setInterval(() => this.#onTick(), Math.max(1, Math.floor(heartbeatMs / TICKS_PER_HEARTBEAT)))
    // A heartbeat never keeps the process alive on its own.
    this.#timer.unref()
  }

  /** Open streams now. */
  get size (): number {
    return this.#members.length
  }

  /** A snapshot of the counters. */
  get counters (): StreamCounters {
    return {
      opened: this.#opened,
      closed: { ...this.#closed },
      rejected: { ...this.#rejected },
      closedByPolicy: this.#closed.policy,
      droppedEvents: this.#droppedEvents,
      coalescedEvents: this.#coalescedEvents,
      eventsSent: this.#eventsSent,
      bytesWritten: this.#bytesWritten,
      queuedBytes: this.#queuedBytes,
      openByRoute: Object.fromEntries(this.#openByRoute)
    }
  }

  add (member: HubMember): void {
    member[kLastWriteTick] = this.tick
    member[kHubIndex] = this.#members.length
    this.#members.push(member)
    this.#opened++
    const route = member.request.routeOptions.url ?? ''
    this.#openByRoute.set(route, (this.#openByRoute.get(route) ?? 0) + 1)
  }

  remove (member: HubMember, reason: CloseReason): void {
    const members = this.#members
    const index = member[kHubIndex]
    if (members[index] !== member) return
    const last = members.pop() as HubMember
    if (last !== member) {
      members[index] = last
      last[kHubIndex] = index
    }
    member[kHubIndex] = -1
    this.#closed[reason]++
    const route = member.request.routeOptions.url ?? ''
    this.#openByRoute.set(route, (this.#openByRoute.get(route) as number) - 1)
  }

  /** A request refused before its stream opened. */
  rejected (reason: RejectReason): void {
    this.#rejected[reason]++
  }

  /** `bytes` handed to a socket; `events` of them were events (not comments). */
  wrote (bytes: number, events: number): void {
    this.#bytesWritten += bytes
    this.#eventsSent += events
  }

  /** An event queued behind a slow client (counted as sent: it is the stream's to deliver). */
  queued (bytes: number, events: number): void {
    this.#queuedBytes += bytes
    this.#eventsSent += events
  }

  /** `bytes` left a queue (written, dropped, or the stream closed). */
  unqueued (bytes: number): void {
    this.#queuedBytes -= bytes
  }

  /** Events the `'drop-oldest'` policy dropped. */
  dropped (events: number): void {
    this.#droppedEvents += events
  }

  /** Queued events the `'coalesce'` policy replaced by newer ones. */
  coalesced (events: number): void {
    this.#coalescedEvents += events
  }

  /**
   * True when a backed-up member's socket accepted no byte for `stalledMs`: a half-open
   * or frozen client, whose memory is better freed (a live client reconnects and replays).
   */
  isStalled (member: HubMember): boolean {
    return this.tick - member[kLastWriteTick] > STALLED_PERIODS * TICKS_PER_HEARTBEAT
  }

  #onTick (): void {
    const tick = ++this.tick
    const members = this.#members
    // Backwards: a heartbeat may close streams, and a removal moves the last member
    // (already visited) into the freed slot, so no open member is skipped.
    for (let i = members.length - 1; i >= 0; i--) {
      const member = members[i]
      if (member === undefined) continue
      // Strictly more: a write stamps the tick already begun, so after N more ticks only
      // N-1 to N quarters have passed; N+1 ticks make the 1 to 1.25 periods documented.
      if (tick - member[kLastWriteTick] > TICKS_PER_HEARTBEAT) member[kHeartbeat]()
    }
  }

  /**
   * Ends every open stream and stops the ticker. Resolves once every connection has
   * let go; connections still flushing after `graceMs` are destroyed.
   */
  async close (graceMs: number): Promise<void> {
    clearInterval(this.#timer)
    await Promise.all(this.#members.slice().map((member) => member[kShutdown](graceMs)))
  }
}
