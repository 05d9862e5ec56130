/**
 * Internal keys. Methods and fields the parts of the library call on each other's
 * objects live under these symbols, so they are neither in the public types nor
 * callable by users: the public surface is what the README shows.
 */

/** `stream[kWrite](frame, events)`: writes an already built frame (channels build one event frame for all subscribers). */
export const kWrite = Symbol('fastify-typed-sse.write')
/** `stream[kCork]()`: corks the connection for a batch of writes; returns what to uncork. */
export const kCork = Symbol('fastify-typed-sse.cork')
/** `stream[kFail](err)`: ends the stream after a producer error, logged with a code. */
export const kFail = Symbol('fastify-typed-sse.fail')
/** `stream[kEnd](reason)`: ends the stream for a reason of the library's (policy, error). */
export const kEnd = Symbol('fastify-typed-sse.end')
/** `stream[kMissed](count, flush)`: counts events a subscriber lost, reported by `sse:missed`. */
export const kMissed = Symbol('fastify-typed-sse.missed')
/** `stream[kContext]`: what every stream of the plugin instance shares (limits, hub). */
export const kContext = Symbol('fastify-typed-sse.context')
/** `stream[kOptions]`: the stream's resolved options (queue limit and policy). */
export const kOptions = Symbol('fastify-typed-sse.options')
/** `stream[kHeartbeat]()`: called by the hub's ticker. */
export const kHeartbeat = Symbol('fastify-typed-sse.heartbeat')
/** `stream[kShutdown](graceMs)`: ends the stream for `fastify.close()`. */
export const kShutdown = Symbol('fastify-typed-sse.shutdown')
/** `stream[kOnClose](handler)`: tells `handler[kClosed](stream, reason)` when the stream closes (no closure per listener). */
export const kOnClose = Symbol('fastify-typed-sse.onClose')
/** `stream[kOffClose](handler)`: removes a handler added with `kOnClose`. */
export const kOffClose = Symbol('fastify-typed-sse.offClose')
/** `handler[kClosed](stream, reason)`: what a closing stream calls on its internal close handlers. */
export const kClosed = Symbol('fastify-typed-sse.closed')
/** `channel[kClose]()`: stops the channel's delivery on this instance (the plugin's close). */
export const kClose = Symbol('fastify-typed-sse.close')
/** `stream[kHubIndex]`: where the hub keeps the stream among its members. */
export const kHubIndex = Symbol('fastify-typed-sse.hubIndex')
/** `stream[kLastWriteTick]`: the hub's tick at the stream's last socket write. */
export const kLastWriteTick = Symbol('fastify-typed-sse.lastWriteTick')
