/**
 * The Redis pub/sub message codec on its own (no Redis needed): any message a channel
 * publishes decodes to itself, with its publisher's timestamp; a timestamp no encoder
 * writes makes the message foreign, and one too far from this clock is left out.
 * Stream ids are ordered as decimals of any length.
 */
import fc from 'fast-check'
import t from 'tap'
import { decode, encode, entries, MAX_CLOCK_DISTANCE_MS } from '../../lib/engine/redis/codec.js'
import { compareIds } from '../../lib/engine/redis/ids.js'
import { stateEntries } from '../../lib/engine/redis/state.js'

const NOW = 1_718_000_000_000

const unit = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.constantFrom('\r', '\n', '\r\n', '-', '0', ' ') }
)
/** What a catalog allows as an event name: not empty, no CR or LF. */
const eventName = fc.string({ unit, minLength: 1, maxLength: 20 }).filter((name) => !/[\r\n]/.test(name))
const data = fc.string({ unit, maxLength: 60 })
const decimal = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String)
const streamId = fc.tuple(decimal, decimal).map(([ms, seq]) => `${ms}-${seq}`)

t.test('any message a channel publishes decodes to itself, with its timestamp, with or without an id', async (t) => {
  fc.assert(fc.property(fc.option(streamId, { nil: undefined }), eventName, data, fc.integer({ min: -MAX_CLOCK_DISTANCE_MS, max: MAX_CLOCK_DISTANCE_MS }),
    (id, event, payload, offset) => {
      const decoded = decode(encode(id ?? '', event, payload, NOW + offset), NOW)
      return decoded !== undefined && decoded.id === id && decoded.event === event && decoded.data === payload && decoded.publishedAt === NOW + offset
    }), { numRuns: 500 })
  t.pass('500 random messages round-tripped')
  t.same(decode(encode('', 'score', 'x'), NOW), { id: undefined, event: 'score', data: 'x', publishedAt: undefined }, 'no timestamp: none decoded')
})

t.test('a timestamp too far from this clock is left out, the message kept; one no encoder writes drops the message', async (t) => {
  for (const publishedAt of [0, NOW - MAX_CLOCK_DISTANCE_MS - 1, NOW + MAX_CLOCK_DISTANCE_MS + 1, 99_999_999_999_999]) {
    t.same(decode(`1-0\n${publishedAt}\nscore\n{}`, NOW), { id: '1-0', event: 'score', data: '{}', publishedAt: undefined }, `${publishedAt}: kept, not timed`)
  }
  for (const field of ['abc', '-5', '1e12', '1.5', ' 12', '0012', '9'.repeat(16), `${NOW}\r`, '+1']) {
    t.equal(decode(`1-0\n${field}\nscore\n{}`, NOW), undefined, `${JSON.stringify(field)}: dropped`)
  }
  t.equal(decode('1-0\nscore\n{}', NOW), undefined, 'the format without a timestamp field: dropped')
  // A timestamp that is not a safe integer is never written (the field stays empty).
  for (const publishedAt of [1.5, -1, Number.NaN, Number.MAX_SAFE_INTEGER + 2]) t.match(encode('', 'e', 'd', publishedAt), /^\n\ne\nd$/)
})

t.test('an id that is a stream id with something before or after it is not one: the message or entry is dropped', async (t) => {
  // Such an id would reach clients as their Last-Event-ID and be compared as a stream id.
  for (const id of ['x1-0', '1-0x', ' 1-0', '1-0 0', '01-0', '1-00', '1-0-0', '1--0', '-1-0', '1-0\r']) {
    t.equal(decode(`${id}\n\nscore\n{}`, NOW), undefined, `pub/sub: ${JSON.stringify(id)}`)
    t.same(entries([[id, ['e', 'score', 'd', '{}']]]), [], `stream entry: ${JSON.stringify(id)}`)
  }
  t.same(entries([['1-0', ['e', 'score', 'd', '{}']]]).map((message) => message.id), ['1-0'], 'a stream id is kept')
  // A keyed-state snapshot's entries: the id is what precedes the value's first LF, so a CR
  // there would start a field of its own in the frame that writes it.
  for (const id of ['x1-0', '1-0x', '1-0\rdata: forged', '1-0\r', '01-0', '']) {
    t.same(stateEntries(['k', `${id}\nscore\n{}`]), [], `state entry: ${JSON.stringify(id)}`)
  }
  t.same(stateEntries(['b', '2-0\nscore\n{"n":2}', 'a', '1-0\nscore\n{"n":1}']), [
    { id: '1-0', event: 'score', data: '{"n":1}' }, { id: '2-0', event: 'score', data: '{"n":2}' }
  ], 'state entries with stream ids are kept, in id order')
})

t.test('stream ids are ordered by ms, then seq, as decimals past 2^53', async (t) => {
  fc.assert(fc.property(decimal, decimal, decimal, decimal, (aMs, aSeq, bMs, bSeq) => {
    const expected = BigInt(aMs) === BigInt(bMs) ? Math.sign(Number(BigInt(aSeq) - BigInt(bSeq))) : Math.sign(Number(BigInt(aMs) - BigInt(bMs)))
    return Math.sign(compareIds(`${aMs}-${aSeq}`, `${bMs}-${bSeq}`)) === expected
  }), { numRuns: 2000 })
  t.pass('2000 random pairs ordered as BigInts order them')
  t.ok(compareIds('9-0', '10-0') < 0)
  t.ok(compareIds('18446744073709551615-1', '18446744073709551615-0') > 0)
  t.equal(compareIds('5-5', '5-5'), 0)
})

t.test('a message from the publish script names its publish id and the entry before it (id and publish id); a malformed chain drops the message', async (t) => {
  t.same(decode('5-0 k3Jx.2 4-1 k3Jx.1\n\nscore\n{}', NOW), { id: '5-0', event: 'score', data: '{}', publishedAt: undefined, publishId: 'k3Jx.2', previous: 'k3Jx.1', previousId: '4-1' })
  const first = decode('5-0 k3Jx.0 -\n\nscore\n{}', NOW)
  t.same([first?.previous, first?.previousId], ['-', undefined], 'the first entry of a stream: no previous')
  t.same(decode('5-0\n\nscore\na b c', NOW), { id: '5-0', event: 'score', data: 'a b c', publishedAt: undefined }, 'without a chain (spaces in the data only)')
  const malformed = ['5-0 k3Jx.2', '5-0 - k3Jx.1', '5-0 k3Jx.2 k3Jx.1', '5-0 k3Jx.2 4-1 k3Jx.1 more', '5-0 k3Jx.2 - k3Jx.1', ' k3Jx.2 4-1 k3Jx.1',
    'x-0 k3Jx.2 4-1 k3Jx.1', '5-0 k3Jx 4-1 k3Jx.1', '5-0 k3Jx.2 4-1 k 3', '5-0 k3Jx.2 4 k3Jx.1', '5-0 k3Jx.2 k3Jx.1 4-1', '5-0 k3Jx.2 4-1  k3Jx.1']
  for (const line of malformed) {
    t.equal(decode(`${line}\n\nscore\n{}`, NOW), undefined, `${JSON.stringify(line)}: dropped`)
  }
})
