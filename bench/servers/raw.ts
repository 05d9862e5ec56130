/**
 * Contender `raw`: node:http alone. Each event is serialized once into a Buffer and
 * written to every socket; the harness waits for `drain`. No framework, no
 * validation: the limit of this machine, and the baseline of every ratio.
 */
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { heartbeatMs, runContender } from './harness.js'
import { encodeFrame, SSE_HEADERS, startHeartbeat } from './wire.js'

const responses = new Set<ServerResponse>()
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
      response.once('close', () => responses.delete(response))
      track(response)
    })
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port))
  }),
  publish: (kind, data) => {
    const frame = encodeFrame(kind, data)
    for (const response of responses) response.write(frame)
  }
})
