/**
 * The typed client keeps the state: `client.state(event, keyOf)` and
 * `client.presence()` are live maps built from the snapshot, live events, `sse:remove`,
 * `sse:join` and `sse:leave`, emptied by `sse:resync` and filled again by the snapshot
 * that follows it; over both transports, against a real server.
 */
import { EventSource } from 'eventsource'
import t from 'tap'
import { createClient } from '../../lib/client.js'
import { defineEvents, Type } from '../../lib/index.js'
import { buildApp, waitUntil } from '../helpers/app.js'

const board = defineEvents({
  score: Type.Object({ match: Type.String(), home: Type.Integer(), away: Type.Integer() }),
  note: Type.Object({ text: Type.String() })
})

const TRANSPORTS = [
  ['eventsource', { EventSource }],
  ['fetch', { transport: 'fetch' }]
] as const

for (const [transport, via] of TRANSPORTS) {
  t.test(`${transport}: client.state() and client.presence() follow the snapshot, live events, removals, joins, leaves and a resync`, async (t) => {
    const { app, start } = await buildApp(t, { sse: { heartbeatMs: false, retryMs: 50 }, fastify: { forceCloseConnections: true } })
    const scores = app.sse.channel('scores', board, {
      history: { maxEvents: 3 },
      state: { score: (d) => d.match },
      presence: { info: Type.Object({ name: Type.String() }), events: true }
    })
    let connections = 0
    app.get('/board', async (request, reply) => {
      const { user } = request.query as { user?: string }
      connections++
      await scores.subscribe(reply.sse(board), { snapshot: true, ...(user === undefined ? {} : { presence: { id: user, info: { name: user } } }) })
    })
    const origin = await start()
    await scores.publish('score', { match: 'A-B', home: 1, away: 0 })
    await scores.publish('score', { match: 'C-D', home: 0, away: 0 })
    await scores.publish('score', { match: 'A-B', home: 2, away: 0 })

    const client = createClient(`${origin}/board?user=ann`, { catalog: board, ...via })
    t.teardown(() => client.close())
    const matches = client.state('score', (d) => d.match)
    const present = client.presence<{ name: string }>()
    let changes = 0
    client.onState(() => { changes++ })
    t.equal(client.state('score', (d) => d.match), matches, 'the same live map on every call')
    t.throws(() => client.state('nope' as any, () => 'x'), { code: 'TYPED_SSE_CLIENT_UNKNOWN_EVENT' })

    await waitUntil(() => matches.size === 2 && present.has('ann'), 10_000, 'the snapshot')
    t.same([...matches.entries()], [['C-D', { match: 'C-D', home: 0, away: 0 }], ['A-B', { match: 'A-B', home: 2, away: 0 }]], 'the snapshot: the latest score of each match')
    t.same([...present.entries()], [['ann', { name: 'ann' }]], 'ann is present (her own join)')
    t.ok(changes > 0, 'onState was called')

    await scores.publish('score', { match: 'E-F', home: 0, away: 1 })
    await scores.remove('C-D')
    await waitUntil(() => matches.has('E-F') && !matches.has('C-D'), 10_000, 'live and removal')
    t.same([...matches.keys()].sort(), ['A-B', 'E-F'], 'a live update added, a removed key gone')

    const other = createClient(`${origin}/board?user=bo`, { catalog: board, ...via })
    await waitUntil(() => present.has('bo'), 10_000, 'bo joins')
    other.close()
    await waitUntil(() => !present.has('bo'), 10_000, 'bo leaves')
    t.pass('joins and leaves of others follow')

    // Cut the connection and let the history move past the client's last id: it comes
    // back with an evicted id, gets sse:resync (maps emptied) and the state again.
    const before = connections
    let resyncs = 0
    client.onResync(() => { resyncs++ })
    for (const stream of [...scores.subscribers()]) stream.close()
    for (let i = 0; i < 5; i++) await scores.publish('score', { match: 'G-H', home: i, away: 0 })
    await scores.remove('A-B')
    await waitUntil(() => connections > before && resyncs === 1 && matches.has('G-H') && present.has('ann'), 10_000, 'resynced')
    await waitUntil(() => matches.get('G-H')?.home === 4, 10_000, 'the latest G-H')
    t.same([...matches.keys()].sort(), ['E-F', 'G-H'], 'after the resync: the state, without the key removed meanwhile')
    t.same([...present.keys()], ['ann'], 'and the members present')
  })
}
