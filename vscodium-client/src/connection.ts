/**
 * One hub document over y-websocket: its Y.Doc, awareness and connection state.
 * Reconnects with capped exponential backoff (y-websocket's own, capped at
 * `maxBackoffMs`); edits made while offline stay in the Y.Doc and merge at the next sync.
 * Refusals (bad or expired token, no access, document too large) stop the retries and say why;
 * a read-only denial keeps the connection (remote edits still arrive) and says so.
 */
import WebSocket from 'ws';
import * as Y from 'yjs';
import * as authProtocol from 'y-protocols/auth';
import type * as awarenessProtocol from 'y-protocols/awareness';
import { WebsocketProvider } from 'y-websocket';
import type * as decoding from 'lib0/decoding';
import type * as encoding from 'lib0/encoding';
import { isReadOnlyDenial, refusalFor, type Refusal } from './refusals';

export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'refused' | 'closed';

export interface ConnectionOptions {
  readonly hubUrl: string;
  readonly document: string;
  readonly token?: string;
  /** Cap of the reconnect backoff. */
  readonly maxBackoffMs?: number;
  readonly doc?: Y.Doc;
}

export const DEFAULT_MAX_BACKOFF_MS = 10_000;
const MESSAGE_AUTH = 2;

type Listener = (connection: HubConnection) => void;

export class HubConnection {
  readonly doc: Y.Doc;
  readonly provider: WebsocketProvider;
  state: ConnectionState = 'connecting';
  refusal: Refusal | undefined;
  readOnlyReason: string | undefined;
  /** Local updates made since the connection was lost (sent at the next sync). */
  pendingEdits = 0;
  private everSynced = false;
  private readonly listeners = new Set<Listener>();
  private readonly syncWaiters = new Set<() => void>();

  constructor(readonly options: ConnectionOptions) {
    this.doc = options.doc ?? new Y.Doc();
    const params: Record<string, string> = {};
    if (options.token !== undefined && options.token !== '') params.token = options.token;
    this.provider = new WebsocketProvider(options.hubUrl, options.document, this.doc, {
      params,
      WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
      disableBc: true,
      maxBackoffTime: options.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS,
      shouldReconnect: (event: { code: number; reason: string }) => refusalFor(event.code, event.reason) === undefined,
    });
    this.provider.messageHandlers[MESSAGE_AUTH] = (
      _encoder: encoding.Encoder,
      decoder: decoding.Decoder,
    ) => {
      authProtocol.readAuthMessage(decoder, this.doc, (_doc, reason) => this.onPermissionDenied(reason));
    };
    this.provider.on('status', ({ status }) => {
      if (this.state === 'refused' || this.state === 'closed') return;
      if (status === 'connected') this.setState('connected');
      else this.setState(this.everSynced ? 'reconnecting' : 'connecting');
    });
    this.provider.on('sync', (synced: boolean) => {
      if (!synced) return;
      this.everSynced = true;
      this.pendingEdits = 0;
      for (const resolve of this.syncWaiters) resolve();
      this.syncWaiters.clear();
      this.notify();
    });
    this.provider.on('closed', ({ code, reason }) => {
      this.refusal = refusalFor(code, reason);
      this.setState('refused');
    });
    this.doc.on('update', (_update: Uint8Array, origin: unknown) => {
      if (origin !== this.provider && !this.provider.synced) {
        this.pendingEdits += 1;
        this.notify();
      }
    });
  }

  get awareness(): awarenessProtocol.Awareness {
    return this.provider.awareness;
  }

  get synced(): boolean {
    return this.provider.synced;
  }

  get readOnly(): boolean {
    return this.readOnlyReason !== undefined;
  }

  onDidChange(listener: Listener): { dispose(): void } {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  /** Resolves at the first sync with the hub; rejects on refusal or after `timeoutMs`. */
  whenSynced(timeoutMs = 10_000): Promise<void> {
    if (this.provider.synced) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.syncWaiters.delete(done);
        subscription.dispose();
        reject(new Error(`no sync with ${this.options.hubUrl}/${this.options.document} within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        subscription.dispose();
        resolve();
      };
      const subscription = this.onDidChange(() => {
        if (this.state !== 'refused') return;
        clearTimeout(timer);
        this.syncWaiters.delete(done);
        subscription.dispose();
        reject(new Error(this.refusal?.message ?? 'the hub refused the connection'));
      });
      this.syncWaiters.add(done);
    });
  }

  /** Drops the connection on purpose (offline); `reconnect` resumes it. */
  disconnect(): void {
    this.provider.disconnect();
  }

  reconnect(): void {
    if (this.state === 'refused') this.refusal = undefined;
    this.setState(this.everSynced ? 'reconnecting' : 'connecting');
    this.provider.connect();
  }

  dispose(): void {
    this.setState('closed');
    this.provider.awareness.setLocalState(null);
    this.provider.destroy();
    this.listeners.clear();
  }

  private onPermissionDenied(reason: string): void {
    if (isReadOnlyDenial(reason)) {
      this.readOnlyReason = reason;
      this.notify();
      return;
    }
    this.refusal = { code: 0, message: `The hub denied access: ${reason}` };
    this.provider.disconnect();
    this.setState('refused');
  }

  private setState(state: ConnectionState): void {
    if (this.state === state) return;
    this.state = state;
    this.notify();
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener(this);
  }
}
