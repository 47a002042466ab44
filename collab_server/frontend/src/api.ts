// The hub's HTTP API as the pages use it. A link's token (when it has one) goes along as a
// bearer token; the hub checks it once the security work lands.
import { documentPath } from './config.js'

export class ApiError extends Error {
  constructor (readonly status: number, readonly code: string, message: string) {
    super(message)
  }
}

export interface ActivityEntry {
  seq: number
  timestamp: number
  actor: string | null
  origin_node: string | null
  update_bytes: number
}

export interface Version {
  seq: number
  timestamp: number
  actors: string[]
  update_bytes: number
  kind: string
}

/** A root shared type of a document and what it is (see crdt_core/fields.py). */
export interface FieldInfo {
  name: string
  kind: 'text' | 'xml' | 'map' | 'array'
}

export interface FieldText {
  field: string
  kind: FieldInfo['kind']
  text: string
  fields: FieldInfo[]
}

export interface DocumentEntry {
  name: string
  connections: number
  presence: number
  updated_at: number
  loaded: boolean
}

export class Api {
  constructor (private readonly token: string | null) {}

  private async request<T> (path: string, init: RequestInit = {}): Promise<T> {
    const headers = new Headers(init.headers)
    if (this.token !== null) headers.set('Authorization', `Bearer ${this.token}`)
    const response = await fetch(path, { ...init, headers, cache: 'no-store' })
    const body: unknown = await response.json().catch(() => null)
    if (!response.ok) {
      const error = (body as { error?: { code?: string, message?: string } } | null)?.error
      throw new ApiError(response.status, error?.code ?? 'http_error',
        error?.message ?? `HTTP ${response.status}`)
    }
    return body as T
  }

  private doc (name: string, rest: string): string {
    return `/api/documents/${documentPath(name)}/${rest}`
  }

  async documents (): Promise<DocumentEntry[]> {
    return (await this.request<{ documents: DocumentEntry[] }>('/api/documents')).documents
  }

  async activity (name: string, limit = 50): Promise<ActivityEntry[]> {
    return (await this.request<{ activity: ActivityEntry[] }>(this.doc(name, `activity?limit=${limit}`))).activity
  }

  async history (name: string, limit = 100): Promise<Version[]> {
    return (await this.request<{ versions: Version[] }>(this.doc(name, `history?limit=${limit}`))).versions
  }

  /** A field as plain text, its kind, and every field of the document. */
  async fieldText (name: string, field: string | null): Promise<FieldText> {
    const query = field === null ? '' : `?field=${encodeURIComponent(field)}`
    return await this.request<FieldText>(this.doc(name, `text${query}`))
  }

  async versionText (name: string, seq: number, field?: string): Promise<string> {
    const query = field === undefined ? '' : `?field=${encodeURIComponent(field)}`
    return (await this.request<{ text: string }>(this.doc(name, `versions/${seq}${query}`))).text
  }

  async restore (name: string, seq: number, actor: string, field?: string): Promise<boolean> {
    const result = await this.request<{ changed: boolean }>(this.doc(name, 'restore'), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(field === undefined ? { seq, actor } : { seq, actor, field })
    })
    return result.changed
  }
}
