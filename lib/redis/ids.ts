/**
 * Redis stream ids (`<ms>-<seq>`) as the engine's positions: checked when they come
 * from a client or from Redis, and ordered for lib/merge.ts.
 */

/** A Redis stream id: `<ms>-<seq>`, two unsigned 64-bit decimals without leading zeros. */
export const ID_PATTERN = /^(?:0|[1-9][0-9]{0,19})-(?:0|[1-9][0-9]{0,19})$/

/**
 * Orders two stream ids (ms, then seq) as decimals of any length: ids may pass 2^53,
 * so neither part is read as a Number.
 *
 * @example
 * compareIds('9-0', '10-0') // negative
 */
export function compareIds (a: string, b: string): number {
  const [aMs, aSeq] = a.split('-')
  const [bMs, bSeq] = b.split('-')
  return compareDecimals(aMs, bMs) || compareDecimals(aSeq, bSeq)
}

function compareDecimals (a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length
  return a < b ? -1 : a > b ? 1 : 0
}
