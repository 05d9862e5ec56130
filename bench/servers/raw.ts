/**
 * Contender `raw`: node:http alone. Each event is serialized once into a Buffer and
 * written to every socket; the harness waits for `drain`. No framework, no
 * validation: the limit of this machine, and the baseline of every ratio. In the
 * streams scenario, stream `i` (in the order streams opened) stands for channel `i`.
 */
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { heartbeatMs, runContender } from './harness.js'
import { encodeFrame, SSE_HEADERS, startHeartbeat } from './wire.js'

const responses = new Set<ServerResponse>()
/** Every stream in the order it opened: the streams scenario writes channel `i` to stream `i`. */
const opened: ServerResponse[] = []
startHeartbeat(responses, heartbeatMs())

runContender({
  listen: (track) => new Promise((resolve, reject) => {
    const server = createServer((request, response) => {
      if (request.url !== '/sse') {
        response.writeHead(404).end()
        return
      }
      response.writeHead(200, SSE_HEADERS)
      response.flushHeaders()
      responses.add(response)
      opened.push(response)
      response.once('close', () => responses.delete(response))
      track(response)
    })
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port))
  }),
  publish: (kind, data) => {
    const frame = encodeFrame(kind, data)
    for (const response of responses) response.write(frame)
  },
  // The in-memory floor of the streams scenario: the frame written by hand to one socket.
  publishTo: (channel, kind, data) => {
    opened[channel].write(encodeFrame(kind, data))
  }
})
