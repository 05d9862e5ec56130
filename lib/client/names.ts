/**
 * The names the client needs at run time from the rest of the package, repeated here
 * (the browser loads no server code) and typed by the originals so they cannot drift.
 */
import type { TEXT_KEYWORD } from '../core/catalog.js'
import type { END_EVENT as SERVER_END_EVENT, JOIN_EVENT, LEAVE_EVENT, MISSED_EVENT, REMOVE_EVENT, RESYNC_EVENT } from '../core/control.js'

/**
 * The schema keyword that marks raw text events (`Text()`).
 *
 * @example
 * schema[TEXT_MARK] === 'text'
 */
export const TEXT_MARK: typeof TEXT_KEYWORD = 'x-sse-data'

/**
 * The control event `onResync` listens to (lib/control.ts).
 *
 * @example
 * event === RESYNC_EVENT_NAME
 */
export const RESYNC_EVENT_NAME: typeof RESYNC_EVENT = 'sse:resync'

/**
 * The control event `onMissed` listens to (lib/control.ts).
 *
 * @example
 * event === MISSED_EVENT_NAME
 */
export const MISSED_EVENT_NAME: typeof MISSED_EVENT = 'sse:missed'

/**
 * The control event a server sends when it finishes a stream for good (lib/control.ts);
 * its id is the same string, so a reconnect sends it as `Last-Event-ID` and gets 204.
 *
 * @example
 * if (event === END_EVENT) client.close()
 */
export const END_EVENT: typeof SERVER_END_EVENT = 'sse:end'

/** The control events of keyed state and presence (lib/control.ts), read by `state()` and `presence()`. */
export const REMOVE_EVENT_NAME: typeof REMOVE_EVENT = 'sse:remove'
/** See {@link REMOVE_EVENT_NAME}. */
export const JOIN_EVENT_NAME: typeof JOIN_EVENT = 'sse:join'
/** See {@link REMOVE_EVENT_NAME}. */
export const LEAVE_EVENT_NAME: typeof LEAVE_EVENT = 'sse:leave'
