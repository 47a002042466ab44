// The connection state the page shows: connecting → connected ⇄ reconnecting, or offline.
import type { WebsocketProvider } from 'y-websocket'

export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'offline'

/** Close codes after which reconnecting cannot help (see collab_server/closecodes.py). */
const TERMINAL_CLOSES = new Set([4400, 4401, 4403, 4404, 4413, 4498])
/** After this many failed attempts in a row without ever connecting, say "offline" (it keeps trying). */
const OFFLINE_AFTER_FAILURES = 8

export function shouldReconnect (event: CloseEvent): boolean {
  return !TERMINAL_CLOSES.has(event.code)
}

export class ConnectionIndicator {
  private everSynced = false
  private terminal: { code: number, reason: string } | null = null
  private lastClose: { code: number, reason: string } | null = null
  state: ConnectionState = 'connecting'

  constructor (
    private readonly element: HTMLElement,
    private readonly provider: WebsocketProvider,
    private readonly onChange: (state: ConnectionState) => void
  ) {
    provider.on('status', () => this.update())
    provider.on('sync', (synced: boolean) => {
      if (synced) this.everSynced = true
      this.update()
    })
    provider.on('connection-close', (event: CloseEvent | null) => {
      if (event !== null) this.lastClose = { code: event.code, reason: event.reason }
      this.update()
    })
    provider.on('closed', (event: { code: number, reason: string }) => {
      this.terminal = event
      this.update()
    })
    window.addEventListener('online', () => this.update())
    window.addEventListener('offline', () => this.update())
    this.update()
  }

  private compute (): ConnectionState {
    if (this.terminal !== null || !navigator.onLine) return 'offline'
    if (this.provider.wsconnected && this.provider.synced) return 'connected'
    if (this.everSynced) return 'reconnecting'
    return this.provider.wsUnsuccessfulReconnects >= OFFLINE_AFTER_FAILURES ? 'offline' : 'connecting'
  }

  private detail (state: ConnectionState): string {
    if (this.terminal !== null) {
      return `The hub closed the connection (${this.terminal.code}${this.terminal.reason !== '' ? `: ${this.terminal.reason}` : ''}). Reload to try again.`
    }
    if (!navigator.onLine) return 'The browser is offline; the page reconnects when the network is back.'
    const last = this.lastClose !== null && this.lastClose.reason !== '' ? ` Last close: ${this.lastClose.reason}.` : ''
    switch (state) {
      case 'connected': return 'Live: changes appear as they happen.'
      case 'reconnecting': return `Connection lost; reconnecting. Edits made meanwhile are merged when it is back.${last}`
      case 'connecting': return 'Connecting to the hub…'
      case 'offline': return `The hub cannot be reached; still retrying.${last}`
    }
  }

  private update (): void {
    const state = this.compute()
    this.element.dataset.state = state
    this.element.textContent = state
    this.element.title = this.detail(state)
    if (state !== this.state) {
      this.state = state
      this.onChange(state)
    }
  }
}
