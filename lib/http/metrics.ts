/**
 * Prometheus metrics through prom-client, an optional peer dependency: imported only
 * when the `metrics` option is given, so applications without it never load it.
 * Every value is read, when the registry is scraped, from the counters the library
 * keeps anyway (`app.sse.stats()`), in prom-client `collect()` callbacks: nothing is
 * done per event for metrics, except one bucket increment per channel message
 * delivered here (the delivery latency histogram).
 */
import type { FastifyInstance } from 'fastify'
import type { ChannelStats } from '../core/stats.js'
import type { EngineHealth } from '../engine/engine.js'
import { describe } from '../core/frame.js'
import { InvalidOptionError, MetricsConflictError, MetricsUnavailableError } from '../core/errors.js'
import type { StreamCounters } from '../stream/hub.js'

/** The prefix of every metric name. */
export const DEFAULT_METRICS_PREFIX = 'sse_'

/**
 * Upper bounds (seconds) of the `publish_delivery_seconds` buckets. Timestamps are
 * epoch ms (comparable across hosts with synchronised clocks), so 1 ms is the finest.
 */
export const DELIVERY_BUCKETS_SECONDS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/**
 * What the plugin needs of a prom-client `Registry` (any prom-client 15 registry has it).
 * Declared here so that the types of this package do not require prom-client.
 */
export interface MetricsRegistry {
  registerMetric (metric: object): void
  getSingleMetric (name: string): unknown
  removeSingleMetric (name: string): void
}

/** The `metrics` plugin option in its object form. */
export interface MetricsOptions {
  /**
   * The prom-client registry to register into; serve it with `registry.metrics()`.
   * @default prom-client's default registry (`register`)
   */
  registry?: MetricsRegistry
  /**
   * Prefix of every metric name (letters, digits, `_` and `:`).
   * @default 'sse_'
   */
  prefix?: string
  /**
   * The `channel` label value of a channel name. Channels named from request input
   * (`room:${id}` with `idleMs`) would make one time series each, without bound: map
   * them to a few values here (figures of channels with one label are added up).
   * @default (name) => name
   */
  channelLabel?: (name: string) => string
}

/** {@link MetricsOptions} with defaults applied; `registry` undefined means prom-client's default. */
export interface ResolvedMetricsOptions {
  readonly registry: MetricsRegistry | undefined
  readonly prefix: string
  readonly channelLabel: (name: string) => string
}

/** What the metrics read: `app.sse`. */
export interface MetricsSource {
  stats (): StreamCounters & {
    openStreams: number
    replaysServed: number
    replayMisses: number
    channels: Record<string, ChannelStats>
  }
  health (): EngineHealth
}

/** Metrics loaded for one Fastify instance. */
export interface SseMetrics {
  /** For the channel registry: a live message was written here; `publishedAt` in epoch ms. */
  readonly delivered: (publishedAt: number) => void
  /** For the channel registry: a channel was forgotten; its counts stay in the totals. */
  readonly forgotten: (name: string, stats: ChannelStats) => void
  /**
   * Registers every metric, read from `source` at scrape time, and removes them when
   * the instance closes (so a new instance can register in the same registry).
   *
   * @throws TYPED_SSE_METRICS_CONFLICT when a metric of that name is registered already (nothing is registered then)
   */
  register (fastify: FastifyInstance, source: MetricsSource): void
}

const PREFIX_PATTERN = /^(?:[a-zA-Z_:][a-zA-Z0-9_:]*)?$/

function sameName (name: string): string {
  return name
}

/**
 * Checks the `metrics` plugin option (called by `resolvePluginOptions`).
 *
 * @throws TYPED_SSE_INVALID_OPTION
 * @example
 * resolveMetricsOptions(true) // { registry: undefined, prefix: 'sse_', channelLabel: (name) => name }
 */
export function resolveMetricsOptions (given: unknown): ResolvedMetricsOptions | false {
  if (given === undefined || given === false) return false
  if (given === true) return Object.freeze({ registry: undefined, prefix: DEFAULT_METRICS_PREFIX, channelLabel: sameName })
  if (given === null || typeof given !== 'object') throw new InvalidOptionError('metrics', `expected true or { registry, prefix }, got ${describe(given)}`)
  const { registry, prefix = DEFAULT_METRICS_PREFIX, channelLabel = sameName } = given as MetricsOptions
  if (registry !== undefined) {
    const candidate = registry as Partial<MetricsRegistry> | null
    if (typeof candidate?.registerMetric !== 'function' || typeof candidate.getSingleMetric !== 'function' || typeof candidate.removeSingleMetric !== 'function') {
      throw new InvalidOptionError('metrics.registry', `expected a prom-client Registry, got ${describe(registry)}`)
    }
  }
  if (typeof prefix !== 'string' || !PREFIX_PATTERN.test(prefix)) {
    throw new InvalidOptionError('metrics.prefix', `expected letters, digits, '_' or ':' (not a digit first), got ${describe(prefix)}`)
  }
  if (typeof channelLabel !== 'function') throw new InvalidOptionError('metrics.channelLabel', `expected a function, got ${describe(channelLabel)}`)
  return Object.freeze({ registry, prefix, channelLabel })
}

/** Delivery latency in fixed buckets: what one observation costs is a short loop and three additions. */
class DeliveryLatency {
  /** Per bucket (not cumulative); the last is above every bound. */
  readonly #counts = new Array<number>(DELIVERY_BUCKETS_SECONDS.length + 1).fill(0)
  #sum = 0
  #count = 0

  observe (publishedAt: number): void {
    // Clocks of two hosts may disagree a little: a negative lag is counted as none.
    const seconds = Math.max(0, Date.now() - publishedAt) / 1000
    let bucket = 0
    while (bucket < DELIVERY_BUCKETS_SECONDS.length && seconds > DELIVERY_BUCKETS_SECONDS[bucket]) bucket++
    this.#counts[bucket]++
    this.#sum += seconds
    this.#count++
  }

  /** The samples of a histogram named `name`, as prom-client's own histograms give them. */
  values (name: string): Array<{ metricName: string, labels: Record<string, string | number>, value: number }> {
    const values = []
    let cumulative = 0
    for (let bucket = 0; bucket <= DELIVERY_BUCKETS_SECONDS.length; bucket++) {
      cumulative += this.#counts[bucket]
      values.push({ metricName: `${name}_bucket`, labels: { le: DELIVERY_BUCKETS_SECONDS[bucket] ?? '+Inf' }, value: cumulative })
    }
    values.push({ metricName: `${name}_sum`, labels: {}, value: this.#sum })
    values.push({ metricName: `${name}_count`, labels: {}, value: this.#count })
    return values
  }
}

type PromClient = typeof import('prom-client')

/** A metric as the registry keys it. */
interface Named {
  readonly name: string
}

async function importPromClient (): Promise<PromClient> {
  try {
    return await import('prom-client')
  } catch (err) {
    throw new MetricsUnavailableError(err instanceof Error ? err.message : describe(err), { cause: err })
  }
}

/** Adds `value` to the total of `label`. */
function addBy (totals: Map<string, number>, label: string, value: number): void {
  totals.set(label, (totals.get(label) ?? 0) + value)
}

/** One sample of `metric` per entry, labelled `label`. */
function incEach (metric: { inc (labels: Record<string, string>, value: number): void }, label: string, entries: Iterable<[string, number]>): void {
  for (const [key, value] of entries) metric.inc({ [label]: key }, value)
}

/**
 * Imports prom-client (at register time, only when metrics are asked for) and
 * prepares the metrics of one Fastify instance.
 *
 * @throws TYPED_SSE_METRICS_UNAVAILABLE when prom-client cannot be imported
 * @example
 * const metrics = await loadMetrics(resolveMetricsOptions({ registry }) as ResolvedMetricsOptions)
 * metrics.register(fastify, fastify.sse)
 */
export async function loadMetrics (options: ResolvedMetricsOptions): Promise<SseMetrics> {
  const client = await importPromClient()
  const registry: MetricsRegistry = options.registry ?? client.register
  const { prefix, channelLabel } = options
  const latency = new DeliveryLatency()
  /** Published counts of forgotten channels, by label, so the counter never goes down. */
  const gonePublished = new Map<string, number>()

  function labelOf (name: string): string {
    const label = channelLabel(name)
    if (typeof label !== 'string') throw new InvalidOptionError('metrics.channelLabel', `expected it to return a string, got ${describe(label)} for "${name}"`)
    return label
  }

  function register (fastify: FastifyInstance, source: MetricsSource): void {
    // prom-client calls every collect() of one scrape in one synchronous pass: read the
    // figures once for all of them.
    let snapshot: ReturnType<MetricsSource['stats']> | undefined
    const figures = (): ReturnType<MetricsSource['stats']> => {
      if (snapshot === undefined) {
        snapshot = source.stats()
        queueMicrotask(() => { snapshot = undefined })
      }
      return snapshot
    }
    const byChannel = (pick: (stats: ChannelStats) => number, base?: Map<string, number>): Map<string, number> => {
      const totals = new Map(base)
      for (const [name, stats] of Object.entries(figures().channels)) addBy(totals, labelOf(name), pick(stats))
      return totals
    }
    // Values are set absolutely from the library's counters at each scrape: reset()
    // first, so labels that are gone (a dropped channel) go too. Typed by what the
    // registry needs of them (their name), so no prom-client type leaks out.
    const gauge = (name: string, help: string, read: (metric: InstanceType<PromClient['Gauge']>) => void, labelNames: string[] = []): Named =>
      new client.Gauge({ name: prefix + name, help, labelNames, registers: [], collect () { this.reset(); read(this) } }) as unknown as Named
    const counter = (name: string, help: string, read: (metric: InstanceType<PromClient['Counter']>) => void, labelNames: string[] = []): Named =>
      new client.Counter({ name: prefix + name, help, labelNames, registers: [], collect () { this.reset(); read(this) } }) as unknown as Named
    const deliveryName = `${prefix}publish_delivery_seconds`
    const deliveryHelp = 'Seconds from a channel publish (on any instance) to its write to the subscribers of this one.'
    // prom-client's Histogram can only be fed one observation at a time; this object
    // gives the registry the same shape from the library's own bucket counters.
    const delivery = {
      name: deliveryName,
      help: deliveryHelp,
      type: 'histogram',
      aggregator: 'sum',
      get: async () => ({ name: deliveryName, help: deliveryHelp, type: 'histogram', aggregator: 'sum', values: latency.values(deliveryName) }),
      // The values are the library's counters: a registry reset does not apply to them.
      reset () {}
    }
    const metrics: Named[] = [
      gauge('streams_open', 'Event streams open now, by declared route.', (metric) => {
        for (const [route, open] of Object.entries(figures().openByRoute)) metric.set({ route }, open)
      }, ['route']),
      counter('streams_opened_total', 'Event streams opened.', (metric) => metric.inc(figures().opened)),
      counter('streams_closed_total', 'Event streams closed, by reason.', (metric) => incEach(metric, 'reason', Object.entries(figures().closed)), ['reason']),
      counter('streams_rejected_total', 'Requests for a stream refused before it opened, by reason.', (metric) => incEach(metric, 'reason', Object.entries(figures().rejected)), ['reason']),
      counter('events_sent_total', 'Events written or queued to clients.', (metric) => metric.inc(figures().eventsSent)),
      counter('bytes_written_total', 'Bytes handed to sockets, heartbeats included.', (metric) => metric.inc(figures().bytesWritten)),
      counter('events_dropped_total', 'Events dropped for slow clients, by reason.', (metric) => {
        metric.inc({ reason: 'drop_oldest' }, figures().droppedEvents)
        metric.inc({ reason: 'coalesced' }, figures().coalescedEvents)
      }, ['reason']),
      gauge('queue_bytes', 'Bytes waiting in stream queues for slow clients.', (metric) => metric.set(figures().queuedBytes)),
      gauge('channel_subscribers', 'Streams subscribed to channels, by channel label.', (metric) => {
        for (const [channel, subscribers] of byChannel((stats) => stats.subscribers)) metric.set({ channel }, subscribers)
      }, ['channel']),
      counter('events_published_total', 'Events published through channels of this instance, by channel label.',
        (metric) => incEach(metric, 'channel', byChannel((stats) => stats.published, gonePublished)), ['channel']),
      counter('replays_total', 'Subscribers with a Last-Event-ID: replayed (served) or told to resync (resync).', (metric) => {
        const { replaysServed, replayMisses } = figures()
        incEach(metric, 'result', [['served', replaysServed], ['resync', replayMisses]])
      }, ['result']),
      gauge('engine_up', '1 when the engine is connected to its backend, else 0.', (metric) => metric.set(source.health() === 'connected' ? 1 : 0)),
      delivery
    ]
    const taken = metrics.find((metric) => registry.getSingleMetric(metric.name) !== undefined)
    if (taken !== undefined) throw new MetricsConflictError(taken.name)
    for (const metric of metrics) registry.registerMetric(metric)
    fastify.addHook('onClose', async () => {
      for (const metric of metrics) if (registry.getSingleMetric(metric.name) === metric) registry.removeSingleMetric(metric.name)
    })
  }

  return {
    delivered: (publishedAt) => latency.observe(publishedAt),
    forgotten: (name, stats) => addBy(gonePublished, labelOf(name), stats.published),
    register
  }
}
