/**
 * The runnable example (example/app.ts) on a real socket, for tests of its routes
 * and of its page in a browser.
 */
import { buildExample, type ExampleOptions } from '../../example/app.js'
import type { Teardown } from './app.js'

export interface RunningExample {
  /** `http://127.0.0.1:<port>` */
  url: string
  /** Closes the server; also run at teardown, so calling it early is safe. */
  close: () => Promise<void>
}

/**
 * Starts the example on a free port of 127.0.0.1, closed at `t`'s teardown.
 *
 * @example
 * const { url } = await startExample(t, { tickMs: 100 })
 * await page.goto(url)
 */
export async function startExample (t: Teardown, options?: ExampleOptions): Promise<RunningExample> {
  const app = await buildExample(options)
  let isClosed = false
  const close = async (): Promise<void> => {
    if (isClosed) return
    isClosed = true
    await app.close()
  }
  t.teardown(close)
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  return { url, close }
}
