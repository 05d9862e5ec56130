/**
 * Presence: who is subscribed to a channel, on every instance. A subscriber joins
 * with `subscribe(stream, { presence: { id, info } })` and leaves when its stream
 * does; a member is counted once however many connections it has (tabs, devices), and
 * with `presence: { events: true }` the channel sends `sse:join` and `sse:leave` once
 * per member. The engine counts across instances (EnginePresence); this file checks
 * the option, keeps which stream is which member on this instance, announces joins
 * and leaves (the memory engine's store is engine/presence.ts).
 */
import type { Static, TSchema } from '@sinclair/typebox'
import { compiledEvent, defineEvents, parsePayload, serializePayload, type CompiledEvent } from '../core/catalog.js'
import { JOIN_EVENT, LEAVE_EVENT } from '../core/control.js'
import { InvalidOptionError } from '../core/errors.js'
import { describe } from '../core/frame.js'
import { optionNames, refuseUnknownOptions } from '../core/validate.js'
import type { EngineChannel, EnginePresence, PresenceRecord } from '../engine/engine.js'

/** A member id longer than this is refused: ids travel in every `sse:join` and `sse:leave`. */
export const MAX_MEMBER_ID_LENGTH = 256

/**
 * The channel option `presence`.
 *
 * @example
 * app.sse.channel('room', roomEvents, { presence: { info: Type.Object({ name: Type.String() }), events: true } })
 */
export interface PresenceOptions<S extends TSchema = TSchema> {
  /** The schema of what each member tells about itself (validated at subscribe). */
  info: S
  /**
   * Send `sse:join` and `sse:leave` to the channel's subscribers, once per member.
   * @default false
   */
  events?: boolean
}

/** What `subscribe(stream, { presence })` takes: who the stream is. */
export interface PresenceJoin<S extends TSchema = TSchema> {
  /** The member's id (a user, a device): its connections count as one member. */
  id: string
  info: Static<S>
}

/** One member as `channel.presence()` lists it. */
export interface PresenceMember<S extends TSchema = TSchema> {
  id: string
  /** The info of one of its connections (the latest to join on the instance that holds it). */
  info: Static<S>
  /** Its connections on every instance. */
  connections: number
}

/** The `presence` option, checked and compiled. */
export interface ResolvedPresence {
  readonly info: CompiledEvent
  readonly events: boolean
}

const PRESENCE_OPTION_NAMES = optionNames<PresenceOptions>({ info: true, events: true })

/**
 * Checks a channel's `presence` option and compiles its info schema once.
 *
 * @throws TYPED_SSE_INVALID_OPTION
 * @example
 * resolvePresence({ info: Type.Object({ name: Type.String() }) }).events // false
 */
export function resolvePresence (given: unknown): ResolvedPresence | undefined {
  if (given === undefined || given === false) return undefined
  if (given === null || typeof given !== 'object') throw new InvalidOptionError('presence', `expected { info: schema, events? }, got ${describe(given)}`)
  refuseUnknownOptions('presence', given, PRESENCE_OPTION_NAMES, 'presence.')
  const { info, events } = given as PresenceOptions
  if (info === null || typeof info !== 'object') throw new InvalidOptionError('presence.info', `expected a TypeBox schema, got ${describe(info)}`)
  if (events !== undefined && typeof events !== 'boolean') throw new InvalidOptionError('presence.events', `expected a boolean, got ${describe(events)}`)
  // A catalog of one event compiles the schema the way every event schema is compiled.
  return Object.freeze({ info: compiledEvent(defineEvents({ presence: info } as any), 'presence'), events: events === true })
}

/**
 * Checks a subscriber's `presence` option against the channel's.
 *
 * @returns the member id and its info as JSON text
 * @throws TYPED_SSE_INVALID_OPTION, TYPED_SSE_INVALID_PAYLOAD (info not matching the schema)
 */
export function memberOf (resolved: ResolvedPresence | undefined, given: unknown): { id: string, info: string } {
  if (resolved === undefined) throw new InvalidOptionError('presence', 'this channel keeps no presence: declare it with `presence: { info }`')
  if (given === null || typeof given !== 'object') throw new InvalidOptionError('presence', `expected { id, info }, got ${describe(given)}`)
  const { id, info } = given as PresenceJoin
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_MEMBER_ID_LENGTH) {
    throw new InvalidOptionError('presence.id', `expected a non-empty string of at most ${MAX_MEMBER_ID_LENGTH} characters, got ${describe(id)}`)
  }
  return { id, info: serializePayload(resolved.info, info) }
}

/** The members an engine listed, with their info read back (records another version wrote that do not parse are left out). */
export function members<S extends TSchema> (resolved: ResolvedPresence, records: readonly PresenceRecord[]): Array<PresenceMember<S>> {
  const out: Array<PresenceMember<S>> = []
  for (const record of records) {
    const info = parsePayload(resolved.info, record.info)
    if (info !== undefined) out.push({ id: record.id, info: info as Static<S>, connections: record.connections })
  }
  return out
}

/** What a channel's presence does through its channel. */
export interface PresenceHooks {
  /** Publishes a control event on the channel (to every instance). */
  readonly publish: (event: typeof JOIN_EVENT | typeof LEAVE_EVENT, data: string) => Promise<unknown>
  readonly log: (err: unknown, message: string) => void
}

/**
 * The members of one channel on this instance: which stream is which member, told to
 * the engine on join and leave, and the announcements.
 *
 * @example
 * const presence = new ChannelPresence(resolved, engineChannel.presence, hooks)
 * await presence.join(stream, 'alice', '{"name":"Alice"}')
 */
export class ChannelPresence {
  /** The channel's option, checked: subscribers' `presence` is checked against it. */
  readonly resolved: ResolvedPresence
  readonly #engine: EnginePresence
  readonly #hooks: PresenceHooks
  readonly #members = new Map<object, string>()
  /** The last step of each member on this instance: its next join or leave runs after it, so announcements keep their order. */
  readonly #chains = new Map<string, Promise<void>>()

  /**
   * The presence of a channel declared with `presence` whose engine keeps it (else undefined):
   * its joins and leaves are published on the channel's engine.
   */
  static open (resolved: ResolvedPresence | undefined, engine: EngineChannel, log: PresenceHooks['log']): ChannelPresence | undefined {
    if (resolved === undefined || engine.presence === undefined) return undefined
    return new ChannelPresence(resolved, engine.presence, {
      publish: async (event, data) => await engine.publish({ event, data, publishedAt: Date.now() }),
      log
    })
  }

  constructor (resolved: ResolvedPresence, engine: EnginePresence, hooks: PresenceHooks) {
    this.resolved = resolved
    this.#engine = engine
    this.#hooks = hooks
  }

  /** Registers `stream` as a connection of `id`; announces the member when it is its first anywhere. */
  join (stream: object, id: string, info: string): Promise<void> {
    this.#members.set(stream, id)
    return this.#step(id, async () => {
      if (await this.#engine.join(id, info)) await this.#announce(JOIN_EVENT, `{"id":${JSON.stringify(id)},"info":${info}}`)
    })
  }

  /** The stream left: one connection of its member less. */
  leave (stream: object): void {
    const id = this.#members.get(stream)
    if (id === undefined) return
    this.#members.delete(stream)
    void this.#step(id, async () => {
      if (await this.#engine.leave(id)) await this.#announce(LEAVE_EVENT, JSON.stringify({ id }))
    })
  }

  /** Members whose instance stopped renewing its lease: announced here (the engine found them). */
  left (ids: readonly string[]): void {
    for (const id of ids) void this.#announce(LEAVE_EVENT, JSON.stringify({ id }))
  }

  /** The members on every instance. */
  async list<S extends TSchema> (): Promise<Array<PresenceMember<S>>> {
    return members<S>(this.resolved, await this.#engine.list())
  }

  /** Every member of this instance leaves (the channel is dropped or closed). */
  leaveAll (): void {
    for (const stream of [...this.#members.keys()]) this.leave(stream)
  }

  #step (id: string, run: () => Promise<void>): Promise<void> {
    const previous = this.#chains.get(id) ?? Promise.resolve()
    const next = previous.then(run).catch((err: unknown) => { this.#hooks.log(err, `presence of member "${id}" could not be updated`) })
    this.#chains.set(id, next)
    void next.then(() => { if (this.#chains.get(id) === next) this.#chains.delete(id) })
    return next
  }

  async #announce (event: typeof JOIN_EVENT | typeof LEAVE_EVENT, data: string): Promise<void> {
    if (!this.resolved.events) return
    try {
      await this.#hooks.publish(event, data)
    } catch (err) {
      this.#hooks.log(err, `announcing ${event} failed`)
    }
  }
}
