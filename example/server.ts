/**
 * Runs the example: `npm start` (built) or `node --import tsx example/server.ts`.
 * PORT (default 3000, 0 picks a free port) and HOST (default 127.0.0.1) choose the
 * address; LOG_LEVEL (default 'warn') Fastify's log level; REDIS_URL, when set, runs
 * channels on Redis (start two instances on two ports: they share the scoreboard).
 * Prints the URL it listens on and closes gracefully on SIGINT or SIGTERM.
 * Prometheus scrapes `GET /metrics`; a readiness probe polls `GET /healthz`.
 */
import type { SseEngine } from '../lib/index.js'
import { buildExample } from './app.js'

/** Time `app.close()` may take on a signal before the process exits anyway. */
const FORCED_EXIT_MS = 5000

function portFromEnv (value: string | undefined): number {
  if (value === undefined || value === '') return 3000
  const port = Number(value)
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new Error(`PORT must be an integer from 0 to 65535, got ${JSON.stringify(value)}`)
  }
  return port
}

const port = portFromEnv(process.env.PORT)
const host = process.env.HOST || '127.0.0.1'
// Imported only when asked for, so the in-memory default needs no Redis client.
const engine: SseEngine | undefined = process.env.REDIS_URL
  ? (await import('../lib/redis.js')).redisEngine({ url: process.env.REDIS_URL })
  : undefined
const app = await buildExample({ fastify: { logger: { level: process.env.LOG_LEVEL || 'warn' } }, sse: { engine } })

let isClosing = false
async function shutdown (signal: NodeJS.Signals): Promise<void> {
  if (isClosing) {
    // A second Ctrl-C means "now".
    process.exit(1)
  }
  isClosing = true
  console.log(`${signal}: closing`)
  // unref(): this timer must not keep the process alive by itself, but it still
  // fires if something else (a leaked socket or timer) does.
  const forced = setTimeout(() => {
    console.error(`still running ${FORCED_EXIT_MS} ms after ${signal}, exiting`)
    process.exit(1)
  }, FORCED_EXIT_MS)
  forced.unref()
  // No process.exit() here: the process ends when nothing is left open, so a
  // leak shows up as the forced exit above instead of being hidden.
  await app.close()
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    shutdown(signal).catch((err: unknown) => {
      console.error(err)
      process.exit(1)
    })
  })
}

// With PORT=0 the OS picks the port: print the address actually bound.
const url = await app.listen({ port, host })
console.log(`fastify-typed-sse example listening on ${url}/${engine === undefined ? '' : ' (channels on Redis)'}; metrics at ${url}/metrics, health at ${url}/healthz`)
