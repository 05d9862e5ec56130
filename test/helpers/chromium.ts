/**
 * Debian's Chromium driven through playwright-core, for tests of the example page
 * in a real browser. playwright-core ships no browser: `.ci/run` installs
 * Debian's `chromium` package and this helper launches it.
 */
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type BrowserContext } from 'playwright-core'

/** Where Debian's `chromium` package puts the browser. */
export const CHROMIUM_PATH = '/usr/bin/chromium'

/** Why browser tests are skipped on a machine without Chromium, and the fix. */
export const CHROMIUM_MISSING = `Chromium not found at ${CHROMIUM_PATH}: apt-get install chromium`

/** Upper bound for starting the browser (a cold start takes a second or two). */
const LAUNCH_TIMEOUT_MS = 30_000

/** Upper bound for closing it; past it the teardown fails instead of hanging the run. */
const CLOSE_TIMEOUT_MS = 10_000

/**
 * Quiet, deterministic flags: no sandbox (tests run as root in containers), no GPU,
 * and none of the background traffic (updates, sync, QUIC) a test must not depend on.
 */
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'
]

/** The part of a tap test this helper needs: a place to register cleanup. */
export interface Teardown {
  teardown (fn: () => unknown): void
}

/**
 * The path of the Chromium binary, or `undefined` when it is not installed.
 *
 * @example
 * if (chromiumPath() === undefined) console.log(CHROMIUM_MISSING)
 */
export function chromiumPath (): string | undefined {
  return existsSync(CHROMIUM_PATH) ? CHROMIUM_PATH : undefined
}

/**
 * The `skip` option for a browser test: the reason when Chromium is missing, else
 * `false`. Under CI (`CI` set) it is always `false`: `.ci/run` installs Chromium,
 * so a missing browser there must fail the launch loudly, not pass as a skip.
 *
 * @example
 * t.test('page in Chromium', { skip: skipWithoutChromium() }, async (t) => { ... })
 */
export function skipWithoutChromium (): string | false {
  if (chromiumPath() !== undefined || isCi()) return false
  return CHROMIUM_MISSING
}

function isCi (): boolean {
  const ci = process.env.CI
  return ci !== undefined && ci !== '' && ci !== 'false' && ci !== '0'
}

async function closeWithin (context: BrowserContext, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`Chromium did not close within ${timeoutMs} ms`)), timeoutMs)
  })
  try {
    await Promise.race([context.close(), timeout])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Launches headless Chromium with a fresh profile in a temporary directory; the
 * browser is closed and the directory removed at `t`'s teardown.
 *
 * @throws Error with {@link CHROMIUM_MISSING} when Chromium is not installed
 * @example
 * const browser = await launchChromium(t)
 * const page = await browser.newPage()
 * await page.goto(url)
 */
export async function launchChromium (t: Teardown): Promise<BrowserContext> {
  const executablePath = chromiumPath()
  if (executablePath === undefined) throw new Error(CHROMIUM_MISSING)
  // A persistent context on a throwaway profile: nothing from the machine's own
  // profile (extensions, cache, cookies) leaks into the test, nor out of it.
  const profileDir = await mkdtemp(join(tmpdir(), 'typed-sse-chromium-'))
  t.teardown(() => rm(profileDir, { recursive: true, force: true }))
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: LAUNCH_TIMEOUT_MS
  })
  // tap runs teardowns last-in first-out: the browser closes before its profile is removed.
  t.teardown(() => closeWithin(context, CLOSE_TIMEOUT_MS))
  return context
}
