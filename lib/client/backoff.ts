/**
 * Reconnection delays: exponential backoff with full jitter ("Exponential Backoff And
 * Jitter", AWS Architecture Blog, 2015): attempt n waits a uniformly random time in
 * [0, min(cap, base * 2^n)], so clients dropped together by a restart do not come
 * back together. `base` starts as the option and becomes the server's `retry:`.
 */

/**
 * The default first reconnection delay, until the server sends `retry:`.
 * @default 1000
 * @example
 * createClient(url, { reconnectDelayMs: DEFAULT_RECONNECT_DELAY_MS * 2 })
 */
export const DEFAULT_RECONNECT_DELAY_MS = 1000

/**
 * The default cap on any reconnection delay (not on `Retry-After`, which the server sets).
 * @default 30000
 * @example
 * createClient(url, { maxReconnectDelayMs: DEFAULT_MAX_RECONNECT_DELAY_MS / 3 })
 */
export const DEFAULT_MAX_RECONNECT_DELAY_MS = 30_000

/**
 * The delay before reconnection attempt `attempt` (0 for the first).
 *
 * @example
 * backoffDelayMs(3, 1000, 30_000) // somewhere in [0, 8000]
 */
export function backoffDelayMs (attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  // 2 ** 31 is already past any cap: keeps the product finite for endless retries.
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 31))
  return Math.floor(random() * ceiling)
}

/**
 * The wait a `Retry-After` header asks for (RFC 9110 §10.2.3: seconds, or an HTTP
 * date), in ms; `undefined` when absent or unreadable.
 *
 * @example
 * retryAfterMs('5') // 5000
 */
export function retryAfterMs (header: string | null, now: number = Date.now()): number | undefined {
  if (header === null) return undefined
  const value = header.trim()
  if (/^[0-9]+$/.test(value)) return Number.parseInt(value, 10) * 1000
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}
