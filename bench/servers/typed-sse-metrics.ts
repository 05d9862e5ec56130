/**
 * Contender `typed-sse-metrics`: `typed-sse-channel` with Prometheus metrics on, in a
 * registry of its own scraped every second (Prometheus scrapes every 15 s or so: this
 * is the pessimistic case). Compared with `typed-sse-channel`, it shows what metrics cost.
 */
import { Registry } from 'prom-client'
import { runChannelContender } from './channel-app.js'

/** How often the registry is scraped while the benchmark runs. */
const SCRAPE_MS = 1000

const registry = new Registry()
// unref(): the scrape never keeps the server process alive.
setInterval(() => { void registry.metrics() }, SCRAPE_MS).unref()
runChannelContender({ metrics: { registry } })
