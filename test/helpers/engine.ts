/**
 * Reading an engine channel's history whole, for tests of an engine (replays read it a
 * page at a time: lib/replay-reads.ts).
 */
import type { EngineChannel, ReplayResult } from '../../lib/engine/engine.js'

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
