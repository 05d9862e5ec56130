/**
 * The Prometheus text exposition format (0.0.4), parsed from its description
 * (https://prometheus.io/docs/instrumenting/exposition_formats/), and `GET /metrics`
 * scraped over HTTP, so tests assert what a Prometheus server would read.
 */

/** One sample line: `name{labels} value`. */
export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/** A parsed scrape. */
export interface Exposition {
  /** `# TYPE` of every metric family. */
  types: Map<string, string>
  samples: Sample[]
}

const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y
const TYPE_LINE = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/

function parseValue (text: string): number {
  if (text === '+Inf') return Infinity
  if (text === '-Inf') return -Infinity
  const value = Number(text)
  if (text === '' || (Number.isNaN(value) && text !== 'NaN')) throw new Error(`bad sample value ${JSON.stringify(text)}`)
  return value
}

function parseLabels (text: string): Record<string, string> {
  const labels: Record<string, string> = {}
  LABEL.lastIndex = 0
  while (LABEL.lastIndex < text.length) {
    const match = LABEL.exec(text)
    if (match === null) throw new Error(`bad labels {${text}}`)
    labels[match[1]] = match[2].replace(/\\(.)/g, (_all, c: string) => c === 'n' ? '\n' : c)
  }
  return labels
}

/** The family a sample belongs to: a histogram's samples carry a suffix. */
function familyOf (name: string, types: Map<string, string>): string | undefined {
  if (types.has(name)) return name
  const base = name.replace(/_(bucket|sum|count)$/, '')
  return types.get(base) === 'histogram' ? base : undefined
}

/**
 * Parses the text format; throws on a line it does not allow.
 *
 * @example
 * parseExposition('# TYPE up gauge\nup 1\n').samples // [{ name: 'up', labels: {}, value: 1 }]
 */
export function parseExposition (text: string): Exposition {
  const types = new Map<string, string>()
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ')) continue
    const type = TYPE_LINE.exec(line)
    if (type !== null) {
      if (types.has(type[1])) throw new Error(`second TYPE line for ${type[1]}`)
      types.set(type[1], type[2])
      continue
    }
    const sample = SAMPLE_LINE.exec(line)
    if (sample === null) throw new Error(`bad line ${JSON.stringify(line)}`)
    if (familyOf(sample[1], types) === undefined) throw new Error(`sample ${sample[1]} before (or without) its TYPE line`)
    samples.push({ name: sample[1], labels: parseLabels(sample[2] ?? ''), value: parseValue(sample[3]) })
  }
  return { types, samples }
}

/**
 * The value of the one sample `name{labels}` (exactly those labels); throws if there is none.
 *
 * @example
 * valueOf(scraped, 'sse_publish_delivery_seconds_bucket', { le: '+Inf' })
 */
export function valueOf (exposition: Exposition, name: string, labels: Record<string, string> = {}): number {
  const matches = exposition.samples.filter((sample) => sample.name === name &&
    Object.keys(sample.labels).length === Object.keys(labels).length &&
    Object.entries(labels).every(([key, value]) => sample.labels[key] === value))
  if (matches.length !== 1) throw new Error(`${matches.length} samples ${name}${JSON.stringify(labels)}`)
  return matches[0].value
}

/**
 * Label values of `name`'s samples for `label`, sorted.
 *
 * @example
 * labelValues(scraped, 'sse_streams_closed_total', 'reason') // ['client', 'error', ...]
 */
export function labelValues (exposition: Exposition, name: string, label: string): string[] {
  return exposition.samples.filter((sample) => sample.name === name).map((sample) => sample.labels[label]).sort()
}

/**
 * GETs `${origin}/metrics` over HTTP (5 s deadline), checks the status and content
 * type, and parses the body.
 *
 * @example
 * const scraped = await scrape(origin, registry.contentType)
 */
export async function scrape (origin: string, contentType: string): Promise<Exposition> {
  const response = await fetch(`${origin}/metrics`, { signal: AbortSignal.timeout(5000) })
  if (response.status !== 200) throw new Error(`/metrics answered ${response.status}`)
  if (response.headers.get('content-type') !== contentType) throw new Error(`content type ${response.headers.get('content-type')}`)
  return parseExposition(await response.text())
}
