// The JSON-lines driver shared by the test clients (yclient.mjs, hpclient.mjs): one JSON
// command per stdin line, one JSON reply per stdout line, matched by "id".
//   {"id": 1, "op": "open", ...}  ->  {"id": 1, "ok": true, "result": ...} or {"id": 1, "ok": false, "error": "..."}
import readline from 'node:readline'

export const reply = (id, ok, payload) => {
  process.stdout.write(JSON.stringify(ok ? { id, ok, result: payload } : { id, ok, error: payload }) + '\n')
}

// Resolves with the predicate's first truthy value; rejects after timeoutMs.
export const waitUntil = (predicate, timeoutMs, what) => new Promise((resolve, reject) => {
  const started = Date.now()
  const tick = () => {
    let value
    try { value = predicate() } catch (err) { reject(err); return }
    if (value) { resolve(value); return }
    if (Date.now() - started > timeoutMs) { reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)); return }
    setTimeout(tick, 5)
  }
  tick()
})

export const named = (map, name) => {
  const value = map.get(name)
  if (!value) throw new Error(`no such name ${name}`)
  return value
}

// Close one named client (a provider and its document) and forget it.
export const closeClient = (clients, name) => {
  const { provider, doc } = named(clients, name)
  provider.destroy()
  doc.destroy()
  clients.delete(name)
  return null
}

// Run `ops[command.op](command)` for each line; `onEnd` cleans up when stdin closes.
export const serve = (ops, onEnd) => {
  const lines = readline.createInterface({ input: process.stdin })
  lines.on('line', async (line) => {
    if (!line.trim()) return
    let command
    try { command = JSON.parse(line) } catch (err) { reply(null, false, `bad json: ${err.message}`); return }
    const handler = ops[command.op]
    if (!handler) { reply(command.id, false, `unknown op ${command.op}`); return }
    try {
      reply(command.id, true, await handler(command))
    } catch (err) {
      reply(command.id, false, String(err && err.message ? err.message : err))
    }
  })
  lines.on('close', () => {
    onEnd()
    process.exit(0)
  })
}
