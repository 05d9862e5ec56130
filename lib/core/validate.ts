/**
 * The checks every options object shares: one home for counts, sizes and durations,
 * and for refusing a key that is not an option. Low level on purpose: the stream's,
 * the history's, the channel's, the Redis engine's and the plugin's options all use them.
 */
import { InvalidOptionError, OptionRangeError } from './errors.js'
import { describe } from './frame.js'

/**
 * The one check of every count, size and duration option: a safe integer from `min`
 * (1 unless said) to `max` (a TypeError for another type, a RangeError out of range).
 *
 * @throws TYPED_SSE_INVALID_OPTION
 * @example
 * positiveInteger('heartbeatMs', given.heartbeatMs, 15_000, MAX_TIMER_MS)
 */
export function positiveInteger (name: string, value: unknown, fallback: number, max = Number.MAX_SAFE_INTEGER, min = 1): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number') throw new InvalidOptionError(name, `expected an integer, got ${describe(value)}`)
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new OptionRangeError(name, `expected an integer from ${min} to ${max}, got ${value}`)
  }
  return value
}

/** {@link positiveInteger}, or `false` for "no limit". */
export function positiveIntegerOrFalse (name: string, value: unknown, fallback: number | false, max?: number): number | false {
  return value === false ? false : positiveInteger(name, value, fallback as number, max)
}

/**
 * Refuses a key that is not in `known`: a misspelt option (`{ histroy: true }`) would
 * otherwise be ignored without a word, from untyped code or through a cast. Each options
 * object keeps its list of keys in one place, next to its checks.
 *
 * @throws TYPED_SSE_INVALID_OPTION naming the key, where it was given and the known ones
 * @example
 * refuseUnknownOptions('channel()', { histroy: true }, ['history', 'onResync', 'idleMs'])
 */
export function refuseUnknownOptions (where: string, given: object, known: readonly string[], keyPrefix = ''): void {
  for (const name of Object.keys(given)) {
    if (!known.includes(name)) throw new InvalidOptionError(`${keyPrefix}${name}`, `not an option of ${where} (known: ${known.join(', ')})`)
  }
}

/**
 * The keys of an options type, listed once: the compiler checks that the list names every
 * key and nothing else, so an option added to the type cannot be refused as unknown.
 *
 * @example
 * const HISTORY_OPTION_NAMES = optionNames<HistoryOptions>({ maxEvents: true, maxAgeMs: true })
 */
export function optionNames<T> (names: { readonly [K in keyof Required<T>]: true }): readonly string[] {
  return Object.keys(names)
}
