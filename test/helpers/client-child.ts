/**
 * A process that opens the typed client on argv[2], and closes it from the status
 * listener as soon as the first drop sends it back to `'connecting'`. It must then exit
 * by itself: a reconnect timer left running would keep it alive for the (huge) delay.
 */
import { createClient } from '../../lib/client.js'

const client = createClient(process.argv[2], { transport: 'fetch', reconnectDelayMs: 600_000, maxReconnectDelayMs: 600_000 })
let wasOpen = false
client.onStatus((status) => {
  if (status === 'open') wasOpen = true
  if (status === 'connecting' && wasOpen) {
    client.close()
    process.stdout.write('closed\n')
  }
})
