/**
 * Redis stream ids (`<ms>-<seq>`) as the engine's positions: checked when they come
 * from a client or from Redis, and ordered for lib/merge.ts.
 */

/** A Redis stream id: `<ms>-<seq>`, two unsigned 64-bit decimals without leading zeros. */
export const ID_PATTERN = /^(?:0|[1-9][0-9]{0,19})-(?:0|[1-9][0-9]{0,19})$/

/**
 * Orders two stream ids (ms, then seq) as decimals of any length: ids may pass 2^53,
 * so neither part is read as a Number. Compared in place, character by character:
 * this runs for every message delivered, and a split would allocate four strings.
 *
 * @example
 * compareIds('9-0', '10-0') // negative
 */
export function compareIds (a: string, b: string): number {
  const aDash = a.indexOf('-')
  const bDash = b.indexOf('-')
  const aMsEnd = aDash === -1 ? a.length : aDash
  const bMsEnd = bDash === -1 ? b.length : bDash
  return compareDecimals(a, 0, aMsEnd, b, 0, bMsEnd) ||
    compareDecimals(a, Math.min(aMsEnd + 1, a.length), a.length, b, Math.min(bMsEnd + 1, b.length), b.length)
}

/** Orders `a[aStart, aEnd)` and `b[bStart, bEnd)` as decimals without leading zeros. */
function compareDecimals (a: string, aStart: number, aEnd: number, b: string, bStart: number, bEnd: number): number {
  const length = aEnd - aStart
  if (length !== bEnd - bStart) return length - (bEnd - bStart)
  for (let i = 0; i < length; i++) {
    const difference = a.charCodeAt(aStart + i) - b.charCodeAt(bStart + i)
    if (difference !== 0) return difference
  }
  return 0
}
