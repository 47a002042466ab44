// Remote cursors and selections in CodeMirror, labelled by name, agents marked with a robot.
// Reads the presence convention (presence.ts): `cursor` (Yjs relative positions, as
// y-codemirror.next writes them) or, for agents without Yjs positions, `nova` (code points).
// In edit mode it also publishes the local selection as `cursor`.
import { Annotation, type Extension, type Range, type Text } from '@codemirror/state'
import {
  Decoration, type DecorationSet, EditorView, ViewPlugin, type ViewUpdate, WidgetType
} from '@codemirror/view'
import * as Y from 'yjs'
import type { Awareness } from 'y-protocols/awareness'
import { userOf, type UserInfo } from './presence.js'

const awarenessChanged = Annotation.define<boolean>()

class CaretWidget extends WidgetType {
  constructor (readonly user: UserInfo) { super() }

  override eq (other: CaretWidget): boolean {
    return other.user.name === this.user.name && other.user.color === this.user.color &&
      other.user.kind === this.user.kind
  }

  toDOM (): HTMLElement {
    const caret = document.createElement('span')
    caret.className = 'nova-caret'
    caret.dataset.kind = this.user.kind
    caret.style.borderLeftColor = this.user.color
    const label = document.createElement('span')
    label.className = 'nova-caret-label'
    label.style.backgroundColor = this.user.color
    label.textContent = this.user.name
    caret.append('\u2060', label, '\u2060')
    return caret
  }

  override ignoreEvent (): boolean { return true }
}

/** A code-point offset as a UTF-16 offset into the editor's text (clamped to its length). */
export function codePointsToOffset (text: Text, codePoints: number): number {
  let offset = 0
  let seen = 0
  for (const chunk of text.iter()) {
    for (const char of chunk) {
      if (seen === codePoints) return offset
      seen += 1
      offset += char.length
    }
  }
  return offset
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null
}

/** The [anchor, head] of a remote state in editor offsets, or null when it has none here. */
function rangeOf (state: Record<string, unknown>, ytext: Y.Text, doc: Text): [number, number] | null {
  const cursor = state.cursor
  if (isRecord(cursor) && cursor.anchor != null && cursor.head != null) {
    try {
      const ydoc = ytext.doc as Y.Doc
      const anchor = Y.createAbsolutePositionFromRelativePosition(Y.createRelativePositionFromJSON(cursor.anchor), ydoc)
      const head = Y.createAbsolutePositionFromRelativePosition(Y.createRelativePositionFromJSON(cursor.head), ydoc)
      if (anchor === null || head === null || anchor.type !== ytext || head.type !== ytext) return null
      return [Math.min(anchor.index, doc.length), Math.min(head.index, doc.length)]
    } catch {
      return null // a malformed position from some client: show no cursor for it
    }
  }
  const nova = state.nova
  if (isRecord(nova) && typeof nova.index === 'number' && nova.index >= 0) {
    const length = typeof nova.length === 'number' && nova.length > 0 ? nova.length : 0
    const from = codePointsToOffset(doc, nova.index)
    const to = length > 0 ? codePointsToOffset(doc, nova.index + length) : from
    return [from, to]
  }
  return null
}

export function remoteCursors (ytext: Y.Text, awareness: Awareness, publishLocal: boolean): Extension {
  const plugin = ViewPlugin.fromClass(class {
    decorations: DecorationSet = Decoration.none
    private lastPublished = ''
    private readonly listener: (change: { added: number[], updated: number[], removed: number[] }) => void

    constructor (readonly view: EditorView) {
      this.listener = ({ added, updated, removed }) => {
        const remote = [...added, ...updated, ...removed].some((id) => id !== awareness.clientID)
        if (remote) queueMicrotask(() => view.dispatch({ annotations: awarenessChanged.of(true) }))
      }
      awareness.on('change', this.listener)
      this.decorations = this.build(view.state.doc)
    }

    update (update: ViewUpdate): void {
      if (publishLocal && update.view.hasFocus && (update.selectionSet || update.docChanged || update.focusChanged)) {
        this.publish(update)
      }
      const poked = update.transactions.some((tr) => tr.annotation(awarenessChanged) === true)
      if (poked || update.docChanged) this.decorations = this.build(update.state.doc)
    }

    publish (update: ViewUpdate): void {
      const selection = update.state.selection.main
      const cursor = {
        anchor: Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(ytext, selection.anchor)),
        head: Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(ytext, selection.head))
      }
      const encoded = JSON.stringify(cursor)
      if (encoded !== this.lastPublished) {
        this.lastPublished = encoded
        awareness.setLocalStateField('cursor', cursor)
      }
    }

    build (doc: Text): DecorationSet {
      const ranges: Range<Decoration>[] = []
      awareness.getStates().forEach((state, clientId) => {
        if (clientId === awareness.clientID) return
        const range = rangeOf(state, ytext, doc)
        if (range === null) return
        const [anchor, head] = range
        const user = userOf(state)
        const from = Math.min(anchor, head)
        const to = Math.max(anchor, head)
        if (from < to) {
          ranges.push(Decoration.mark({
            class: 'nova-remote-selection',
            attributes: { style: `background-color: ${user.color}33` }
          }).range(from, to))
        }
        ranges.push(Decoration.widget({ widget: new CaretWidget(user), side: head > anchor ? -1 : 1 }).range(head))
      })
      return Decoration.set(ranges, true)
    }

    destroy (): void {
      awareness.off('change', this.listener)
    }
  }, { decorations: (value) => value.decorations })
  // Room above the first line for its carets' name labels.
  return [plugin, EditorView.theme({ '.cm-content': { paddingTop: '1.3em' } })]
}
