/**
 * The package entry `fastify-typed-sse/redis`: the Redis engine, whose parts live in
 * lib/redis/ (see lib/redis/index.ts).
 *
 * @example
 * import { redisEngine } from 'fastify-typed-sse/redis'
 */
export * from './engine/redis/index.js'
