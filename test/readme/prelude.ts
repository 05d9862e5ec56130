/**
 * The names README and docs blocks assume without declaring them: an app with the plugin
 * registered, the catalogs of earlier blocks, and stand-ins for an application's own
 * parts (an LLM SDK, a session store, page elements). test/readme.test.ts imports into
 * each block only the names it uses and does not declare itself. Never the package's or a
 * library's exports: a block imports those itself, so that it runs as pasted.
 */
import Fastify from 'fastify'
import { Registry } from 'prom-client'
import sse, { defineEvents, Text, Type, type SseStream } from '../../lib/index.js'


/** A prom-client registry, as an application that already exposes metrics has one. */
export const registry = new Registry()

/** An app with the plugin registered, as after the README's first example. */
export const app = Fastify()
await app.register(sse)

/** The catalogs the README's blocks declare, for the blocks that use them without declaring them. */
export const clock = defineEvents({ tick: Type.Object({ now: Type.String(), epochMs: Type.Integer() }) })
export const llm = defineEvents({ token: Text(), done: Type.Object({ tokens: Type.Integer() }) })
export const scoreEvents = defineEvents({
  score: Type.Object({ match: Type.String(), home: Type.Integer(), away: Type.Integer() })
})
export const events = clock
/** A stream of the clock, for blocks that show what is done with one. */
export declare const stream: SseStream<typeof clock>
export const notes = defineEvents({ note: Type.Object({ userId: Type.String(), text: Type.String() }) })
export const noteEvents = notes

/** A signed-in user, as an app's session store returns it. */
export interface User {
  id: string
  tokenExpiresAt: Date
}

/** A session store. */
export const sessions = {
  async get (sid: string | undefined): Promise<User | undefined> {
    return sid === undefined ? undefined : { id: sid, tokenExpiresAt: new Date(Date.now() + 60_000) }
  }
}

/** A token model: an async iterable of text pieces. */
export const model = {
  async * stream (prompt: string): AsyncIterable<string> {
    yield * prompt.split(' ')
  }
}

/** The shape of the OpenAI SDK's streaming chat call that the LLM recipe uses. */
export const openai = {
  chat: {
    completions: {
      async create (_body: { model: string, messages: Array<{ role: string, content: string }>, stream: true }, _options: { signal: AbortSignal }): Promise<AsyncIterable<{ choices: Array<{ delta?: { content?: string } }> }>> {
        return (async function * () { yield { choices: [{ delta: { content: 'hi' } }] } })()
      }
    }
  }
}

/** The current state of every match, for a snapshot. */
export function currentScores (): Array<{ match: string, home: number, away: number }> {
  return []
}

/** Page parts the typed client block updates. */
export const badge = { textContent: '' }
export function render (_value: unknown): void {}
export function refetchSnapshot (_info: unknown): void {}
export function showGap (_dropped: number): void {}

/** What the client blocks of the README assume of their page. */
export const prompt = 'tell me a story'
export async function refresh (): Promise<string> {
  return 'a fresh token'
}
export const output = { append (_text: string): void {} }
export const spinner = { hidden: false }
export function done (): void {}
