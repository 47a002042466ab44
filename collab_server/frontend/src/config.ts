// The page's configuration, rendered by the hub into <script id="nova-config"> (see viewer.py).

export type Mode = 'view' | 'edit'

export interface PageConfig {
  /** The document name, exactly as in ws://host/<document>. */
  document: string
  /** What the link grants. Today chosen by ?mode=; the hub will enforce it with tokens. */
  mode: Mode
  /** An access token carried by the link, passed on to the hub (socket and HTTP). */
  token: string | null
  /** The name this viewer shows to others (?name=), or null for a generated one. */
  name: string | null
  /** The root field shown (?field=), or null: "content" if there, else the document's first. */
  field: string | null
}

export function readConfig (): PageConfig {
  const element = document.getElementById('nova-config')
  const raw: unknown = JSON.parse(element?.textContent ?? '{}')
  const data = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>
  return {
    document: typeof data.document === 'string' ? data.document : '',
    mode: data.mode === 'edit' ? 'edit' : 'view',
    token: typeof data.token === 'string' && data.token !== '' ? data.token : null,
    name: typeof data.name === 'string' && data.name !== '' ? data.name : null,
    field: typeof data.field === 'string' && data.field !== '' ? data.field : null
  }
}

/** The path of a document in URLs: each segment percent-encoded, the slashes kept. */
export function documentPath (name: string): string {
  return name.split('/').map(encodeURIComponent).join('/')
}
