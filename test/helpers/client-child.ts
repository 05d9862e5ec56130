/**
 * A process that opens the typed client on argv[2] and must then exit by itself: a
 * timer or a read left behind would keep it alive.
 * - mode `close-on-connecting` (the default): closes the client from the status listener
 *   as soon as the first drop sends it back to `'connecting'` (a reconnect timer left
 *   running would hold the process for the huge delay);
 * - mode `end`: waits for the server's `sse:end` (the liveness timer, 45 s by default,
 *   and the body's read must not outlive the stream).
 */
import { createClient } from '../../lib/client.js'

const [url, mode = 'close-on-connecting'] = process.argv.slice(2)
const client = createClient(url, { transport: 'fetch', reconnectDelayMs: 600_000, maxReconnectDelayMs: 600_000 })
if (mode === 'end') {
  client.onEnd(() => process.stdout.write('ended\n'))
} else {
  let wasOpen = false
  client.onStatus((status) => {
    if (status === 'open') wasOpen = true
    if (status === 'connecting' && wasOpen) {
      client.close()
      process.stdout.write('closed\n')
    }
  })
}
