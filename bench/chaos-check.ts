/**
 * The delivery invariant, checked on a recording: what each subscriber (an engine
 * channel, or an SSE client across its reconnects) got, in the order it got it, against
 * what was published and what Redis kept. Used by the chaos run (bench/chaos.ts), the
 * partition and chaos tests, and a test that plants each fault to show it is caught.
 *
 * The invariant, per subscriber and channel:
 * - every message Redis kept that the subscriber was owed arrives once, in stream
 *   order, or a resync (gap) is reported where it would have been;
 * - nothing arrives twice (by id, or by content: one publish appended twice);
 * - ids only grow;
 * - nothing arrives that nobody published;
 * - a message Redis did not keep (a woken master's, one lost by replication or by a
 *   restart without persistence) is followed by a resync before the next kept one.
 * Redis's own losses (acknowledged, then in no stream) are counted apart: nobody can
 * replay them, and they are Redis's, not the engine's.
 */

/** One thing a subscriber got: a message, or a resync (a gap the engine reported). */
export type Seen = { readonly kind: 'message', readonly id: string, readonly data: string } | { readonly kind: 'gap' }

/** What one subscriber got on one channel. */
export interface Recording {
  /** Names the subscriber in reports ("B/room3"). */
  readonly label: string
  readonly channel: string
  /** Owed only messages after this id (where the subscriber started); undefined: all. */
  readonly from?: string | undefined
  /** The subscriber died (instance or client killed): owed only up to its last message. */
  readonly isCut?: boolean
  readonly seen: readonly Seen[]
}

/** What happened to one channel, as the publishers and Redis saw it. */
export interface ChannelTruth {
  /** The data of every publish attempted (acknowledged, rejected or in doubt). */
  readonly attempted: ReadonlySet<string>
  /** Acknowledged publishes: id to data. */
  readonly acked: ReadonlyMap<string, string>
  /** The channel's stream in Redis at the end: id to data. */
  readonly kept: ReadonlyMap<string, string>
}

/** One broken promise, with where it was seen. */
export interface Violation {
  readonly kind: 'missing' | 'duplicated' | 'reordered' | 'invented' | 'stale'
  readonly label: string
  readonly id: string
}

export interface CheckReport {
  readonly violations: Violation[]
  /** Messages delivered, over all recordings. */
  readonly delivered: number
  /** Owed messages not delivered but covered by a resync. */
  readonly covered: number
  /** Resyncs reported. */
  readonly gaps: number
  /** Acknowledged publishes that are in no stream at the end (lost by Redis). */
  readonly lostByRedis: number
}

/** Orders stream ids (`ms-seq`) as decimals. */
export function compareStreamIds (a: string, b: string): number {
  const [ams, aseq] = a.split('-').map(BigInt)
  const [bms, bseq] = b.split('-').map(BigInt)
  if (ams !== bms) return ams < bms ? -1 : 1
  return aseq === bseq ? 0 : aseq < bseq ? -1 : 1
}

/**
 * Checks every recording against its channel's truth.
 *
 * @example
 * const report = checkDeliveries(recordings, truths)
 * if (report.violations.length > 0) console.error(report.violations)
 */
export function checkDeliveries (recordings: readonly Recording[], truths: ReadonlyMap<string, ChannelTruth>): CheckReport {
  const violations: Violation[] = []
  let delivered = 0
  let covered = 0
  let gaps = 0
  let lostByRedis = 0
  for (const [channel, truth] of truths) {
    for (const id of truth.acked.keys()) if (!truth.kept.has(id)) lostByRedis++
    // One publish appended twice: every subscriber would get it twice.
    const kept = new Set<string>()
    for (const [id, data] of truth.kept) {
      if (kept.has(data)) violations.push({ kind: 'duplicated', label: `redis/${channel}`, id })
      kept.add(data)
    }
  }
  for (const recording of recordings) {
    const truth = truths.get(recording.channel)
    if (truth === undefined) throw new Error(`no truth for channel ${recording.channel}`)
    const { label } = recording
    const report = (kind: Violation['kind'], id: string): void => { violations.push({ kind, label, id }) }
    const ids = new Set<string>()
    const datas = new Set<string>()
    let last: string | undefined
    // Kept messages delivered (id and data as Redis kept them), and the greatest of them.
    const keptIds = new Set<string>()
    let lastKept: string | undefined
    // A message Redis did not keep waits for a resync before the next kept message.
    let staleWaiting: string | undefined
    for (const seen of recording.seen) {
      if (seen.kind === 'gap') {
        gaps++
        staleWaiting = undefined
        // After a resync the subscriber starts over from a snapshot: a message it got
        // before, from a node that lost it, may come again as the kept copy, even with
        // the same id (a woken master and its successor give out ids from one clock).
        // Only kept messages still count as delivered, and order goes on from them.
        datas.clear()
        ids.clear()
        for (const id of keptIds) ids.add(id)
        last = lastKept
        continue
      }
      delivered++
      if (!truth.attempted.has(seen.data)) report('invented', seen.id)
      if (ids.has(seen.id) || datas.has(seen.data)) report('duplicated', seen.id)
      else if (last !== undefined && compareStreamIds(seen.id, last) < 0) report('reordered', seen.id)
      ids.add(seen.id)
      datas.add(seen.data)
      if (last === undefined || compareStreamIds(seen.id, last) > 0) last = seen.id
      const isKept = truth.kept.get(seen.id) === seen.data
      if (isKept) {
        keptIds.add(seen.id)
        if (lastKept === undefined || compareStreamIds(seen.id, lastKept) > 0) lastKept = seen.id
      }
      if (isKept && staleWaiting !== undefined) {
        report('stale', staleWaiting)
        staleWaiting = undefined
      }
      if (!isKept && truth.attempted.has(seen.data)) staleWaiting ??= seen.id
    }
    // A stale message at the very end is owed its resync too, unless the subscriber died.
    if (staleWaiting !== undefined && recording.isCut !== true) report('stale', staleWaiting)
    const end = recording.isCut === true ? last : undefined
    for (const id of [...truth.kept.keys()].sort(compareStreamIds)) {
      if (recording.from !== undefined && compareStreamIds(id, recording.from) <= 0) continue
      if (recording.isCut === true && (end === undefined || compareStreamIds(id, end) > 0)) continue
      // Delivered means this very entry: a stale message with its id is not it.
      if (keptIds.has(id)) continue
      if (isCoveredByGap(recording.seen, id, truth.kept)) covered++
      else report('missing', id)
    }
  }
  return { violations, delivered, covered, gaps, lostByRedis }
}

/**
 * True when a resync was reported where `id` would have been: after every kept message
 * delivered before it with a smaller id, and before the next one with a greater id.
 * A resync elsewhere (before the hole, or after a message past it) covers nothing.
 */
function isCoveredByGap (seen: readonly Seen[], id: string, kept: ReadonlyMap<string, string>): boolean {
  let isGapSinceSmaller = false
  for (const each of seen) {
    if (each.kind === 'gap') {
      isGapSinceSmaller = true
    } else if (kept.get(each.id) !== each.data) {
      // A message Redis did not keep marks no place in the stream.
      continue
    } else if (compareStreamIds(each.id, id) < 0) {
      isGapSinceSmaller = false
    } else {
      return isGapSinceSmaller
    }
  }
  return isGapSinceSmaller
}

/**
 * A channel listener (what a channel gives its engine) that records what it gets, gaps
 * in place.
 *
 * @example
 * const recorder = new SequenceRecorder()
 * engine.channel('room', history, recorder)
 */
export class SequenceRecorder {
  readonly seen: Seen[] = []

  readonly deliver = (message: { id?: string | undefined, data: string }): void => {
    this.seen.push({ kind: 'message', id: message.id ?? '', data: message.data })
  }

  readonly gap = (): void => { this.seen.push({ kind: 'gap' }) }

  /** The ids delivered so far. */
  get ids (): string[] {
    return this.seen.flatMap((seen) => seen.kind === 'message' ? [seen.id] : [])
  }
}

/**
 * One line per kind of violation, with counts and the first few ids.
 *
 * @example
 * console.log(describeViolations(report.violations))
 */
export function describeViolations (violations: readonly Violation[]): string {
  const byKind = new Map<string, Violation[]>()
  for (const violation of violations) byKind.set(violation.kind, [...byKind.get(violation.kind) ?? [], violation])
  return [...byKind].map(([kind, list]) => `${kind}: ${list.length} (${list.slice(0, 5).map((v) => `${v.label} ${v.id}`).join(', ')})`).join('; ')
}
