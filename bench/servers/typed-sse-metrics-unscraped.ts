/**
 * Contender `typed-sse-metrics-unscraped`: `typed-sse-channel` with Prometheus metrics
 * on and nobody scraping. Compared with `typed-sse-channel`, it shows what metrics cost
 * on the event path alone (figures are read only when scraped).
 */
import { Registry } from 'prom-client'
import { runChannelContender } from './channel-app.js'

runChannelContender({ metrics: { registry: new Registry() } })
