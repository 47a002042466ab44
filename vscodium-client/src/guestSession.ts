/**
 * A folder someone else shares, seen as nova://<session id>/<path>. A file's hub document
 * is connected when VS Code first reads the file; the host fills it from disk on request.
 */
import * as vscode from 'vscode';
import { HubConnection } from './connection';
import { lineBreakAwareDiff, withEol } from './lines';
import { Manifest, asksDocument, fileDocument, manifestDocument, type Eol } from './manifest';
import { setLocalUser } from './presence';
import { NOVA_SCHEME, Session } from './session';
import type { Settings } from './settings';
import type { SharedFile } from './sharedFile';
import { roomPath, type JoinTarget } from './shareLink';
import { isReadOnlyToken } from './tokenGrants';

const READY_TIMEOUT_MS = 15_000;

export class GuestSession extends Session {
  readonly manifestConnection: HubConnection;
  readonly manifest: Manifest;
  /** Where a guest that may only read the manifest asks for files (created at the first ask). */
  private asks: HubConnection | undefined;

  constructor(settings: Settings, sessionId: string) {
    super(sessionId, 'guest', settings);
    this.manifestConnection = new HubConnection({
      hubUrl: settings.hubUrl,
      document: roomPath(manifestDocument(sessionId)),
      token: settings.token,
    });
    setLocalUser(this.manifestConnection.awareness, settings.user);
    this.manifest = new Manifest(this.manifestConnection.doc);
    this.watch(this.manifestConnection);
    this.manifestConnection.awareness.on('change', () => this.fire());
    this.manifest.files.observe(() => this.fire());
  }

  async start(): Promise<void> {
    await this.manifestConnection.whenSynced();
    if (this.manifest.files.size === 0 && !this.manifest.session.has('host')) {
      throw new Error(`no shared session "${this.id}" on ${this.settings.hubUrl}`);
    }
  }

  get target(): JoinTarget {
    return { hubUrl: this.settings.hubUrl, kind: 'session', name: this.id };
  }

  get title(): string {
    return `${this.manifest.session.get('folder') ?? this.id} (guest)`;
  }

  get presenceConnection(): HubConnection {
    return this.manifestConnection;
  }

  get rootUri(): vscode.Uri {
    return vscode.Uri.from({ scheme: NOVA_SCHEME, authority: this.id, path: '/' });
  }

  uriOf(path: string): vscode.Uri {
    return vscode.Uri.from({ scheme: NOVA_SCHEME, authority: this.id, path: `/${path}` });
  }

  pathOf(uri: vscode.Uri): string | undefined {
    if (uri.scheme !== NOVA_SCHEME || uri.authority !== this.id) return undefined;
    return uri.path.replace(/^\/+/, '');
  }

  eolOf(path: string): string {
    return this.manifest.files.get(path)?.eol === 'crlf' ? '\r\n' : '\n';
  }

  /** The file's document, once the host has filled it. */
  async open(path: string): Promise<SharedFile> {
    if (!this.manifest.files.has(path)) throw vscode.FileSystemError.FileNotFound(this.uriOf(path));
    const file = this.openShared(fileDocument(this.id, path), path);
    if (!this.manifest.ready.get(path)) {
      this.requestFile(path);
      await waitFor(() => this.manifest.ready.get(path) === true, this.manifest.ready, READY_TIMEOUT_MS, path);
    }
    await file.connection.whenSynced();
    return file;
  }

  private requestFile(path: string): void {
    if (!isReadOnlyToken(this.settings.token, manifestDocument(this.id))) {
      this.manifestConnection.doc.getMap<boolean>('requests').set(path, true);
      return;
    }
    this.asks ??= new HubConnection({
      hubUrl: this.settings.hubUrl,
      document: roomPath(asksDocument(this.id)),
      token: this.settings.token,
    });
    this.asks.doc.getMap<boolean>('requests').set(path, true);
  }

  async read(path: string): Promise<string> {
    const file = await this.open(path);
    return withEol(file.ytext.toString(), this.eolOf(path));
  }

  /** A save (or a new file): the document is made equal to `text` with minimal edits. */
  async write(path: string, text: string, eol?: Eol): Promise<void> {
    if (!this.manifest.files.has(path)) {
      this.manifestConnection.doc.transact(() => {
        this.manifest.files.set(path, { eol: eol ?? (text.includes('\r\n') ? 'crlf' : 'lf') });
        this.manifest.ready.set(path, true);
      });
    }
    const file = await this.open(path);
    const current = file.ytext.toString();
    const diff = lineBreakAwareDiff(current, text);
    if (diff.start === diff.end && diff.text === '') return;
    file.connection.doc.transact(() => {
      if (diff.end > diff.start) file.ytext.delete(diff.start, diff.end - diff.start);
      if (diff.text !== '') file.ytext.insert(diff.start, diff.text);
    }, 'save');
  }

  /** Takes files out of the session (a delete, or the old side of a rename): the host deletes them on disk. */
  remove(paths: readonly string[]): void {
    this.manifestConnection.doc.transact(() => {
      for (const path of paths) {
        this.manifest.files.delete(path);
        this.manifest.ready.delete(path);
      }
    });
    for (const path of paths) {
      this.files.get(path)?.dispose();
      this.files.delete(path);
    }
  }

  /** The shared files at `path`: the file itself, or every file below a directory. */
  filesAt(path: string): string[] {
    if (this.manifest.files.has(path)) return [path];
    return this.manifest.paths().filter((p) => p.startsWith(`${path}/`));
  }

  async attach(document: vscode.TextDocument): Promise<SharedFile | undefined> {
    const path = this.pathOf(document.uri);
    if (path === undefined || !this.manifest.files.has(path)) return undefined;
    const file = await this.open(path);
    return this.bindFile(file, document, 'fromYjs');
  }

  override dispose(): void {
    this.asks?.dispose();
    this.manifestConnection.dispose();
    super.dispose();
  }
}

function waitFor(
  predicate: () => boolean,
  map: { observe(f: () => void): void; unobserve(f: () => void): void },
  timeoutMs: number,
  what: string,
): Promise<void> {
  if (predicate()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (!predicate()) return;
      clearTimeout(timer);
      map.unobserve(check);
      resolve();
    };
    const timer = setTimeout(() => {
      map.unobserve(check);
      reject(new Error(`the host did not share ${what} within ${timeoutMs} ms`));
    }, timeoutMs);
    map.observe(check);
  });
}
