// The presence convention shared by every Nova client, and the list of who is present.
//
// An awareness state looks like
//   { "user": { "name": "Ada", "color": "#3b82f6", "kind": "human" | "agent" },
//     "cursor": { "anchor": <Y.RelativePosition JSON>, "head": <Y.RelativePosition JSON> },
//     "nova": { "index": <code points>, "length": <code points> },   // agents without Yjs positions
//     "viewer": { "mode": "view" | "edit" } }                         // set by browser viewers
// "cursor" is the field y-codemirror.next reads and writes, so CodeMirror clients interoperate.
import type { Awareness } from 'y-protocols/awareness'
import { el } from './format.js'

export type Kind = 'human' | 'agent'

export interface UserInfo {
  name: string
  color: string
  kind: Kind
  model: string | null
}

const DEFAULT_COLOR = '#64748b'
const COLOR = /^#[0-9a-fA-F]{6}$/
const MAX_NAME = 64

export const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#9333ea', '#0891b2', '#db2777', '#4d7c0f']

function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null
}

/** The user part of any awareness state, sanitised: colours end up in style attributes. */
export function userOf (state: unknown): UserInfo {
  const user = isRecord(state) && isRecord(state.user) ? state.user : {}
  const name = typeof user.name === 'string' && user.name.trim() !== '' ? user.name.trim().slice(0, MAX_NAME) : 'Anonymous'
  const color = typeof user.color === 'string' && COLOR.test(user.color) ? user.color : DEFAULT_COLOR
  return {
    name,
    color,
    kind: user.kind === 'agent' ? 'agent' : 'human',
    model: typeof user.model === 'string' ? user.model.slice(0, MAX_NAME) : null
  }
}

export function viewerModeOf (state: unknown): string | null {
  if (!isRecord(state) || !isRecord(state.viewer)) return null
  return state.viewer.mode === 'edit' || state.viewer.mode === 'view' ? state.viewer.mode : null
}

export function colorFor (seed: number): string {
  return PALETTE[Math.abs(seed) % PALETTE.length] ?? DEFAULT_COLOR
}

/** Keeps <ul id="presence"> equal to the awareness states, the local client first. */
export class PresenceList {
  constructor (
    private readonly list: HTMLElement,
    private readonly count: HTMLElement,
    private readonly awareness: Awareness
  ) {
    awareness.on('change', () => this.render())
    this.render()
  }

  render (): void {
    const localId = this.awareness.clientID
    const entries = [...this.awareness.getStates().entries()]
      .filter(([, state]) => Object.keys(state).length > 0)
      .sort(([a], [b]) => (a === localId ? -1 : b === localId ? 1 : a - b))
    const items = entries.map(([clientId, state]) => {
      const user = userOf(state)
      const item = el('li', 'presence-item')
      item.dataset.kind = user.kind
      item.dataset.client = String(clientId)
      const swatch = el('span', 'swatch')
      swatch.style.backgroundColor = user.color
      item.append(swatch, el('span', 'presence-name', user.name))
      if (user.kind === 'agent') {
        const badge = el('span', 'badge badge-agent', 'agent')
        badge.title = user.model !== null ? `AI agent (${user.model})` : 'AI agent'
        item.append(badge)
      }
      const mode = viewerModeOf(state)
      if (mode === 'view') item.append(el('span', 'badge badge-viewer', 'viewing'))
      if (clientId === localId) item.append(el('span', 'presence-you', '(you)'))
      return item
    })
    this.list.replaceChildren(...items)
    this.count.textContent = String(items.length)
  }
}
