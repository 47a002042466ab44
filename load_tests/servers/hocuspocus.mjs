#!/usr/bin/env node
// Hocuspocus 3.4 on loopback, for the side-by-side benchmarks.
//
// Hocuspocus's own Server ignores its `address` option in 3.4 and listens on every
// interface, so this launcher builds the HTTP listener itself on --host and hands
// each upgraded socket to a bare Hocuspocus instance (no extensions, no
// persistence: the same in-memory set-up as the other servers). GET answers 200.
//
//   node load_tests/servers/hocuspocus.mjs --host 127.0.0.1 --port 8765

import http from 'node:http'
import { parseArgs } from 'node:util'
import { Hocuspocus } from '@hocuspocus/server'
import { WebSocketServer } from 'ws'

const { values: opts } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' }
  }
})
if (!opts.port) {
  process.stderr.write('usage: node hocuspocus.mjs --host 127.0.0.1 --port PORT\n')
  process.exit(2)
}

const hocuspocus = new Hocuspocus({ quiet: true })
const wss = new WebSocketServer({ noServer: true })
const server = http.createServer((_request, response) => {
  response.writeHead(200, { 'Content-Type': 'text/plain' })
  response.end('ok')
})
server.on('upgrade', (request, socket, head) => {
  wss.handleUpgrade(request, socket, head, ws => {
    ws.on('error', err => process.stderr.write(`socket error: ${err.message}\n`))
    hocuspocus.handleConnection(ws, request)
  })
})

const shutdown = () => {
  hocuspocus.closeConnections()
  wss.close()
  server.close(() => process.exit(0))
  setTimeout(() => process.exit(0), 2000).unref()
}
process.on('SIGTERM', shutdown)
process.on('SIGINT', shutdown)

server.listen(Number(opts.port), opts.host, () => {
  process.stdout.write(`hocuspocus ${opts.host}:${opts.port}\n`)
})
