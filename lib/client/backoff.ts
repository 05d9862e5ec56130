/**
 * Reconnection delays. The server's `retry:` is honoured as the first wait (WHATWG HTML
 * §9.2.3), never shortened; repeated failures double it from a floor, so a `retry: 0`
 * or a `Retry-After: 0` cannot make a client storm; jitter is added on top, at most a
 * quarter of the wait, so clients dropped together by a restart do not all come back
 * in the same millisecond:
 *
 *   wait(n)  = max(base, min(max, base × 2ⁿ)),  base = max(retry, min)
 *   delay(n) = wait(n) + random × wait(n) / 4
 *
 * n is the number of reconnects since an event last arrived. `retry` starts as the
 * `reconnectDelayMs` option and becomes the server's `retry:`. No delay is longer than
 * MAX_RECONNECT_DELAY_MS (about 24.8 days), however large the server's ask.
 */

/**
 * The default first reconnection delay, until the server sends `retry:`.
 * @default 1000
 * @example
 * createClient(url, { reconnectDelayMs: DEFAULT_RECONNECT_DELAY_MS * 2 })
 */
export const DEFAULT_RECONNECT_DELAY_MS = 1000

/**
 * The default floor of every reconnection delay, whatever `retry:` or `Retry-After` say.
 * @default 250
 * @example
 * createClient(url, { minReconnectDelayMs: DEFAULT_MIN_RECONNECT_DELAY_MS * 4 })
 */
export const DEFAULT_MIN_RECONNECT_DELAY_MS = 250

/**
 * The default cap on the growth of reconnection delays (a larger `retry:` or
 * `Retry-After` from the server is still honoured).
 * @default 30000
 * @example
 * createClient(url, { maxReconnectDelayMs: DEFAULT_MAX_RECONNECT_DELAY_MS / 3 })
 */
export const DEFAULT_MAX_RECONNECT_DELAY_MS = 30_000

/**
 * The longest wait the client honours, whatever `retry:` or `Retry-After` ask for:
 * what one `setTimeout` can wait (about 24.8 days). A longer (or infinite) ask waits
 * this long, so the client always comes back.
 * @default 2147483647
 * @example
 * backoffDelayMs(0, Infinity, { minMs: 250, maxMs: 30_000 }) // MAX_RECONNECT_DELAY_MS
 */
export const MAX_RECONNECT_DELAY_MS = 2 ** 31 - 1

/** The bounds of the formula above. */
export interface BackoffBounds {
  readonly minMs: number
  readonly maxMs: number
}

/**
 * The delay before reconnect `streak` (0 for the first since an event arrived).
 *
 * @example
 * backoffDelayMs(0, 3000, { minMs: 250, maxMs: 30_000 }) // in [3000, 3750)
 * backoffDelayMs(2, 0, { minMs: 250, maxMs: 30_000 })    // in [1000, 1250)
 */
export function backoffDelayMs (streak: number, retryMs: number, bounds: BackoffBounds, random: () => number = Math.random): number {
  // A retry: too large for a double is Infinity: the cap keeps every wait one that ends.
  const base = Math.min(Math.max(retryMs, bounds.minMs), MAX_RECONNECT_DELAY_MS)
  // 2 ** 31 is already past any cap: keeps the product finite for endless retries.
  const wait = Math.max(base, Math.min(bounds.maxMs, base * 2 ** Math.min(streak, 31)))
  return Math.min(wait + Math.floor(random() * wait / 4), MAX_RECONNECT_DELAY_MS)
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
  if (/^[0-9]+$/.test(value)) return Math.min(Number.parseInt(value, 10) * 1000, MAX_RECONNECT_DELAY_MS)
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.min(Math.max(0, date - now), MAX_RECONNECT_DELAY_MS)
}
