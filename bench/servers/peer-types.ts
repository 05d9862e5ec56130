/**
 * The slices of the Fastify peers' APIs the benchmark uses, written out by hand.
 *
 * @fastify/sse and fastify-sse-v2 both declare `FastifyReply.sse` (and @fastify/sse
 * `RouteShorthandOptions.sse`) in `declare module 'fastify'`, with types that clash
 * with this plugin's. Importing them would put those declarations into the same
 * TypeScript program as lib/, so their servers load them with `createRequire`
 * (untyped) and use these interfaces instead.
 */
import type { FastifyPluginAsync } from 'fastify'

/** `reply.sse` of @fastify/sse 0.6 (types/index.d.ts, SSEReplyInterface). */
export interface FastifySseContext {
  send (source: { event?: string, id?: string, data: unknown }): Promise<void>
  keepAlive (): void
  sendHeaders (statusCode?: number): void
  onClose (callback: () => void): void
}

/** The module of @fastify/sse 0.6. */
export type FastifySseModule = FastifyPluginAsync<{ heartbeatInterval?: number }>

/** `reply.sse` of fastify-sse-v2 4.x (lib/index.d.ts): data must be a string. */
export type SseV2Send = (message: { event?: string, id?: string, data?: string, comment?: string }) => void

/** The module of fastify-sse-v2 4.x. */
export interface SseV2Module {
  FastifySSEPlugin: FastifyPluginAsync<{ retryDelay?: number | false }>
}
