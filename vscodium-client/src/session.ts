/**
 * A session: the shared files of one share (a folder, or one document) and their connections.
 * Subclasses: HostSession (shares a folder from disk), GuestSession (a folder shared by
 * someone else, seen through the nova: file system) and DocumentSession (one hub document,
 * shared from a file or joined by name).
 */
import * as vscode from 'vscode';
import type { InitialContent } from './binding';
import type { HubConnection } from './connection';
import type { Settings } from './settings';
import { SharedFile } from './sharedFile';
import type { JoinTarget } from './shareLink';

export const NOVA_SCHEME = 'nova';

export function randomId(): string {
  return Math.random().toString(36).slice(2, 10);
}

export abstract class Session implements vscode.Disposable {
  readonly files = new Map<string, SharedFile>();
  private readonly changed = new vscode.EventEmitter<void>();
  /** Connection state, presence or the file list changed (not fired per keystroke). */
  readonly onDidChange = this.changed.event;
  private readonly remoteEdits = new vscode.EventEmitter<SharedFile>();
  /** A remote edit reached an editor (per keystroke of others: keep listeners cheap). */
  readonly onDidApplyRemoteEdit = this.remoteEdits.event;
  protected readonly subscriptions: vscode.Disposable[] = [];

  protected constructor(
    readonly id: string,
    readonly role: 'host' | 'guest' | 'document',
    readonly settings: Settings,
  ) {}

  /** What a teammate joins (the share link is made from it). */
  abstract get target(): JoinTarget;

  /** A short name for the status bar and the presence view. */
  abstract get title(): string;

  /** The shared file an editor document belongs to, bound and ready, or undefined. */
  abstract attach(document: vscode.TextDocument): Promise<SharedFile | undefined>;

  /** The editor URI of a shared path (for follow). */
  abstract uriOf(path: string): vscode.Uri | undefined;

  /** The connection whose awareness says who is in the session. */
  abstract get presenceConnection(): HubConnection | undefined;

  connections(): HubConnection[] {
    const all = [...this.files.values()].map((file) => file.connection);
    const presence = this.presenceConnection;
    if (presence !== undefined && !all.includes(presence)) all.unshift(presence);
    return all;
  }

  protected openShared(documentName: string, path: string | undefined): SharedFile {
    const key = path ?? documentName;
    let file = this.files.get(key);
    if (file === undefined) {
      file = new SharedFile(documentName, this.settings.hubUrl, this.settings.token, this.settings.user, path, {
        traceLatency: this.settings.traceLatency === true,
      });
      this.files.set(key, file);
      this.watch(file.connection);
      file.connection.awareness.on('change', () => this.fire());
    }
    return file;
  }

  protected watch(connection: HubConnection): void {
    const subscription = connection.onDidChange(() => this.fire());
    this.subscriptions.push(new vscode.Disposable(() => subscription.dispose()));
  }

  protected bindFile(file: SharedFile, document: vscode.TextDocument, initial: InitialContent): SharedFile {
    if (!file.isBoundTo(document)) {
      const binding = file.bind(document, initial);
      // Not `fire()`: that refreshes the status bar and the participants view, messages to the
      // workbench that would compete with the edits on every keystroke.
      this.subscriptions.push(
        binding.onDidSync((direction) => {
          if (direction === 'remote') this.remoteEdits.fire(file);
        }),
      );
    }
    return file;
  }

  /** Tells presence which shared path the local user is looking at. */
  setActivePath(path: string | undefined): void {
    this.presenceConnection?.awareness.setLocalStateField('file', path ?? null);
  }

  protected fire(): void {
    this.changed.fire();
  }

  dispose(): void {
    for (const file of this.files.values()) file.dispose();
    this.files.clear();
    for (const subscription of this.subscriptions.splice(0)) subscription.dispose();
    this.changed.dispose();
    this.remoteEdits.dispose();
  }
}

/**
 * One hub document: shared from an editor ('fromDocument': the editor's text wins, and the
 * file on disk receives remote edits) or joined by name ('fromYjs', shown as nova:/<id>/<name>).
 */
export class DocumentSession extends Session {
  private readonly file: SharedFile;

  constructor(
    settings: Settings,
    readonly documentName: string,
    private readonly source: vscode.TextDocument | undefined,
  ) {
    super(`doc-${randomId()}`, 'document', settings);
    this.file = this.openShared(documentName, undefined);
  }

  get target(): JoinTarget {
    return { hubUrl: this.settings.hubUrl, kind: 'document', name: this.documentName };
  }

  get title(): string {
    return this.documentName;
  }

  get presenceConnection(): HubConnection {
    return this.file.connection;
  }

  get sharedFile(): SharedFile {
    return this.file;
  }

  /** nova://<session id>/<last segment of the document name> */
  get uri(): vscode.Uri {
    const base = this.documentName.split('/').pop() ?? this.documentName;
    return vscode.Uri.from({ scheme: NOVA_SCHEME, authority: this.id, path: `/${base}` });
  }

  uriOf(): vscode.Uri {
    return this.source?.uri ?? this.uri;
  }

  async attach(document: vscode.TextDocument): Promise<SharedFile | undefined> {
    const mine = this.source !== undefined ? document === this.source : document.uri.toString() === this.uri.toString();
    if (!mine) return undefined;
    await this.file.connection.whenSynced();
    const file = this.bindFile(this.file, document, this.source !== undefined ? 'fromDocument' : 'fromYjs');
    if (this.source !== undefined) saveAfterRemoteEdits(file, this.subscriptions);
    return file;
  }
}

/** The host's files on disk receive merged edits: an open document is saved after remote edits. */
export function saveAfterRemoteEdits(file: SharedFile, subscriptions: vscode.Disposable[]): void {
  const binding = file.binding;
  if (binding === undefined) return;
  let timer: ReturnType<typeof setTimeout> | undefined;
  subscriptions.push(
    binding.onDidSync((direction) => {
      if (direction !== 'remote') return;
      clearTimeout(timer);
      timer = setTimeout(() => {
        if (binding.document.isDirty && !binding.document.isClosed) void binding.document.save();
      }, 500);
    }),
    new vscode.Disposable(() => clearTimeout(timer)),
  );
}
