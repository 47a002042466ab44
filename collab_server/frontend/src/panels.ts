// The side panels of the document page: recent activity (who changed what, when) and
// history (versions; pick one to see its text, restore it with an editing link).
import { type ActivityEntry, type Api, ApiError, type Version } from './api.js'
import { byteSize, clockTime, el, relativeTime } from './format.js'

/** Consecutive changes by the same actor within this many seconds show as one line. */
const GROUP_WINDOW_SECONDS = 60

interface ActivityGroup {
  actor: string
  first: ActivityEntry
  last: ActivityEntry
  count: number
  bytes: number
}

export function groupActivity (entries: ActivityEntry[]): ActivityGroup[] {
  const groups: ActivityGroup[] = []
  for (const entry of entries) { // newest first
    const actor = entry.actor ?? 'unknown'
    const current = groups[groups.length - 1]
    if (current !== undefined && current.actor === actor &&
        current.first.timestamp - entry.timestamp <= GROUP_WINDOW_SECONDS) {
      current.first = entry
      current.count += 1
      current.bytes += entry.update_bytes
    } else {
      groups.push({ actor, first: entry, last: entry, count: 1, bytes: entry.update_bytes })
    }
  }
  return groups
}

/** Polls /activity and keeps <ol id="activity"> current. */
export class ActivityPanel {
  private timer = 0
  private stopped = false

  constructor (
    private readonly list: HTMLElement,
    private readonly api: Api,
    private readonly documentName: string,
    private readonly intervalMs: number
  ) {}

  start (): void {
    void this.refresh()
  }

  stop (): void {
    this.stopped = true
    window.clearTimeout(this.timer)
  }

  /** Refresh now (e.g. after an edit), and then on the usual period. */
  async refresh (): Promise<void> {
    window.clearTimeout(this.timer)
    try {
      this.render(await this.api.activity(this.documentName))
      this.list.dataset.state = 'ok'
    } catch (error) {
      this.list.dataset.state = 'error'
      this.list.title = error instanceof Error ? error.message : String(error)
    }
    if (!this.stopped) this.timer = window.setTimeout(() => { void this.refresh() }, this.intervalMs)
  }

  private render (entries: ActivityEntry[]): void {
    if (entries.length === 0) {
      this.list.replaceChildren(el('li', 'empty', 'No changes yet.'))
      return
    }
    this.list.replaceChildren(...groupActivity(entries).map((group) => {
      const item = el('li', 'activity-item')
      item.dataset.actor = group.actor
      const what = group.count === 1 ? `1 change, ${byteSize(group.bytes)}` : `${group.count} changes, ${byteSize(group.bytes)}`
      const when = el('time', 'when', relativeTime(group.last.timestamp))
      when.dateTime = new Date(group.last.timestamp * 1000).toISOString()
      when.title = `${clockTime(group.first.timestamp)} – ${clockTime(group.last.timestamp)} (seq ${group.first.seq}–${group.last.seq})`
      item.append(el('span', 'actor', group.actor), when, el('span', 'what', what))
      return item
    }))
  }
}

export interface HistoryHooks {
  /** The root field the page shows: versions are read as that field's text. */
  field?: () => string
  /** Show a past version's text instead of the live document. */
  preview: (version: Version, text: string) => void
}

/** Lists versions; selecting one asks the page to preview it. */
export class HistoryPanel {
  private selected: number | null = null
  private timer = 0
  private active = false

  constructor (
    private readonly list: HTMLElement,
    private readonly api: Api,
    private readonly documentName: string,
    private readonly hooks: HistoryHooks,
    private readonly intervalMs: number
  ) {}

  show (): void {
    this.active = true
    void this.refresh()
  }

  hide (): void {
    this.active = false
    window.clearTimeout(this.timer)
  }

  clearSelection (): void {
    this.selected = null
    for (const item of this.list.querySelectorAll('.selected')) item.classList.remove('selected')
  }

  async refresh (): Promise<void> {
    window.clearTimeout(this.timer)
    try {
      this.render(await this.api.history(this.documentName))
      this.list.dataset.state = 'ok'
    } catch (error) {
      this.list.dataset.state = 'error'
      this.list.replaceChildren(el('li', 'error', `History unavailable: ${error instanceof Error ? error.message : String(error)}`))
    }
    if (this.active) this.timer = window.setTimeout(() => { void this.refresh() }, this.intervalMs)
  }

  private render (versions: Version[]): void {
    if (versions.length === 0) {
      this.list.replaceChildren(el('li', 'empty', 'No stored versions yet.'))
      return
    }
    this.list.replaceChildren(...versions.map((version) => {
      const item = el('li', 'version-item')
      item.dataset.seq = String(version.seq)
      if (version.seq === this.selected) item.classList.add('selected')
      const button = el('button', 'version-button')
      button.type = 'button'
      const actors = version.actors.length > 0 ? version.actors.join(', ') : 'unknown'
      button.append(
        el('span', 'seq', `#${version.seq}`),
        el('span', 'actor', actors),
        el('time', 'when', relativeTime(version.timestamp)),
        el('span', 'what', version.kind === 'checkpoint' ? 'checkpoint' : byteSize(version.update_bytes))
      )
      button.title = new Date(version.timestamp * 1000).toLocaleString()
      button.addEventListener('click', () => { void this.select(version, item) })
      item.append(button)
      return item
    }))
  }

  private async select (version: Version, item: HTMLElement): Promise<void> {
    this.clearSelection()
    this.selected = version.seq
    item.classList.add('selected')
    try {
      this.hooks.preview(version, await this.api.versionText(this.documentName, version.seq, this.hooks.field?.()))
    } catch (error) {
      const message = error instanceof ApiError ? `${error.code}: ${error.message}` : String(error)
      item.append(el('div', 'error', message))
    }
  }
}
