/**
 * How replays read history: a page at a time, a bounded number of reads at once per
 * instance (the rest wait their turn, first come first served), and one read for every
 * replay of a channel that asks for the same page while it waits or runs. So a storm of
 * reconnects (a deploy, a network blip) costs the engine's backend a bounded amount at
 * any moment, and as many reads as there are distinct positions, not clients.
 *
 * Why a read can be shared (lib/merge.ts): a replay holds live messages from before its
 * read starts. A read queued when a replay asks starts later, and one that started
 * after the replay began holding is just as good; a read that started earlier may miss
 * a message the replay's hold missed too, so the replay gets a read of its own.
 */
import type { PageLimit, ReplayPage } from './engine.js'

/** What one page of a replay holds at most: 256 events, or 1 MiB of payload once one event is in. */
export const REPLAY_PAGE: PageLimit = Object.freeze({ maxEvents: 256, maxBytes: 1024 * 1024 })

/** History reads that run at once per instance (every channel together); the others wait. */
export const MAX_REPLAY_READS = 4

let ticks = 0

/**
 * A tick of the hold clock: replays take one when they start holding live messages,
 * reads one when they start, so the two can be ordered.
 *
 * @example
 * const heldSince = holdTick()
 */
export function holdTick (): number {
  return ++ticks
}

/**
 * Runs reads, at most `max` at once, the others in the order they came.
 *
 * @example
 * const queue = new ReadQueue(MAX_REPLAY_READS)
 * const page = await queue.run(() => engine.readPage(id, REPLAY_PAGE))
 */
export class ReadQueue {
  readonly #max: number
  readonly #waiting: Array<() => void> = []
  #running = 0

  constructor (max: number) {
    this.#max = max
  }

  /** Reads waiting for their turn now. */
  get waiting (): number {
    return this.#waiting.length
  }

  /** Runs `read` once fewer than `max` run; settles as it does. */
  async run<T> (read: () => Promise<T> | T): Promise<T> {
    if (this.#running >= this.#max) await new Promise<void>((resolve) => this.#waiting.push(resolve))
    else this.#running++
    try {
      return await read()
    } finally {
      // The slot passes straight to the next in line (the count stays), or is freed.
      const next = this.#waiting.shift()
      if (next !== undefined) next()
      else this.#running--
    }
  }
}

interface PageRead {
  page: Promise<ReplayPage>
  /** The hold clock's tick when the read started; undefined while it waits its turn. */
  startedAt: number | undefined
}

/**
 * The page reads of one channel, shared by its replays (see the module comment).
 *
 * @example
 * const pages = new PageReads(queue, (after, limit) => engine.readPage(after, limit))
 * const page = await pages.read(cursor, subscriber.heldSince)
 */
export class PageReads {
  readonly #queue: ReadQueue
  readonly #read: (after: string | undefined, limit: PageLimit) => Promise<ReplayPage> | ReplayPage
  /** Reads waiting or running, by the id they read after ('' for the oldest). */
  readonly #pending = new Map<string, PageRead>()

  constructor (queue: ReadQueue, read: (after: string | undefined, limit: PageLimit) => Promise<ReplayPage> | ReplayPage) {
    this.#queue = queue
    this.#read = read
  }

  /**
   * The page after `after`, from a read that starts after `heldSince` (a tick of the
   * hold clock taken when the replay began holding live messages).
   */
  async read (after: string | undefined, heldSince: number): Promise<ReplayPage> {
    const key = after ?? ''
    const pending = this.#pending.get(key)
    if (pending !== undefined && (pending.startedAt === undefined || pending.startedAt > heldSince)) return await pending.page
    // The queue may call the read at once, before run() returns: the entry comes first.
    const read: PageRead = { page: undefined as unknown as Promise<ReplayPage>, startedAt: undefined }
    read.page = this.#queue.run(() => {
      read.startedAt = holdTick()
      return this.#read(after, REPLAY_PAGE)
    })
    this.#pending.set(key, read)
    const forget = (): void => {
      if (this.#pending.get(key) === read) this.#pending.delete(key)
    }
    read.page.then(forget, forget)
    return await read.page
  }
}
