/**
 * The consumer check: the packed tarball installed into a fresh project that checks
 * library types (`skipLibCheck: false`) under `strict`, and a small app using every entry
 * point (".", "./redis", "./client") compiled by the TypeScript the project pins (5.9) and
 * by the newest (7.x, the devDependency `typescript7`). Both must be clean: the project's
 * own checks skip library types and read the sources, so only this sees the .d.ts as
 * users get them (a stripped @internal member, a type that only resolves in the repository).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { installPacked, PACK_TIMEOUT_MS, packOnce, ROOT, runTsc, tscOf } from '../helpers/packed.js'

const COMPILE_TIMEOUT_MS = 120_000
t.setTimeout(PACK_TIMEOUT_MS + 3 * COMPILE_TIMEOUT_MS)

/** The compilers: the pinned one, and the newest major as the `typescript7` alias installs it. */
const COMPILERS = [
  { label: 'TypeScript 5.9 (pinned)', name: 'typescript', major: 5 },
  { label: 'TypeScript 7 (newest)', name: 'typescript7', major: 7 }
]

/** A user's strict project: ES modules, NodeNext, every library type checked. */
const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    skipLibCheck: false,
    noEmit: true,
    types: ['node']
  },
  include: ['*.ts']
}

/** The app: every entry point, the typed route, a channel with history, the engine, the client. */
const APP = `import Fastify from 'fastify'
import sse, { defineEvents, errors, Text, Type, type SseStream } from 'fastify-typed-sse'
import { redisEngine, type RedisEngineOptions } from 'fastify-typed-sse/redis'
import { createClient, type SseClient } from 'fastify-typed-sse/client'

export const clock = defineEvents({
  tick: Type.Object({ now: Type.String(), epochMs: Type.Integer() }),
  token: Text()
})

export async function server (redisUrl?: string): Promise<void> {
  const options: RedisEngineOptions = { url: redisUrl ?? 'redis://127.0.0.1:6379', prefix: 'app:' }
  const app = Fastify()
  await app.register(sse, redisUrl === undefined ? { heartbeatMs: 15_000 } : { engine: redisEngine(options) })
  const ticks = app.sse.channel('ticks', clock, { history: true })
  app.get('/time', { sse: clock }, async (request, reply) => {
    const stream: SseStream<typeof clock> = reply.sse()
    stream.send('tick', { now: new Date().toISOString(), epochMs: Date.now() })
    await ticks.subscribe(stream)
  })
  app.get('/tokens', { sse: clock }, async function * () {
    yield { event: 'token', data: 'hello' }
  })
  const id: string = await ticks.publish('token', 'world')
  try {
    ticks.publish('tick', { now: id, epochMs: 1 })
  } catch (err) {
    if (err instanceof errors.InvalidPayloadError) app.log.warn(err.message)
  }
  await app.listen({ port: 0 })
}

export function client (): SseClient<typeof clock> {
  const source = createClient('http://127.0.0.1:3000/time', { catalog: clock })
  source.on('tick', (tick) => console.log(tick.now.length + tick.epochMs))
  source.on('token', (text) => console.log(text.toUpperCase()))
  return source
}
`

t.test('the packed package compiles in a strict project with skipLibCheck: false, under TypeScript 5.9 and 7', async (t) => {
  const packed = await packOnce()
  // Inside the repository, so the package's dependencies resolve; .scratch/ is git-ignored.
  const dir = await mkdtemp(join(ROOT, '.scratch', 'consumer-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await installPacked(dir, packed)
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2))
  await writeFile(join(dir, 'app.ts'), APP)

  for (const compiler of COMPILERS) {
    const tsc = tscOf(compiler.name)
    if (tsc === undefined) {
      t.fail(`${compiler.label}: "${compiler.name}" is not installed (a devDependency: run npm ci)`)
      continue
    }
    const version = (await runTsc(tsc, ['--version'], dir, COMPILE_TIMEOUT_MS)).trim()
    t.match(version, new RegExp(`^Version ${compiler.major}\\.`), `${compiler.label}: ${version}`)
    const output = await runTsc(tsc, ['-p', 'tsconfig.json', '--pretty', 'false'], dir, COMPILE_TIMEOUT_MS)
    t.same(output.trim().split('\n').filter((line) => line !== ''), [], `${compiler.label}: no error in the app or in any library type`)
  }
})
