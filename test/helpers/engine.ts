/**
 * Reading an engine channel's history whole, for tests of an engine (replays read it a
 * page at a time: lib/replay-reads.ts).
 */
import type { EngineChannel, ReplayResult, SseEngine } from '../../lib/engine/engine.js'

/** As much as a page may hold: everything. */
const WHOLE = { maxEvents: Number.MAX_SAFE_INTEGER, maxBytes: Number.MAX_SAFE_INTEGER }

/**
 * Every retained message after `after` (`undefined`: from the oldest), in one page.
 *
 * @example
 * t.same(await readAll(channel, id), { status: 'ok', messages: [...] })
 */
export async function readAll (channel: EngineChannel, after: string | undefined): Promise<ReplayResult> {
  const page = await channel.readPage(after, WHOLE)
  return page.status === 'ok' ? { status: 'ok', messages: page.messages } : page
}

/** An engine whose live deliveries are held until released (see {@link laggingEngine}). */
export interface LaggingEngine {
  readonly engine: SseEngine
  /** Deliveries heard and held so far. */
  readonly held: number
  readonly isLagging: boolean
  /** Delivers what was held, in order, and everything after at once. */
  release (): void
}

/**
 * Wraps an engine so that its live deliveries lag: as an instance whose subscription
 * is behind the one a client left. Publishes, reads and ids pass through.
 *
 * @example
 * const lag = laggingEngine(memoryEngine())
 * // ... the client resumes here, then:
 * lag.release()
 */
export function laggingEngine (inner: SseEngine): LaggingEngine {
  let isLagging = true
  const held: Array<() => void> = []
  const engine: SseEngine = {
    ready: async () => await inner.ready?.(),
    close: async () => await inner.close(),
    compareIds: (a, b) => inner.compareIds(a, b),
    channel (name, history, listener) {
      const channel = inner.channel(name, history, {
        deliver (message) {
          if (isLagging) held.push(() => listener.deliver(message))
          else listener.deliver(message)
        },
        gap: () => listener.gap()
      })
      return {
        publish: async (message) => await channel.publish(message),
        readPage: async (lastEventId, limit) => await channel.readPage(lastEventId, limit),
        close: () => channel.close()
      }
    }
  }
  return {
    engine,
    get held () { return held.length },
    get isLagging () { return isLagging },
    release () {
      isLagging = false
      for (const deliver of held.splice(0)) deliver()
    }
  }
}
