/**
 * Faults on one node of a test cluster (test/helpers/redis.ts starts the cluster):
 * dropping an engine's shard subscriptions there, and freezing the node's clients,
 * in one round trip so nothing the engine does can land in between.
 */
import type { Redis } from 'ioredis'

/** One CLIENT LIST line's fields. */
function fields (line: string): Map<string, string> {
  return new Map(line.split(' ').map((pair) => {
    const at = pair.indexOf('=')
    return [pair.slice(0, at), pair.slice(at + 1)] as const
  }))
}

/**
 * Kills the connections named `name` that hold shard subscriptions on the node `admin`
 * talks to (CLIENT LIST's `ssub`, Redis 7), and, with `pauseMs`, then makes the node hold
 * every client command that long (CLIENT PAUSE ALL: new connections cannot get ready,
 * while the cluster bus and its failure detection go on). Resolves with how many it killed.
 *
 * @example
 * // The engine made with redisOptions: { connectionName: 'b' } loses its subscriptions on that master.
 * await dropShardSubscribers(admin, 'b', 1500)
 */
export async function dropShardSubscribers (admin: Redis, name: string, pauseMs?: number): Promise<number> {
  const list = await admin.client('LIST') as string
  const ids = list.split('\n').map(fields).filter((client) => client.get('name') === name && Number(client.get('ssub')) > 0).map((client) => client.get('id') as string)
  const pipeline = admin.pipeline()
  for (const id of ids) pipeline.client('KILL', 'ID', id)
  if (pauseMs !== undefined) pipeline.client('PAUSE', pauseMs, 'ALL')
  const results = await pipeline.exec() ?? []
  return results.slice(0, ids.length).filter(([err, killed]) => err === null && killed === 1).length
}
