/**
 * Type tests of `defineEvents`, checked by `tsc --noEmit` (never run): names the library
 * or EventSource reserves, and schemas JSON cannot carry, fail to compile with a message
 * that says why. Each `@ts-expect-error` line must fail to compile.
 */
import { defineEvents, Text, Type } from '../../lib/index.js'

export const accepted = defineEvents({
  tick: Type.Object({ now: Type.String(), epochMs: Type.Integer() }),
  token: Text(),
  anything: Type.Unknown(),
  open_: Type.Any(),
  nested: Type.Object({ list: Type.Array(Type.Object({ at: Type.String() })), optional: Type.Optional(Type.Number()) }),
  erroring: Type.Null(),
  'sse-like': Type.String()
})

export function reservedNames (): void {
  // @ts-expect-error 'sse:' is the library's prefix
  defineEvents({ 'sse:mine': Type.String() })
  // @ts-expect-error EventSource dispatches 'error' itself
  defineEvents({ error: Type.Object({ message: Type.String() }) })
  // @ts-expect-error EventSource dispatches 'open' itself
  defineEvents({ ok: Type.String(), open: Type.String() })
}

export function unserializableSchemas (): void {
  // @ts-expect-error a Date is not JSON
  defineEvents({ at: Type.Date() })
  // @ts-expect-error nested, in an object
  defineEvents({ tick: Type.Object({ at: Type.Date() }) })
  // @ts-expect-error in an array
  defineEvents({ blobs: Type.Array(Type.Uint8Array()) })
  // @ts-expect-error bigint
  defineEvents({ big: Type.Object({ n: Type.BigInt() }) })
  // @ts-expect-error one member of a union
  defineEvents({ either: Type.Union([Type.String(), Type.Date()]) })
}
