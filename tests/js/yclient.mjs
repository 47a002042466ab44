// Real Yjs clients (yjs 13 + y-websocket's WebsocketProvider) driven by the Python tests.
// Protocol: one JSON command per stdin line, one JSON reply per stdout line, matched by "id".
//   {"id": 1, "op": "open", "client": "a", "url": "ws://127.0.0.1:PORT", "room": "doc"}
// Ops: open, insert, insert_repeated, delete, text, text_length, wait_length, state, apply, awareness, peers, disconnect, connect,
// kill (drop the socket without a close frame and stay away), wait_text, wait_synced, close.
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { closeClient, named, serve, waitUntil } from './jsonlines.mjs'

const TEXT = 'content'
const clients = new Map()

const get = (name) => named(clients, name)

const ops = {
  async open ({ client, url, room, params }) {
    const doc = new Y.Doc()
    const provider = new WebsocketProvider(url, room, doc, {
      WebSocketPolyfill: WebSocket,
      disableBc: true,
      params: params || {},
      maxBackoffTime: 500
    })
    const closes = []
    provider.on('connection-close', (event) => {
      if (event) closes.push({ code: event.code, reason: String(event.reason || '') })
    })
    clients.set(client, { doc, provider, closes })
    await waitUntil(() => provider.synced, 10000, `${client} synced`)
    return { clientID: doc.clientID }
  },
  async insert ({ client, index, text }) {
    get(client).doc.getText(TEXT).insert(index, text)
    return null
  },
  async insert_repeated ({ client, index, text, count }) {
    get(client).doc.getText(TEXT).insert(index, text.repeat(count))
    return null
  },
  async delete ({ client, index, length }) {
    get(client).doc.getText(TEXT).delete(index, length)
    return null
  },
  async text ({ client }) {
    return get(client).doc.getText(TEXT).toString()
  },
  async text_length ({ client }) {
    return get(client).doc.getText(TEXT).length
  },
  async wait_length ({ client, length, within }) {
    const ytext = get(client).doc.getText(TEXT)
    await waitUntil(() => ytext.length === length, within || 10000, `length of ${client}`)
    return null
  },
  async state ({ client }) {
    return Buffer.from(Y.encodeStateAsUpdate(get(client).doc)).toString('base64')
  },
  async apply ({ client, update }) {
    Y.applyUpdate(get(client).doc, new Uint8Array(Buffer.from(update, 'base64')))
    return null
  },
  async awareness ({ client, state }) {
    get(client).provider.awareness.setLocalState(state)
    return null
  },
  async peers ({ client }) {
    const { provider } = get(client)
    const states = {}
    for (const [id, state] of provider.awareness.getStates()) {
      if (id !== provider.awareness.clientID) states[id] = state
    }
    return states
  },
  async disconnect ({ client }) {
    get(client).provider.disconnect()
    return null
  },
  async connect ({ client }) {
    const { provider } = get(client)
    provider.connect()
    await waitUntil(() => provider.wsconnected && provider.synced, 10000, `${client} reconnected`)
    return null
  },
  async kill ({ client }) {
    const { provider } = get(client)
    provider.shouldConnect = false
    provider.ws.terminate()
    return null
  },
  async wait_text ({ client, text, timeout }) {
    const ytext = get(client).doc.getText(TEXT)
    await waitUntil(() => ytext.toString() === text, timeout || 10000, `text of ${client}`)
    return null
  },
  async wait_synced ({ client, timeout }) {
    const { provider } = get(client)
    await waitUntil(() => provider.wsconnected && provider.synced, timeout || 10000, `${client} synced`)
    return null
  },
  async closes ({ client }) {
    return get(client).closes
  },
  async close ({ client }) {
    return closeClient(clients, client)
  }
}

serve(ops, () => {
  for (const name of [...clients.keys()]) closeClient(clients, name)
})
