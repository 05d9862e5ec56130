/**
 * The example application: the static page and the event streams it listens to.
 * One `register*` function per route group, so later features (scoreboard, typed
 * client) add a function and a line in `buildExample` without touching the others.
 */
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { Registry } from 'prom-client'
import sse, { type SsePluginOptions } from '../lib/index.js'
import { registerClientModule } from './client-module.js'
import { Type } from '../lib/index.js'
import { clock, Score, scoreboard, serverFigures, Viewer } from './events.js'

/**
 * The page and its script. Resolved from this module, so it is found both from
 * source (`example/public`) and from the build (`npm run build` copies it to
 * `dist/example/public`, next to `dist/example/app.js`).
 */
export const PUBLIC_DIR = fileURLToPath(new URL('./public', import.meta.url))

/** Interval between two `tick` events of `GET /time`. */
export const DEFAULT_TICK_MS = 1000

/** Options of {@link buildExample}. */
export interface ExampleOptions {
  /**
   * Options of the Fastify instance, over the example's `{ forceCloseConnections: true }`.
   * @default { forceCloseConnections: true } (no logger)
   */
  fastify?: FastifyServerOptions
  /**
   * Options of the fastify-typed-sse plugin.
   * @default {} (the plugin's defaults)
   */
  sse?: SsePluginOptions
  /**
   * Interval between two `tick` events.
   * @default 1000
   */
  tickMs?: number
  /**
   * Interval between two `figures` events of `GET /stats`.
   * @default 1000
   */
  figuresMs?: number
}

/**
 * Streams `clock` events on `GET /time`: a `tick` at once (so the page shows the
 * time without waiting a second), then one every `tickMs` until the client leaves.
 *
 * @example
 * registerClock(app, 1000)
 */
export function registerClock (app: FastifyInstance, tickMs: number = DEFAULT_TICK_MS): void {
  app.get('/time', { sse: clock }, async (_request, reply) => {
    const stream = reply.sse()
    const tick = (): void => {
      stream.send('tick', { now: new Date().toISOString(), epochMs: Date.now() })
    }
    tick()
    // Deliberately not unref()'d: the close callback must clear it, and if it did
    // not, the server would not exit on SIGTERM (test/browser/example.test.ts checks it).
    const timer = setInterval(tick, tickMs)
    stream.onClose(() => clearInterval(timer))
  })
}

/** Scores the `scores` channel keeps for replay. */
export const SCORE_HISTORY = 1000

/** The query of `GET /scores`: a page that says who it is counts as a viewer. */
const ScoresQuery = Type.Object({ viewer: Type.Optional(Type.String({ pattern: '^[0-9a-z]{1,16}$' })) })

/**
 * The live scoreboard: `GET /scores` streams `score` events from the `scores`
 * channel, which keeps the latest score per match as keyed state. A new page (no
 * Last-Event-ID) first gets the board (one event per match), so it shows it at once; a
 * reconnecting one gets exactly what it missed, or, when the history moved on, a
 * resync and the board again. Slow readers keep the latest score per match
 * (`'coalesce'`). With `?viewer=<id>` the page is counted as watching (presence, with
 * `sse:join` and `sse:leave`). `POST /score` publishes one (validated by the catalog,
 * once for all watchers).
 *
 * @example
 * registerScoreboard(app)
 * // curl -X POST localhost:3000/score -H 'content-type: application/json' -d '{"match":"AUS-NZL","home":2,"away":1}'
 */
export function registerScoreboard (app: FastifyInstance): void {
  const scores = app.sse.channel('scores', scoreboard, {
    history: { maxEvents: SCORE_HISTORY },
    state: { score: (d) => d.match },
    presence: { info: Viewer, events: true }
  })
  app.get('/scores', { sse: scoreboard, schema: { querystring: ScoresQuery } }, async (request, reply) => {
    const { viewer } = request.query as typeof ScoresQuery.static
    const stream = reply.sse({ queuePolicy: 'coalesce' })
    await scores.subscribe(stream, { snapshot: true, ...(viewer === undefined ? {} : { presence: { id: viewer, info: { name: `Tab ${viewer.slice(0, 4)}` } } }) })
  })
  app.post('/score', { schema: { body: Score } }, async (request, reply) => {
    const id = await scores.publish('score', request.body as typeof Score.static)
    return reply.code(201).send({ id })
  })
}

/**
 * Operations: `GET /metrics` serves `registry` (the plugin's metrics) in the Prometheus
 * text format; `GET /healthz` answers 200 while the engine is connected, else 503
 * (a readiness probe: a load balancer stops sending clients to an instance whose
 * channels cannot reach the others).
 *
 * @example
 * const registry = new Registry()
 * await app.register(sse, { metrics: { registry } })
 * registerOperations(app, registry)
 */
export function registerOperations (app: FastifyInstance, registry: Registry): void {
  app.get('/metrics', async (_request, reply) => {
    return reply.type(registry.contentType).send(await registry.metrics())
  })
  app.get('/healthz', async (_request, reply) => {
    const engine = app.sse.health()
    return reply.code(engine === 'connected' ? 200 : 503).send({ engine })
  })
}

/** How often `GET /stats` sends the server's figures, unless told otherwise. */
export const DEFAULT_FIGURES_MS = 1000

/**
 * `GET /stats`: the server's own figures (open streams, events/s, bytes/s, replays),
 * read from `app.sse.stats()` every `periodMs` and streamed to the page's third card.
 * Rates are the difference between two readings, so nothing is counted per event.
 *
 * @example
 * registerServerFigures(app, 1000)
 */
export function registerServerFigures (app: FastifyInstance, periodMs: number = DEFAULT_FIGURES_MS): void {
  app.get('/stats', { sse: serverFigures }, async (_request, reply) => {
    const stream = reply.sse()
    let previous = app.sse.stats()
    let previousAt = Date.now()
    const send = (): void => {
      const now = Date.now()
      const stats = app.sse.stats()
      const seconds = Math.max(0.001, (now - previousAt) / 1000)
      stream.send('figures', {
        openStreams: stats.openStreams,
        eventsPerSecond: Math.round((stats.eventsSent - previous.eventsSent) / seconds),
        bytesPerSecond: Math.round((stats.bytesWritten - previous.bytesWritten) / seconds),
        replays: stats.replaysServed,
        atMs: now
      })
      previous = stats
      previousAt = now
    }
    send()
    const timer = setInterval(send, periodMs)
    stream.onClose(() => clearInterval(timer))
  })
}

/**
 * Builds the example server (not listening yet): the plugin, the page at `/`,
 * `GET /time`, the scoreboard (`GET /scores`, `POST /score`), the typed client
 * module the page imports (`GET /client/client.js`), and `GET /metrics` and
 * `GET /healthz` (a registry of its own, so instances in one process do not collide).
 *
 * @example
 * const app = await buildExample({ fastify: { logger: true } })
 * await app.listen({ port: 3000, host: '127.0.0.1' })
 */
export async function buildExample (options: ExampleOptions = {}): Promise<FastifyInstance> {
  // The plugin ends every stream cleanly in preClose; what is left afterwards are
  // sockets Node's default ('idle') misses: browsers open spare connections that
  // never send a request, and server.close() waits on those until the headers
  // timeout (a minute) or the browser uses them. Destroy them instead.
  const app = Fastify({ forceCloseConnections: true, ...options.fastify })
  const registry = new Registry()
  await app.register(sse, { ...options.sse, metrics: { registry } })
  await app.register(fastifyStatic, { root: PUBLIC_DIR })
  registerClock(app, options.tickMs)
  registerScoreboard(app)
  registerClientModule(app)
  registerOperations(app, registry)
  registerServerFigures(app, options.figuresMs)
  return app
}
