/**
 * Typed request/response over the IPC channel of a forked child process.
 *
 * The runner calls `await peer.call('publish', {...}, timeoutMs)`; the child serves an
 * object of async methods with `serve(api)`. Every call has a deadline, so a child
 * that hangs fails the run instead of the benchmark.
 */
import type { ChildProcess } from 'node:child_process'

/** An API a child serves: named methods taking one JSON parameter. */
export type Api = Record<string, (params: any) => unknown>

/** What a child says on its own, outside any call. */
export type Announcement =
  | { announce: 'ready', port?: number }
  | { announce: 'unavailable', reason: string }

interface Request { id: number, method: string, params: unknown }
type Response = { id: number, result: unknown } | { id: number, error: string }

/**
 * Serves `api` to the parent process. The child exits when the parent goes away, so
 * no child outlives the runner.
 */
export function serve (api: Api): void {
  if (process.send === undefined) throw new Error('this module runs as a child of bench/run.js (forked with IPC)')
  process.on('disconnect', () => process.exit(0))
  process.on('message', (message: Request) => {
    const method = api[message.method]
    Promise.resolve()
      .then(() => {
        if (method === undefined) throw new Error(`unknown method ${message.method}`)
        return method(message.params)
      })
      .then(
        (result) => reply({ id: message.id, result: result ?? null }),
        (err: unknown) => reply({ id: message.id, error: err instanceof Error ? err.stack ?? err.message : String(err) })
      )
  })
}

function reply (response: Response): void {
  // The channel closes when the parent exits; nothing is waiting for the answer then.
  if (process.connected) process.send?.(response)
}

/** Tells the parent something outside a call (`ready`, `unavailable`). */
export function announce (message: Announcement): void {
  if (process.connected) process.send?.(message)
}

/** The parent's side: calls with deadlines, and the child's announcements. */
export class Peer<A extends Api> {
  readonly child: ChildProcess
  #nextId = 1
  readonly #pending = new Map<number, { resolve: (value: unknown) => void, reject: (err: Error) => void, timer: NodeJS.Timeout }>()
  readonly #announcements: Announcement[] = []
  #onAnnouncement: (() => void) | undefined
  #exitError: Error | undefined

  constructor (child: ChildProcess) {
    this.child = child
    child.on('message', (message: Response | Announcement) => {
      if ('announce' in message) {
        this.#announcements.push(message)
        this.#onAnnouncement?.()
        return
      }
      const pending = this.#pending.get(message.id)
      if (pending === undefined) return
      this.#pending.delete(message.id)
      clearTimeout(pending.timer)
      if ('error' in message) pending.reject(new Error(message.error))
      else pending.resolve(message.result)
    })
    child.once('exit', (code, signal) => {
      this.#exitError = new Error(`child ${child.pid ?? '?'} exited (code ${String(code)}, signal ${String(signal)})`)
      for (const pending of this.#pending.values()) {
        clearTimeout(pending.timer)
        pending.reject(this.#exitError)
      }
      this.#pending.clear()
      this.#onAnnouncement?.()
    })
  }

  /** Calls `method` in the child; rejects after `timeoutMs` or if the child exits. */
  call<K extends keyof A & string> (method: K, params: Parameters<A[K]>[0], timeoutMs: number): Promise<Awaited<ReturnType<A[K]>>> {
    if (this.#exitError !== undefined) return Promise.reject(this.#exitError)
    const id = this.#nextId++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(new Error(`${method} timed out after ${timeoutMs} ms`))
      }, timeoutMs)
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject, timer })
      this.child.send({ id, method, params } satisfies Request)
    })
  }

  /** The child's first announcement (`ready` or `unavailable`), within `timeoutMs`. */
  async announcement (timeoutMs: number): Promise<Announcement> {
    const deadline = Date.now() + timeoutMs
    while (this.#announcements.length === 0) {
      if (this.#exitError !== undefined) throw this.#exitError
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no announcement from child ${this.child.pid ?? '?'} within ${timeoutMs} ms`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.#onAnnouncement = () => { clearTimeout(timer); resolve() }
      })
      this.#onAnnouncement = undefined
    }
    return this.#announcements.shift() as Announcement
  }
}
