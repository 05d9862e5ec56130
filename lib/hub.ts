/**
 * The set of open streams of one Fastify instance: one shared heartbeat ticker for
 * all of them (not a timer per stream), counters for `app.sse.stats()`, and the
 * shutdown that `fastify.close()` waits for.
 */

/** What the hub needs of a stream; implemented by `SseStream`. */
export interface HubMember {
  /** The ticker's count at this stream's last write. */
  lastWriteTick: number
  /** Writes a heartbeat if the stream is idle and not backed up. */
  heartbeat (): void
  /** Ends the stream for shutdown; resolves when its connection has let go. */
  shutdown (graceMs: number): Promise<void>
}

/** Counters of one hub, read by `app.sse.stats()`. */
export interface StreamCounters {
  /** Streams opened since start. */
  opened: number
  /** Streams closed by their queue policy (a client that did not read). */
  closedByPolicy: number
  /** Events dropped by the `'drop-oldest'` policy. */
  droppedEvents: number
  /** Events (not comments) written or queued to clients. */
  eventsSent: number
  /** Bytes handed to sockets, comments and heartbeats included. */
  bytesWritten: number
  /** Bytes waiting in stream queues now. */
  queuedBytes: number
}

/** Ticks per heartbeat period: a heartbeat goes out after 1 to 1.25 periods of silence. */
export const TICKS_PER_HEARTBEAT = 4

/**
 * Open streams and their shared clock.
 *
 * @example
 * const hub = new StreamHub(15_000)
 * hub.add(stream); hub.size // 1
 */
export class StreamHub {
  /** Incremented by the ticker; streams stamp it on every write. */
  tick = 0
  readonly counters: StreamCounters = {
    opened: 0, closedByPolicy: 0, droppedEvents: 0, eventsSent: 0, bytesWritten: 0, queuedBytes: 0
  }

  readonly #members = new Set<HubMember>()
  #timer: NodeJS.Timeout | undefined

  constructor (heartbeatMs: number | false) {
    if (heartbeatMs === false) return
    this.#timer = setInterval(() => this.#onTick(), Math.max(1, Math.floor(heartbeatMs / TICKS_PER_HEARTBEAT)))
    // A heartbeat never keeps the process alive on its own.
    this.#timer.unref()
  }

  /** Open streams now. */
  get size (): number {
    return this.#members.size
  }

  add (member: HubMember): void {
    member.lastWriteTick = this.tick
    this.#members.add(member)
    this.counters.opened++
  }

  remove (member: HubMember): void {
    this.#members.delete(member)
  }

  #onTick (): void {
    const tick = ++this.tick
    for (const member of this.#members) {
      // Strictly more: a write stamps the tick already begun, so after N more ticks only
      // N-1 to N quarters have passed; N+1 ticks make the 1 to 1.25 periods documented.
      if (tick - member.lastWriteTick > TICKS_PER_HEARTBEAT) member.heartbeat()
    }
  }

  /**
   * Ends every open stream and stops the ticker. Resolves once every connection has
   * let go; connections still flushing after `graceMs` are destroyed.
   */
  async close (graceMs: number): Promise<void> {
    clearInterval(this.#timer)
    await Promise.all([...this.#members].map((member) => member.shutdown(graceMs)))
  }
}
