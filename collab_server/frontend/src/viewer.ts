// The document page: live text (CodeMirror 6 bound to a root Y.Text, "content" unless the link
// or the document says otherwise), remote cursors, who is present, connection state, recent
// activity and history. A root that is not a Y.Text (a Tiptap/ProseMirror XmlFragment, a map,
// an array) is shown read-only as the plain text the hub renders, refreshed as it changes.
import { defaultKeymap, indentWithTab } from '@codemirror/commands'
import { bracketMatching, defaultHighlightStyle, syntaxHighlighting } from '@codemirror/language'
import { highlightSelectionMatches, searchKeymap } from '@codemirror/search'
import { Compartment, EditorState, type Extension } from '@codemirror/state'
import {
  drawSelection, EditorView, highlightActiveLine, highlightActiveLineGutter, keymap, lineNumbers,
  type ViewUpdate
} from '@codemirror/view'
import { yCollab, yUndoManagerKeymap } from 'y-codemirror.next'
import type * as decoding from 'lib0/decoding'
import { readAuthMessage } from 'y-protocols/auth'
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'
import { Api, ApiError, type FieldInfo, type Version } from './api.js'
import { documentPath, type PageConfig, readConfig } from './config.js'
import { type ConnectionState, ConnectionIndicator, shouldReconnect } from './connection.js'
import { remoteCursors } from './cursors.js'
import { clockTime } from './format.js'
import { languageFor } from './language.js'
import { ActivityPanel, HistoryPanel } from './panels.js'
import { colorFor, PresenceList } from './presence.js'

/** The root Y.Text that Nova's clients edit. */
const TEXT_FIELD = 'content'
/** How often a non-text field's rendering is fetched again while it changes. */
const RENDERED_REFRESH_MS = 250
const ACTIVITY_REFRESH_MS = 3000
const HISTORY_REFRESH_MS = 5000
/** Ask the hub for missing updates this often; it also keeps y-websocket's idle watchdog fed. */
const RESYNC_INTERVAL_MS = 10000
const NAME_KEY = 'nova.viewer.name'
/** y-protocols message type of auth messages (the hub says "permission denied: read-only"). */
const MESSAGE_AUTH = 2

function byId<T extends HTMLElement = HTMLElement> (id: string): T {
  const element = document.getElementById(id)
  if (element === null) throw new Error(`page is missing #${id}`)
  return element as T
}

function displayName (config: PageConfig): string {
  if (config.name !== null) return config.name
  let stored: string | null = null
  try { stored = window.localStorage.getItem(NAME_KEY) } catch { /* storage disabled */ }
  if (stored !== null && stored !== '') return stored
  const generated = `Guest ${Math.floor(1000 + Math.random() * 9000)}`
  try { window.localStorage.setItem(NAME_KEY, generated) } catch { /* storage disabled */ }
  return generated
}

function baseExtensions (language: Extension): Extension[] {
  return [
    lineNumbers(),
    highlightActiveLineGutter(),
    drawSelection(),
    bracketMatching(),
    highlightSelectionMatches(),
    syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
    language,
    EditorView.lineWrapping
  ]
}

function main (): void {
  const config = readConfig()
  const api = new Api(config.token)
  let editing = config.mode === 'edit'
  const access = new Compartment()
  const accessExtensions = (canEdit: boolean): Extension => [
    EditorState.readOnly.of(!canEdit),
    EditorView.editable.of(canEdit)
  ]
  const name = displayName(config)
  const language = languageFor(config.document)

  const ydoc = new Y.Doc()
  // Chosen once synced (chooseField): which root is shown, and whether it is a Y.Text.
  let field = config.field ?? TEXT_FIELD
  let ytext: Y.Text | null = null
  let rendered = ''
  const params: Record<string, string> = { actor: name }
  if (config.token !== null) params.token = config.token
  const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws'
  const provider = new WebsocketProvider(`${scheme}://${window.location.host}`, documentPath(config.document), ydoc, {
    params,
    disableBc: true,
    resyncInterval: RESYNC_INTERVAL_MS,
    shouldReconnect
  })
  const awareness = provider.awareness
  awareness.setLocalState({
    user: { name, color: colorFor(ydoc.clientID), kind: 'human' },
    viewer: { mode: config.mode }
  })

  const metrics: { firstSyncMs: number | null, loadToSyncedMs: number | null } = { firstSyncMs: null, loadToSyncedMs: null }
  const listeners = new Set<(update: ViewUpdate) => void>()
  let view: EditorView | null = null
  let mounting = false
  let previewView: EditorView | null = null

  const stats = byId('doc-stats')
  let statsQueued = false
  const showStats = (): void => {
    if (statsQueued) return
    statsQueued = true
    requestAnimationFrame(() => {
      statsQueued = false
      const doc = view?.state.doc
      if (doc === undefined) return
      const synced = metrics.loadToSyncedMs !== null ? ` · synced in ${Math.round(metrics.loadToSyncedMs)} ms` : ''
      const shownField = field === TEXT_FIELD ? '' : ` · field ${field}${ytext === null ? ' (read-only text)' : ''}`
      stats.textContent = `${language.label}${shownField} · ${doc.length.toLocaleString()} characters · ${doc.lines.toLocaleString()} lines${synced}`
    })
  }

  const chooseField = async (): Promise<FieldInfo['kind']> => {
    const answer = await api.fieldText(config.document, config.field)
    const names = answer.fields.map((f) => f.name)
    if (config.field === null && !names.includes(TEXT_FIELD) && answer.fields.length > 0) {
      // Not a Nova document: show its first text field (else its first field of any kind).
      field = (answer.fields.find((f) => f.kind === 'text') ?? answer.fields[0]).name
      const chosen = await api.fieldText(config.document, field)
      rendered = chosen.text
      return chosen.kind
    }
    rendered = answer.text
    return answer.kind
  }

  // The document's fields, for switching between them (a link with ?field=).
  const listFields = (): void => {
    api.fieldText(config.document, field).then((answer) => {
      if (answer.fields.length < 2 && answer.fields.every((f) => f.name === field)) return
      const select = byId<HTMLSelectElement>('field-select')
      select.replaceChildren(...answer.fields.map((f) => {
        const option = document.createElement('option')
        option.value = f.name
        option.textContent = f.kind === 'text' ? f.name : `${f.name} (${f.kind}, read-only)`
        option.selected = f.name === field
        return option
      }))
      select.hidden = false
      select.addEventListener('change', () => {
        const url = new URL(window.location.href)
        url.searchParams.set('field', select.value)
        window.location.assign(url.toString())
      })
    }).catch(() => { /* the list is a convenience: the page works without it */ })
  }

  const mountRendered = (): void => {
    // Rich text, maps and arrays: read-only plain text, fetched again (throttled) on every change.
    editing = false
    byId('preview-restore').hidden = true // only a Y.Text can be restored to an old version
    let timer: number | null = null
    const shown = new EditorView({
      state: EditorState.create({
        doc: rendered,
        extensions: [...baseExtensions(language.extension), EditorState.readOnly.of(true), EditorView.editable.of(false),
          EditorView.contentAttributes.of({ 'aria-label': `${config.document} ${field} (read-only text)` })]
      })
    })
    view = shown
    byId('editor').replaceChildren(shown.dom)
    ydoc.on('update', () => {
      if (timer !== null) return
      timer = window.setTimeout(() => {
        timer = null
        api.fieldText(config.document, field).then((answer) => {
          rendered = answer.text
          shown.dispatch({ changes: { from: 0, to: shown.state.doc.length, insert: rendered } })
          showStats()
        }).catch(() => { /* the next change retries */ })
      }, RENDERED_REFRESH_MS)
    })
    document.body.dataset.field = field
    document.body.dataset.synced = 'true'
    metrics.loadToSyncedMs = performance.now()
    showStats()
    listFields()
  }

  const mountEditor = (): void => {
    const bound = ydoc.getText(field)
    ytext = bound
    const collab = yCollab(bound, null, { undoManager: editing ? new Y.UndoManager(bound) : false })
    const extensions: Extension[] = [
      ...baseExtensions(language.extension),
      collab,
      remoteCursors(bound, awareness, editing),
      access.of(accessExtensions(editing)),
      EditorView.contentAttributes.of({ 'aria-label': `${config.document} (${editing ? 'editable' : 'read-only'})` }),
      EditorView.updateListener.of((update) => {
        if (update.docChanged) showStats()
        for (const listener of listeners) listener(update)
      })
    ]
    if (editing) {
      extensions.push(highlightActiveLine(), keymap.of([...yUndoManagerKeymap, ...searchKeymap, ...defaultKeymap, indentWithTab]))
    } else {
      extensions.push(keymap.of([...searchKeymap]))
    }
    view = new EditorView({ state: EditorState.create({ doc: bound.toString(), extensions }) })
    byId('editor').replaceChildren(view.dom)
    document.body.dataset.field = field
    listFields()
    requestAnimationFrame(() => {
      metrics.loadToSyncedMs = performance.now()
      document.body.dataset.synced = 'true'
      showStats()
    })
  }

  const notice = byId('notice')
  const say = (message: string, kind: 'info' | 'error' = 'info'): void => {
    notice.textContent = message
    notice.dataset.kind = kind
    notice.hidden = false
  }

  // The hub decides what a link may do (tokens, see the security section of the README): when
  // it answers an editing page with "permission denied", the page turns read-only and says so.
  provider.messageHandlers[MESSAGE_AUTH] = (_encoder: unknown, decoder: decoding.Decoder) => {
    readAuthMessage(decoder, ydoc, (_doc: Y.Doc, reason: string) => {
      if (!editing) return
      editing = false
      view?.dispatch({ effects: access.reconfigure(accessExtensions(false)) })
      document.body.dataset.mode = 'view'
      byId('preview-restore').hidden = true
      const badge = document.querySelector<HTMLElement>('.mode-badge')
      if (badge !== null) {
        badge.dataset.mode = 'view'
        badge.textContent = 'View only'
      }
      say(`Read-only: the hub does not let this link edit (${reason}). Your changes are not saved.`, 'error')
    })
  }

  provider.on('sync', (synced: boolean) => {
    if (!synced) return
    if (metrics.firstSyncMs === null) metrics.firstSyncMs = performance.now()
    if (view !== null || mounting) return
    mounting = true
    // A Nova document ("content" or the link's field, a Y.Text) mounts at once; anything else
    // asks the hub what the document's fields are first.
    const known = ydoc.share.get(field)
    if (known instanceof Y.Text || (config.field === null && ydoc.share.size === 0)) {
      mountEditor()
      return
    }
    chooseField().then((kind) => {
      if (kind === 'text') mountEditor()
      else mountRendered()
    }).catch(() => { mountEditor() })
  })

  const connection = new ConnectionIndicator(byId('connection'), provider, (state: ConnectionState) => {
    document.body.dataset.connection = state
  })
  new PresenceList(byId('presence'), byId('presence-count'), awareness)

  const activity = new ActivityPanel(byId('activity'), api, config.document, ACTIVITY_REFRESH_MS)
  activity.start()

  // -- history: a preview of a past version in place of the live text ------------------------
  const preview = byId('preview')
  const previewTitle = byId('preview-title')
  const restoreButton = byId<HTMLButtonElement>('preview-restore')
  let previewed: Version | null = null

  const closePreview = (): void => {
    previewed = null
    preview.hidden = true
    byId('editor').hidden = false
    history.clearSelection()
    view?.requestMeasure()
  }

  const history = new HistoryPanel(byId('history'), api, config.document, {
    field: () => field,
    preview: (version, text) => {
      previewed = version
      const actors = version.actors.length > 0 ? ` by ${version.actors.join(', ')}` : ''
      previewTitle.textContent = `Version #${version.seq} · ${clockTime(version.timestamp)}${actors}`
      const state = EditorState.create({
        doc: text,
        extensions: [...baseExtensions(languageFor(config.document).extension), EditorState.readOnly.of(true), EditorView.editable.of(false)]
      })
      if (previewView === null) {
        previewView = new EditorView({ state })
        byId('preview-editor').replaceChildren(previewView.dom)
      } else {
        previewView.setState(state)
      }
      preview.hidden = false
      byId('editor').hidden = true
    }
  }, HISTORY_REFRESH_MS)

  byId('preview-back').addEventListener('click', closePreview)
  restoreButton.hidden = !editing
  restoreButton.addEventListener('click', () => {
    const version = previewed
    if (version === null) return
    restoreButton.disabled = true
    api.restore(config.document, version.seq, name, field).then((changed) => {
      closePreview()
      say(changed ? `Restored version #${version.seq}; everyone sees it now.` : `The text already equals version #${version.seq}.`)
      void activity.refresh()
      void history.refresh()
    }).catch((error: unknown) => {
      say(error instanceof ApiError ? `Restore failed: ${error.message}` : `Restore failed: ${String(error)}`, 'error')
    }).finally(() => { restoreButton.disabled = false })
  })

  const tabs = [...document.querySelectorAll<HTMLButtonElement>('[data-tab]')]
  const showTab = (tab: string): void => {
    for (const button of tabs) button.setAttribute('aria-selected', String(button.dataset.tab === tab))
    byId('activity').hidden = tab !== 'activity'
    byId('history').hidden = tab !== 'history'
    if (tab === 'history') history.show()
    else history.hide()
  }
  for (const button of tabs) button.addEventListener('click', () => showTab(button.dataset.tab ?? 'activity'))
  showTab(window.location.hash === '#history' ? 'history' : 'activity')

  // For tests, benchmarks and the curious: the live objects behind the page.
  Object.assign(window, {
    nova: {
      config,
      doc: ydoc,
      text: () => ytext !== null ? ytext.toString() : rendered,
      field: () => field,
      editorText: () => view?.state.doc.toString() ?? null,
      provider,
      awareness,
      connection: () => connection.state,
      metrics,
      onUpdate: (listener: (update: ViewUpdate) => void) => { listeners.add(listener); return () => listeners.delete(listener) }
    }
  })
}

main()
