/**
 * Stream deadlines: when a stream must close (`closingTime`), and a timer that reaches
 * it however far away (`runAt`). Node fires a timer set past 2^31-1 ms after 1 ms (with
 * a TimeoutOverflowWarning), so a 30-day `endsAt` would close the stream at once; a far
 * deadline is reached by a chain of shorter timers instead. Every timer is unref'd: a
 * deadline never keeps the process alive on its own.
 */

/** The longest delay Node's timers hold (2^31-1 ms, about 24.8 days). */
export const MAX_TIMER_MS = 2 ** 31 - 1

/** A cancellable deadline; `cancel()` is idempotent. */
export interface Deadline {
  cancel (): void
}

/**
 * Runs `fn` at the epoch time `at` (at once when it is past), however far away.
 *
 * @example
 * const deadline = runAt(Date.now() + 30 * 24 * 3600 * 1000, () => stream.close())
 * stream.onClose(() => deadline.cancel())
 */
export function runAt (at: number, fn: () => void): Deadline {
  let timer: NodeJS.Timeout | undefined
  const arm = (): void => {
    const left = at - Date.now()
    if (left > MAX_TIMER_MS) {
      timer = setTimeout(arm, MAX_TIMER_MS)
    } else {
      timer = setTimeout(fn, Math.max(0, left))
    }
    timer.unref()
  }
  arm()
  return { cancel: () => clearTimeout(timer) }
}

/**
 * When a stream opened now must close: after `maxDurationMs`, or at `endsAt` (epoch ms,
 * e.g. a token's expiry), whichever comes first; `undefined` when neither is set.
 *
 * @example
 * closingTime(60_000, undefined) // Date.now() + 60_000
 */
export function closingTime (maxDurationMs: number | false, endsAt: number | undefined): number | undefined {
  const end = Math.min(maxDurationMs === false ? Infinity : Date.now() + maxDurationMs, endsAt ?? Infinity)
  return end === Infinity ? undefined : end
}
