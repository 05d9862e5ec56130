/**
 * The runnable example: its HTTP routes on a real socket, its page in real Chromium,
 * and its entry point as a separate process (prints its URL, exits on SIGTERM).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { get, type IncomingHttpHeaders, type IncomingMessage } from 'node:http'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { EventSource } from 'eventsource'
import { clock, scoreboard } from '../../example/events.js'
import { eventValidator } from '../../lib/index.js'
import { createClient } from '../../lib/client.js'
import { moduleImports } from '../helpers/client-module.js'
import { launchChromium, skipWithoutChromium } from '../helpers/chromium.js'
import { withTimeout } from '../helpers/app.js'
import { startExample } from '../helpers/example.js'
import { openStream } from '../helpers/client.js'
import { REDIS_MISSING, startRedis } from '../helpers/redis.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])

/** Opens `url` without a keep-alive agent, so nothing outlives the test. */
function open (url: string, timeoutMs = 5000): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false, signal: AbortSignal.timeout(timeoutMs) }, resolve).on('error', reject)
  })
}

/**
 * Reads raw event blocks (the text between blank lines) until `count` arrived,
 * then drops the connection: the server sees the client leave.
 */
async function readBlocks (url: string, count: number): Promise<{ headers: IncomingHttpHeaders, blocks: string[], firstMs: number }> {
  const startedAt = performance.now()
  const response = await open(url)
  response.setEncoding('utf8')
  let text = ''
  let firstMs = -1
  for await (const chunk of response) {
    text += chunk as string
    const blocks = text.split('\n\n')
    if (firstMs < 0 && blocks.length > 1) firstMs = performance.now() - startedAt
    if (blocks.length > count) {
      response.destroy()
      return { headers: response.headers, blocks: blocks.slice(0, count), firstMs }
    }
  }
  throw new Error(`stream ended after ${JSON.stringify(text)}`)
}

/** Parses one `tick` block, checking its exact fields (LF only, no other field). */
function parseTick (t: Test, block: string): { now: string, epochMs: number } {
  const lines = block.split('\n')
  t.equal(lines.length, 2, 'two fields: event and data')
  t.equal(lines[0], 'event: tick')
  t.match(lines[1], /^data: \{/)
  t.notOk(block.includes('\r'), 'LF only')
  return JSON.parse(lines[1].slice('data: '.length)) as { now: string, epochMs: number }
}

function activeTimers (): number {
  return process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length
}

/** Resolves once `check()` holds, or rejects after `timeoutMs`. */
async function waitFor (what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

t.test('GET / serves the page and its script', async (t) => {
  const { url } = await startExample(t)
  const page = await fetch(url, { signal: AbortSignal.timeout(5000) })
  t.equal(page.status, 200)
  t.match(page.headers.get('content-type'), /^text\/html/)
  t.match(await page.text(), '<script type="module" src="/app.js"></script>')

  const script = await fetch(new URL('/app.js', url), { signal: AbortSignal.timeout(5000) })
  t.equal(script.status, 200)
  t.match(script.headers.get('content-type'), /javascript/)
  const source = await script.text()
  t.match(source, "import { createClient } from '/client/client.js'")
  t.match(source, "createClient('/time')")

  // The typed client, as plain ES modules that import only each other: no bundler, no server code.
  const client = await fetch(new URL('/client/client.js', url), { signal: AbortSignal.timeout(10_000) })
  t.equal(client.status, 200)
  t.match(client.headers.get('content-type'), /^text\/javascript/)
  const clientSource = await client.text()
  t.match(clientSource, 'export function createClient')
  for (const specifier of new Set(moduleImports(clientSource))) {
    t.match(specifier, /^\.\/client\/[a-z-]+\.js$/, `imports only its own files: ${specifier}`)
    const part = await fetch(new URL(specifier, new URL('/client/client.js', url)), { signal: AbortSignal.timeout(10_000) })
    t.equal(part.status, 200, specifier)
  }
})

t.test('GET /time sends a typed tick at once, then one per interval', async (t) => {
  const { url } = await startExample(t, { tickMs: 1500 })
  const timersBefore = activeTimers()
  const { headers, blocks, firstMs } = await readBlocks(`${url}/time`, 3)
  t.equal(headers['content-type'], 'text/event-stream; charset=utf-8')
  t.ok(firstMs < 1000, `first tick before the first interval of 1500 ms (${firstMs.toFixed(1)} ms)`)

  const ticks = blocks.map((block) => parseTick(t, block))
  for (const tick of ticks) {
    t.ok(Number.isInteger(tick.epochMs), 'epochMs is an integer')
    t.equal(new Date(tick.now).toISOString(), tick.now, 'now is an ISO 8601 string')
    t.ok(Math.abs(Date.parse(tick.now) - tick.epochMs) < 50, 'now and epochMs are the same instant')
    t.ok(Math.abs(Date.now() - tick.epochMs) < 5000, 'the current time')
  }
  t.ok(ticks[1].epochMs - ticks[0].epochMs >= 290, 'the second tick waits an interval')
  t.ok(ticks[2].epochMs > ticks[1].epochMs, 'time moves on')

  // The stream's interval is the only timer it holds (the plugin's are unref'd):
  // it must be cleared once the client has gone.
  await waitFor('the tick interval to be cleared', () => activeTimers() <= timersBefore, 2000)
  t.pass('the interval is cleared when the client leaves')
})

t.test('the page in Chromium shows the live time and the connection status', { skip: skipWithoutChromium() }, async (t) => {
  const { url, close } = await startExample(t)
  const browser = await launchChromium(t)
  const page = await browser.newPage()
  const pageErrors: string[] = []
  page.on('pageerror', (err) => pageErrors.push(err.message))
  page.on('console', (message) => { if (message.type() === 'error') pageErrors.push(message.text()) })

  await page.goto(url, { timeout: 10_000 })
  // Counted in the page, polled every 100 ms: the first tick replaces the
  // placeholder, then at least two more seconds must show.
  await page.waitForFunction(() => {
    const page = window as unknown as { seenTimes?: Set<string> }
    const seen = (page.seenTimes ??= new Set())
    const text = document.getElementById('time')?.textContent ?? ''
    if (/^\d\d:\d\d:\d\d$/.test(text)) seen.add(text)
    return seen.size >= 3
  }, undefined, { polling: 100, timeout: 6000 })
  t.pass('the displayed time changed at least twice')
  t.equal(await page.locator('#status').getAttribute('data-state'), 'open')
  t.equal(await page.locator('#status').textContent(), 'open')
  t.notMatch(await page.locator('#date').textContent(), /waiting/, 'the date is shown')
  t.same(pageErrors, [], 'no script or console errors')

  // Kept when EXAMPLE_SCREENSHOT names a file, to look at the page by hand.
  const keep = process.env.EXAMPLE_SCREENSHOT
  const screenshotDir = keep === undefined ? await mkdtemp(join(tmpdir(), 'typed-sse-shot-')) : undefined
  if (screenshotDir !== undefined) t.teardown(() => rm(screenshotDir, { recursive: true, force: true }))
  const screenshotPath = keep ?? join(screenshotDir as string, 'example.png')
  await page.screenshot({ path: screenshotPath, timeout: 10_000 })
  const png = await readFile(screenshotPath)
  t.ok(png.subarray(0, 8).equals(PNG_SIGNATURE) && png.length > 1000, `a screenshot (${png.length} bytes)`)

  // Closing with a browser connected must be prompt: Chromium keeps spare sockets
  // that never send a request, and with Fastify's default forceCloseConnections
  // ('idle') close() waited on them until the browser reconnected (3 s).
  const closingAt = performance.now()
  await close()
  const closeMs = performance.now() - closingAt
  t.ok(closeMs < 1000, `app.close() with the page open took ${closeMs.toFixed(0)} ms`)
  // The server going away must show: the browser keeps retrying, so "reconnecting".
  await page.locator('#status[data-state="reconnecting"]').waitFor({ timeout: 5000 })
  t.equal(await page.locator('#status').textContent(), 'reconnecting')
})

t.test('POST /score publishes to every watcher; a new page replays the current scores', async (t) => {
  const { url } = await startExample(t)
  const post = async (body: unknown): Promise<{ status: number, json: { id?: string, code?: string } }> => {
    const response = await fetch(`${url}/score`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    return { status: response.status, json: await response.json() as { id?: string, code?: string } }
  }
  const first = await post({ match: 'AUS-NZL', home: 1, away: 0 })
  t.equal(first.status, 201)
  t.type(first.json.id, 'string', 'the event id is returned')
  t.equal((await post({ match: 'AUS-NZL', home: 'one', away: 0 })).status, 400, 'the body schema refuses a bad score')
  await post({ match: 'FRA-ITA', home: 0, away: 2 })

  const replayed = await readBlocks(`${url}/scores`, 2)
  t.same(replayed.blocks.map((block) => block.split('\n').find((line) => line.startsWith('data: '))), [
    'data: {"match":"AUS-NZL","home":1,"away":0}',
    'data: {"match":"FRA-ITA","home":0,"away":2}'
  ], 'a new watcher first gets every retained score, in order')
  t.match(replayed.blocks[0], new RegExp(`^event: score\nid: ${first.json.id as string}\n`), 'with the ids of the channel history')
})

t.test('the typed client in Node, against the example server: ticks and scores, typed and validated', async (t) => {
  const { url } = await startExample(t, { tickMs: 100 })
  await fetch(`${url}/score`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"match":"AUS-NZL","home":3,"away":2}' })
  const errors: string[] = []
  const options = { EventSource, validate: eventValidator(scoreboard), onError: (err: { code: string }) => errors.push(err.code) }
  const scores = createClient(`${url}/scores`, { ...options, catalog: scoreboard })
  const time = createClient<typeof clock>(`${url}/time`, { EventSource })
  t.teardown(() => { scores.close(); time.close() })
  const [score, tick] = await withTimeout(Promise.all([
    new Promise<{ home: number, id: string | undefined }>((resolve) => scores.on('score', (data, meta) => resolve({ home: data.home, id: meta.id }))),
    new Promise<{ epochMs: number }>((resolve) => time.on('tick', resolve))
  ]), 5000, 'a tick and a score')
  const received = { home: score.home, id: score.id, epochMs: tick.epochMs }
  t.equal(received.home, 3, 'the replayed score, parsed and typed')
  t.type(received.epochMs, 'number', 'a tick, parsed and typed')
  t.match(received.id, /_\d+$/, 'with the channel id')
  t.equal(scores.status, 'open')
  t.same(errors, [], 'every event passed validation')
})

t.test('the scoreboard in Chromium: live updates, and a reload shows the same scores', { skip: skipWithoutChromium() }, async (t) => {
  const { url } = await startExample(t)
  const browser = await launchChromium(t)
  const page = await browser.newPage()
  const pageErrors: string[] = []
  page.on('pageerror', (err) => pageErrors.push(err.message))
  await page.goto(url, { timeout: 10_000 })
  await page.locator('#scores-status[data-state="open"]').waitFor({ timeout: 5000 })

  // Published by another client (curl, another page): the page updates live.
  await fetch(`${url}/score`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"match":"AUS-NZL","home":2,"away":1}' })
  await page.locator('#scores tr', { hasText: 'AUS-NZL' }).locator('td.score', { hasText: '2 : 1' }).waitFor({ timeout: 5000 })
  t.pass('a published score shows live')

  // Published from the page's own form.
  await page.fill('#score-form input[name=match]', 'FRA-ITA')
  await page.fill('#score-form input[name=home]', '0')
  await page.fill('#score-form input[name=away]', '3')
  await page.click('#score-form button')
  await page.locator('#scores tr', { hasText: 'FRA-ITA' }).locator('td.score', { hasText: '0 : 3' }).waitFor({ timeout: 5000 })
  t.pass('the form publishes, and the page receives its own score')

  await page.reload({ timeout: 10_000 })
  await page.locator('#scores tr', { hasText: 'FRA-ITA' }).waitFor({ timeout: 5000 })
  const rows = await page.locator('#scores tr').allTextContents()
  t.same(rows, ['AUS-NZL2 : 1', 'FRA-ITA0 : 3'], 'after a reload the replay shows the same scores')
  t.same(pageErrors, [], 'no script errors')
})

/** The example's entry point running in a process of its own, as `npm start` runs it. */
interface ExampleProcess {
  readonly url: string
  readonly child: ChildProcess
  readonly exited: Promise<[number | null, NodeJS.Signals | null]>
  output (): string
}

/**
 * Runs example/server.ts from source through tsx (the build is `npm start`'s own
 * business) with PORT=0, so parallel runs never collide; killed at teardown if alive.
 */
async function startExampleProcess (t: Test, env: NodeJS.ProcessEnv = {}): Promise<ExampleProcess> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, PORT: '0', HOST: '127.0.0.1', ...env }
  // tap's own loader must not stack on tsx in the child.
  delete childEnv.NODE_OPTIONS
  const child = spawn(process.execPath, ['--import', 'tsx', 'example/server.ts'], {
    cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe']
  })
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  let stdout = ''
  let stderr = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const output = (): string => `stdout: ${stdout}\nstderr: ${stderr}`
  const urlPattern = /http:\/\/127\.0\.0\.1:(\d+)\/?/
  await waitFor('the printed URL', () => urlPattern.test(stdout) || child.exitCode !== null, 60_000)
    .catch((err: Error) => { throw new Error(`${err.message}\n${output()}`) })
  const match = urlPattern.exec(stdout)
  if (match === null) throw new Error(`no URL printed\n${output()}`)
  t.not(match[1], '0', `printed its real URL: ${stdout.trim()}`)
  return { url: match[0], child, exited, output }
}

t.test('example/server.ts prints its URL and exits on SIGTERM with a stream open', async (t) => {
  const { url, child, exited, output } = await startExampleProcess(t)
  const page = await fetch(url, { signal: AbortSignal.timeout(5000) })
  t.equal(page.status, 200, 'the printed URL answers')
  t.match(await page.text(), '<title>')

  // An open stream must not hold the process: the plugin closes it on app.close().
  const stream = await open(new URL('/time', url).href)
  stream.resume()
  await once(stream, 'data')
  const streamEnded = once(stream, 'close')

  const signalledAt = performance.now()
  t.ok(child.kill('SIGTERM'), 'SIGTERM sent')
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`still running 2 s after SIGTERM\n${output()}`)), 2000)
  })
  const [code, signal] = await Promise.race([exited, timeout]).finally(() => clearTimeout(timer))
  const exitMs = performance.now() - signalledAt
  t.equal(code, 0, 'exit code 0')
  t.equal(signal, null, 'exited by itself, not killed by the signal')
  t.ok(exitMs < 2000, `exited ${exitMs.toFixed(0)} ms after SIGTERM`)
  await streamEnded
  t.pass('the open stream ended')
})

t.test('REDIS_URL: two example processes on two ports share the scoreboard', { skip: REDIS_MISSING }, async (t) => {
  const redis = await startRedis(t)
  const [a, b] = await Promise.all([
    startExampleProcess(t, { REDIS_URL: redis.url }),
    startExampleProcess(t, { REDIS_URL: redis.url })
  ])
  t.not(a.url, b.url, 'two instances')
  const post = async (url: string, score: unknown): Promise<string> => {
    const response = await fetch(`${url}score`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(score) })
    t.equal(response.status, 201, `published on ${url}`)
    return ((await response.json()) as { id: string }).id
  }
  const firstId = await post(a.url, { match: 'AUS-NZL', home: 1, away: 0 })
  t.match(firstId, /^\d+-\d+$/, 'a Redis stream id')

  // A new page on B replays what was published on A, then gets A's next publish live.
  const watcher = await openStream(t, `${b.url}scores`)
  const [replayed] = await watcher.events(1, 5000)
  t.same(JSON.parse(replayed.data), { match: 'AUS-NZL', home: 1, away: 0 }, 'B replays what A published')
  t.equal(replayed.lastEventId, firstId, 'with its Redis id')
  await post(a.url, { match: 'AUS-NZL', home: 2, away: 0 })
  await post(b.url, { match: 'FRA-ITA', home: 0, away: 1 })
  const events = await watcher.events(3, 5000)
  t.same(events.map((event) => event.data), [
    '{"match":"AUS-NZL","home":1,"away":0}',
    '{"match":"AUS-NZL","home":2,"away":0}',
    '{"match":"FRA-ITA","home":0,"away":1}'
  ], 'every score once, in publish order, whichever instance published it')
})
