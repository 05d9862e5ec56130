/**
 * A channel's idle countdown (the option `idleMs`): armed while the channel has no
 * subscriber, re-armed by each publish, it drops the channel when it runs out.
 */

/**
 * One channel's countdown; `false` never counts.
 *
 * @example
 * const idle = new IdleTimer(60_000, () => { void channel.drop() })
 * idle.arm() // nobody subscribed: dropped in a minute unless armed again or cancelled
 */
export class IdleTimer {
  readonly #idleMs: number | false
  readonly #onIdle: () => void
  #timer: NodeJS.Timeout | undefined

  constructor (idleMs: number | false, onIdle: () => void) {
    this.#idleMs = idleMs
    this.#onIdle = onIdle
  }

  /** (Re)starts the countdown. */
  arm (): void {
    if (this.#idleMs === false) return
    clearTimeout(this.#timer)
    this.#timer = setTimeout(this.#onIdle, this.#idleMs)
    this.#timer.unref()
  }

  cancel (): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }
}
