/**
 * A TCP proxy on loopback that delays every chunk, both ways, by a fixed time (order
 * kept): a slow network between one instance and Redis, so a test can make one
 * instance's commands arrive after another's, every time.
 */
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net'
import type { Teardown } from './app.js'

/**
 * Starts a proxy to `127.0.0.1:targetPort`; resolves to its own port. Closed in `t.teardown`.
 *
 * @example
 * const port = await delayProxy(t, redis.port, 300)
 * redisEngine({ url: `redis://127.0.0.1:${port}` }) // every command takes 600 ms more
 */
export async function delayProxy (t: Teardown, targetPort: number, delayMs: number): Promise<number> {
  const sockets = new Set<Socket>()
  const timers = new Set<NodeJS.Timeout>()
  const forward = (from: Socket, to: Socket): void => {
    from.on('data', (chunk: Buffer) => {
      const timer = setTimeout(() => { timers.delete(timer); if (!to.destroyed) to.write(chunk) }, delayMs)
      timers.add(timer)
    })
    from.on('close', () => { const timer = setTimeout(() => to.destroy(), delayMs); timers.add(timer) })
    from.on('error', () => to.destroy())
  }
  const server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort })
    for (const socket of [client, upstream]) sockets.add(socket)
    forward(client, upstream)
    forward(upstream, client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const timer of timers) clearTimeout(timer)
    for (const socket of sockets) socket.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return (server.address() as AddressInfo).port
}
