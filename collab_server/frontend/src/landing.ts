// The landing page: the hub's documents with live participant counts, refreshed in place.
import { Api, type DocumentEntry } from './api.js'
import { documentPath } from './config.js'
import { el, relativeTime } from './format.js'

const REFRESH_MS = 2000

function row (entry: DocumentEntry): HTMLTableRowElement {
  const tr = el('tr')
  tr.dataset.document = entry.name
  const nameCell = el('td', 'doc-name')
  const link = el('a', undefined, entry.name)
  link.href = `/d/${documentPath(entry.name)}`
  nameCell.append(link)
  const people = el('td', 'participants', String(entry.connections))
  people.dataset.count = String(entry.connections)
  if (entry.connections > 0) people.classList.add('live')
  const changed = el('td', 'updated', entry.updated_at > 0 ? relativeTime(entry.updated_at) : '—')
  changed.title = entry.updated_at > 0 ? new Date(entry.updated_at * 1000).toLocaleString() : ''
  const actions = el('td', 'actions')
  const edit = el('a', 'button', 'edit')
  edit.href = `/d/${documentPath(entry.name)}?mode=edit`
  actions.append(edit)
  tr.append(nameCell, people, changed, actions)
  return tr
}

async function refresh (api: Api, body: HTMLElement, status: HTMLElement): Promise<void> {
  try {
    const documents = await api.documents()
    body.replaceChildren(...documents.map(row))
    const live = documents.reduce((sum, d) => sum + d.connections, 0)
    status.textContent = `${documents.length} documents · ${live} connected now`
    status.dataset.state = 'ok'
  } catch (error) {
    status.textContent = `Hub unreachable (${error instanceof Error ? error.message : String(error)}); retrying…`
    status.dataset.state = 'error'
  }
}

function main (): void {
  const api = new Api(null)
  const body = document.getElementById('documents-body')
  const status = document.getElementById('documents-status')
  if (body === null || status === null) throw new Error('landing page markup is missing')
  const form = document.getElementById('open-form')
  form?.addEventListener('submit', (event) => {
    event.preventDefault()
    const data = new FormData(event.target as HTMLFormElement)
    const name = String(data.get('name') ?? '').trim()
    const mode = (event as SubmitEvent).submitter?.getAttribute('value') === 'edit' ? '?mode=edit' : ''
    if (name !== '') window.location.href = `/d/${documentPath(name)}${mode}`
  })
  const tick = (): void => {
    void refresh(api, body, status).finally(() => window.setTimeout(tick, REFRESH_MS))
  }
  window.setTimeout(tick, REFRESH_MS)
}

main()
