/**
 * Redis Cluster hash slots, as Redis computes them (CRC16/XMODEM of the key, or of
 * its hash tag: the part between the first `{` and the next `}` when not empty).
 * A channel's stream and shard channel have one name (keys.ts), so one slot.
 */

/** Slots in a Redis Cluster. */
const SLOTS = 16384

const TABLE = ((): Uint16Array => {
  const table = new Uint16Array(256)
  for (let i = 0; i < 256; i++) {
    let crc = i << 8
    for (let bit = 0; bit < 8; bit++) crc = (crc & 0x8000) !== 0 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
    table[i] = crc
  }
  return table
})()

function crc16 (bytes: Uint8Array): number {
  let crc = 0
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ byte) & 0xff]
  return crc
}

/**
 * The hash slot of `key`.
 *
 * @example
 * slotOf('{sse:scores}') === slotOf('sse:scores') // true
 */
export function slotOf (key: string): number {
  let hashed = key
  const open = key.indexOf('{')
  if (open !== -1) {
    const close = key.indexOf('}', open + 1)
    if (close > open + 1) hashed = key.slice(open + 1, close)
  }
  return crc16(Buffer.from(hashed)) % SLOTS
}
