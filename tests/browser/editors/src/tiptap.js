// A Tiptap editor with its collaboration extensions on a HocuspocusProvider: what a Tiptap app
// runs, pointed at the hub. Settings come from the page URL:
//   tiptap.html?hub=ws://127.0.0.1:PORT&doc=NAME&name=Ada&token=...
// window.tiptap exposes the live objects to the tests.
import { Editor } from '@tiptap/core'
import Collaboration from '@tiptap/extension-collaboration'
import CollaborationCaret from '@tiptap/extension-collaboration-caret'
import StarterKit from '@tiptap/starter-kit'
import { HocuspocusProvider } from '@hocuspocus/provider'
import * as Y from 'yjs'

const params = new URLSearchParams(window.location.search)
const name = params.get('name') || 'Guest'
const state = { scope: null, denied: [], closes: [] }
const ydoc = new Y.Doc()
const provider = new HocuspocusProvider({
  url: params.get('hub'),
  name: params.get('doc'),
  document: ydoc,
  token: params.get('token') || null,
  onAuthenticated: ({ scope }) => { state.scope = scope },
  onAuthenticationFailed: ({ reason }) => { state.denied.push(reason) },
  onClose: ({ event }) => { state.closes.push({ code: event.code, reason: String(event.reason || '') }) }
})
const editor = new Editor({
  element: document.getElementById('editor'),
  extensions: [
    StarterKit.configure({ undoRedo: false }), // the collaboration extension brings its own history
    Collaboration.configure({ document: ydoc }),
    CollaborationCaret.configure({ provider, user: { name, color: '#2563eb' } })
  ]
})

window.tiptap = {
  editor,
  provider,
  ydoc,
  state,
  text: () => editor.getText({ blockSeparator: '\n' }),
  synced: () => provider.synced,
  peers: () => [...provider.awareness.getStates().entries()]
    .filter(([id]) => id !== ydoc.clientID)
    .map(([, s]) => (s.user && s.user.name) || null)
}
