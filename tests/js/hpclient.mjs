// Real Hocuspocus clients (@hocuspocus/provider 3.x or 4.x + yjs) driven by the Python tests.
// Usage: node hpclient.mjs 3|4  (4.x needs Node >= 22). Same JSON-lines protocol as yclient.mjs.
// A "socket" is one HocuspocusProviderWebsocket; a "client" is one HocuspocusProvider (one
// document) attached to a socket, so many documents share one WebSocket.
// Ops: socket, open, ws_open (a y-websocket provider instead), write_shape, insert, delete,
// text, status, awareness, peers, stateless, received, raw, kill, wait_text, close.
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { closeClient, named, serve, waitUntil } from './jsonlines.mjs'

const version = process.argv[2] || '3'
const { HocuspocusProvider, HocuspocusProviderWebsocket } = version === '4'
  ? await import('hocuspocus-provider-4')
  : await import('@hocuspocus/provider')

const TEXT = 'content'
const sockets = new Map()
const clients = new Map()

const get = named

// Each editor binding keeps its text in its own root type and shape; these write the same
// shared types the bindings write (names as the bindings' examples use them).
const shapes = {
  codemirror (doc, text) { doc.getText('codemirror').insert(0, text) }, // y-codemirror.next
  monaco (doc, text) { doc.getText('monaco').insert(0, text) }, // y-monaco
  quill (doc, text) { // y-quill: a formatted Y.Text; the first sentence is a bold header line
    const ytext = doc.getText('quill')
    const [first, ...rest] = text.split('. ')
    ytext.insert(0, first, { bold: true })
    ytext.insert(ytext.length, '\n', { header: 1 })
    ytext.insert(ytext.length, rest.join('. ') + '\n')
  },
  prosemirror (doc, text, field) { // y-prosemirror / Tiptap: a Y.XmlFragment of block nodes
    const fragment = doc.getXmlFragment(field || 'default')
    const sentences = text.split('. ')
    const heading = new Y.XmlElement('heading')
    heading.setAttribute('level', '1')
    const title = new Y.XmlText()
    title.insert(0, sentences[0], { bold: true })
    heading.insert(0, [title])
    const blocks = [heading]
    for (const sentence of sentences.slice(1)) {
      const paragraph = new Y.XmlElement('paragraph')
      const body = new Y.XmlText()
      body.insert(0, sentence)
      paragraph.insert(0, [body])
      blocks.push(paragraph)
    }
    fragment.insert(0, blocks)
  }
}

const ops = {
  async ws_open ({ client, url, room, params }) {
    const doc = new Y.Doc()
    const provider = new WebsocketProvider(url, room, doc, { WebSocketPolyfill: WebSocket, disableBc: true, params: params || {} })
    clients.set(client, { doc, provider, state: { closes: [], stateless: [], authFailed: [], scope: null } })
    await waitUntil(() => provider.synced, 10000, `${client} synced`)
    return { clientID: doc.clientID }
  },
  async write_shape ({ client, shape, text, field }) {
    const { doc } = get(clients, client)
    doc.transact(() => shapes[shape](doc, text, field))
    return null
  },
  async socket ({ socket, url }) {
    const ws = new HocuspocusProviderWebsocket({ url, WebSocketPolyfill: WebSocket, delay: 100, minDelay: 100, maxDelay: 500 })
    sockets.set(socket, ws)
    return null
  },
  async open ({ client, socket, name, token, wait, sessionAwareness }) {
    const doc = new Y.Doc()
    const state = { authFailed: [], closes: [], stateless: [], scope: null }
    const provider = new HocuspocusProvider({
      websocketProvider: get(sockets, socket),
      name,
      document: doc,
      token: token ?? null,
      ...(sessionAwareness ? { sessionAwareness: true } : {}), // 4.x: several sessions of one document per socket
      onAuthenticationFailed: ({ reason }) => state.authFailed.push(reason),
      onAuthenticated: ({ scope }) => { state.scope = scope ?? null },
      onStateless: ({ payload }) => state.stateless.push(payload),
      onClose: ({ event }) => state.closes.push({ code: event.code, reason: String(event.reason || '') })
    })
    provider.attach()
    clients.set(client, { doc, provider, state })
    if (wait !== false) await waitUntil(() => provider.synced, 10000, `${client} synced`)
    return { clientID: doc.clientID }
  },
  async insert ({ client, index, text }) {
    get(clients, client).doc.getText(TEXT).insert(index, text)
    return null
  },
  async delete ({ client, index, length }) {
    get(clients, client).doc.getText(TEXT).delete(index, length)
    return null
  },
  async text ({ client }) {
    return get(clients, client).doc.getText(TEXT).toString()
  },
  async status ({ client }) {
    const { provider, state } = get(clients, client)
    return {
      synced: provider.synced,
      authenticated: provider.isAuthenticated,
      scope: state.scope,
      unsynced: provider.unsyncedChanges,
      authFailed: state.authFailed,
      closes: state.closes
    }
  },
  async wait_acknowledged ({ client, timeout }) {
    const { provider } = get(clients, client)
    await waitUntil(() => provider.unsyncedChanges === 0, timeout || 10000, `${client} acknowledged`)
    return null
  },
  async awareness ({ client, state }) {
    get(clients, client).provider.awareness.setLocalState(state)
    return null
  },
  async peers ({ client }) {
    const { provider } = get(clients, client)
    const states = {}
    for (const [id, state] of provider.awareness.getStates()) {
      if (id !== provider.awareness.clientID) states[id] = state
    }
    return states
  },
  async stateless ({ client, payload }) {
    get(clients, client).provider.sendStateless(payload)
    return null
  },
  async received ({ client }) {
    return get(clients, client).state.stateless
  },
  async raw ({ socket, bytes }) {
    get(sockets, socket).webSocket.send(Buffer.from(bytes, 'base64'))
    return null
  },
  async kill ({ socket }) {
    // Drop the socket without a close frame and stay away.
    const ws = get(sockets, socket)
    ws.shouldConnect = false
    ws.webSocket.terminate()
    return null
  },
  async wait_text ({ client, text, timeout }) {
    const ytext = get(clients, client).doc.getText(TEXT)
    await waitUntil(() => ytext.toString() === text, timeout || 10000, `text of ${client}`)
    return null
  },
  async wait_text_field ({ client, field, text, timeout }) {
    const ytext = get(clients, client).doc.getText(field)
    await waitUntil(() => ytext.toString() === text, timeout || 10000, `text of ${client}.${field}`)
    return null
  },
  async close ({ client }) {
    return closeClient(clients, client)
  }
}

serve(ops, () => {
  for (const name of [...clients.keys()]) closeClient(clients, name)
  for (const socket of sockets.values()) socket.destroy()
})
