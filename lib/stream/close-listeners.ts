/**
 * Who a stream tells when it closes. Most streams have one listener (a channel's
 * subscription, the application's `onClose`), so one is kept as is and an array only
 * made for a second: an idle stream holds no array. Channels register an object (its
 * subscription) rather than a function, so subscribing makes no closure.
 */
import type { CloseReason } from './hub.js'
import { kClosed } from '../core/symbols.js'

/** An internal listener: told by a method, so its owner needs no closure per stream. */
export interface CloseHandler<S = unknown> {
  [kClosed] (stream: S, reason: CloseReason): void
}

/** A function given to `onClose()`, or an internal listener. */
export type CloseListener<S = unknown> = ((reason: CloseReason) => void) | CloseHandler<S>

/** None, one, or several listeners. */
export type CloseListeners<S = unknown> = CloseListener<S> | Array<CloseListener<S>> | undefined

/**
 * The listeners with `listener` added.
 *
 * @example
 * listeners = withListener(listeners, fn)
 */
export function withListener<S> (listeners: CloseListeners<S>, listener: CloseListener<S>): CloseListeners<S> {
  if (listeners === undefined) return listener
  if (!Array.isArray(listeners)) return [listeners, listener]
  listeners.push(listener)
  return listeners
}

/**
 * The listeners without (the first registration of) `listener`.
 *
 * @example
 * listeners = withoutListener(listeners, fn)
 */
export function withoutListener<S> (listeners: CloseListeners<S>, listener: CloseListener<S>): CloseListeners<S> {
  if (listeners === listener) return undefined
  if (!Array.isArray(listeners)) return listeners
  const index = listeners.indexOf(listener)
  if (index !== -1) listeners.splice(index, 1)
  return listeners
}

/**
 * Calls one listener.
 *
 * @example
 * tell(listener, stream, 'client')
 */
export function tell<S> (listener: CloseListener<S>, stream: S, reason: CloseReason): void {
  if (typeof listener === 'function') listener(reason)
  else listener[kClosed](stream, reason)
}
