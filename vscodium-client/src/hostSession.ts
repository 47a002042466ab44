/**
 * Sharing a workspace folder. The manifest lists the folder's text files; a file's hub
 * document is filled from disk when a guest first asks for it (or the host opens it), and
 * from then on the file on disk receives the merged edits: written directly while no editor
 * shows it, saved from the editor otherwise.
 */
import * as vscode from 'vscode';
import { HubConnection } from './connection';
import { toLf, withEol } from './lines';
import { Manifest, asksDocument, fileDocument, manifestDocument, type Eol } from './manifest';
import { setLocalUser } from './presence';
import { Session, randomId, saveAfterRemoteEdits } from './session';
import { ShareFilter } from './shareFilter';
import type { Settings } from './settings';
import type { SharedFile } from './sharedFile';
import { roomPath, type JoinTarget } from './shareLink';

export const MAX_SHARED_FILES = 1000;
export const MAX_FILE_BYTES = 2 * 1024 * 1024;
const EXCLUDE = '**/{node_modules,.git,dist,out,build,.venv,__pycache__,target}/**';
const WRITE_DELAY_MS = 300;

export class HostSession extends Session {
  readonly manifestConnection: HubConnection;
  readonly manifest: Manifest;
  /** Read-only guests ask for files here (they cannot write the manifest's "requests"); opened
   * when the first read-only guest is let in (serveReadOnlyGuests). */
  private asksConnection: HubConnection | undefined;
  private readonly seeding = new Map<string, Promise<SharedFile>>();
  /** Paths never shared: the root .gitignore, the root .novaignore and known secrets. */
  private filter = new ShareFilter('');

  constructor(
    settings: Settings,
    readonly folder: vscode.WorkspaceFolder,
  ) {
    super(randomId(), 'host', settings);
    this.manifestConnection = new HubConnection({
      hubUrl: settings.hubUrl,
      document: roomPath(manifestDocument(this.id)),
      token: settings.token,
    });
    setLocalUser(this.manifestConnection.awareness, settings.user);
    this.manifest = new Manifest(this.manifestConnection.doc);
    this.watch(this.manifestConnection);
    this.manifestConnection.awareness.on('change', () => this.fire());
  }

  get target(): JoinTarget {
    return { hubUrl: this.settings.hubUrl, kind: 'session', name: this.id };
  }

  get title(): string {
    return `${this.folder.name} (host)`;
  }

  get presenceConnection(): HubConnection {
    return this.manifestConnection;
  }

  /** Lists the folder's text files in the manifest and starts serving requests. */
  async start(): Promise<number> {
    await this.manifestConnection.whenSynced();
    const rootFile = async (name: string): Promise<string> => (await readText(this.uriOf(name))) ?? '';
    const neverShare = (await rootFile('.novaignore')).split(/\r?\n/).filter((line) => line.trim() !== '' && !line.startsWith('#'));
    this.filter = new ShareFilter(await rootFile('.gitignore'), neverShare);
    const uris = await vscode.workspace.findFiles(
      new vscode.RelativePattern(this.folder, '**/*'),
      EXCLUDE,
      MAX_SHARED_FILES,
    );
    const entries: [string, Eol][] = [];
    for (const uri of uris) {
      const path = this.pathOf(uri);
      if (path === undefined || this.filter.excludes(path)) continue;
      const bytes = await readText(uri);
      if (bytes === undefined) continue;
      entries.push([path, bytes.includes('\r\n') ? 'crlf' : 'lf']);
    }
    this.manifestConnection.doc.transact(() => {
      this.manifest.session.set('host', this.settings.user.name);
      this.manifest.session.set('folder', this.folder.name);
      for (const [path, eol] of entries) if (path !== '') this.manifest.files.set(path, { eol });
    });
    const requests = this.manifestConnection.doc.getMap<boolean>('requests');
    const serve = (): void => {
      for (const path of requests.keys()) if (this.manifest.files.has(path)) void this.seed(path);
    };
    requests.observe(serve);
    // Files created by guests: written to disk as they arrive (never an excluded path);
    // files guests deleted (or renamed away): deleted from disk.
    this.manifest.files.observe((event) => {
      if (event.transaction.local) return;
      for (const [path, change] of event.changes.keys) {
        if (change.action === 'add' && this.filter.excludes(path)) this.refuse(path);
        else if (change.action === 'add') void this.seed(path);
        else if (change.action === 'delete') void this.deleteFromDisk(path);
      }
      this.fire();
    });
    serve();
    return entries.length;
  }

  /** Serves the file requests of read-only guests (idempotent). */
  serveReadOnlyGuests(): void {
    if (this.asksConnection !== undefined) return;
    this.asksConnection = new HubConnection({
      hubUrl: this.settings.hubUrl,
      document: roomPath(asksDocument(this.id)),
      token: this.settings.token,
    });
    const asks = this.asksConnection.doc.getMap<boolean>('requests');
    asks.observe(() => {
      for (const path of asks.keys()) if (this.manifest.files.has(path)) void this.seed(path);
    });
  }

  pathOf(uri: vscode.Uri): string | undefined {
    if (uri.scheme !== this.folder.uri.scheme) return undefined;
    const root = this.folder.uri.path.replace(/\/$/, '');
    if (!uri.path.startsWith(`${root}/`)) return undefined;
    return uri.path.slice(root.length + 1);
  }

  uriOf(path: string): vscode.Uri {
    return vscode.Uri.joinPath(this.folder.uri, ...path.split('/'));
  }

  async attach(document: vscode.TextDocument): Promise<SharedFile | undefined> {
    const path = this.pathOf(document.uri);
    if (path === undefined || !this.manifest.files.has(path)) return undefined;
    const file = await this.seed(path);
    if (!file.isBoundTo(document)) {
      this.bindFile(file, document, 'fromDocument');
      saveAfterRemoteEdits(file, this.subscriptions);
    }
    return file;
  }

  /** A guest created a path that is never shared: take it out of the manifest again. */
  private refuse(path: string): void {
    this.manifestConnection.doc.transact(() => {
      this.manifest.files.delete(path);
      this.manifest.ready.delete(path);
    });
    void vscode.window.showWarningMessage(`Nova Collab: a guest's new file "${path}" is not shared (.gitignore, .novaignore or a secret).`);
  }

  private async deleteFromDisk(path: string): Promise<void> {
    const file = this.files.get(path);
    this.seeding.delete(path);
    this.files.delete(path);
    file?.dispose();
    try {
      await vscode.workspace.fs.delete(this.uriOf(path), { useTrash: false });
    } catch (error) {
      // Already gone on disk: nothing to do. Anything else is reported.
      if (!(error instanceof vscode.FileSystemError && error.code === 'FileNotFound')) {
        void vscode.window.showWarningMessage(`Nova Collab: could not delete "${path}" as a guest asked: ${String(error)}`);
      }
    }
  }

  /** The file's hub document, filled from disk if nobody did yet. */
  seed(path: string): Promise<SharedFile> {
    let seeding = this.seeding.get(path);
    if (seeding === undefined) {
      seeding = this.doSeed(path);
      this.seeding.set(path, seeding);
      seeding.catch(() => this.seeding.delete(path));
    }
    return seeding;
  }

  private async doSeed(path: string): Promise<SharedFile> {
    const file = this.openShared(fileDocument(this.id, path), path);
    await file.connection.whenSynced();
    const uri = this.uriOf(path);
    const eol = this.manifest.files.get(path)?.eol ?? 'lf';
    this.writeBackToDisk(file, uri, eol);
    if (!this.manifest.ready.get(path)) {
      const text = (await readText(uri)) ?? '';
      if (file.ytext.length === 0 && text !== '') {
        file.connection.doc.transact(() => file.ytext.insert(0, toLf(text)), 'disk');
      }
      this.manifest.ready.set(path, true);
    } else if (file.binding === undefined && (await readText(uri))?.replace(/\r\n/g, '\n') !== file.ytext.toString()) {
      // A guest's file (created or renamed): its text came with the first sync, not as an edit.
      const text = withEol(file.ytext.toString(), eol === 'crlf' ? '\r\n' : '\n');
      await vscode.workspace.fs.writeFile(uri, new TextEncoder().encode(text));
    }
    return file;
  }

  /** Remote edits to a file no editor shows go straight to disk. */
  private writeBackToDisk(file: SharedFile, uri: vscode.Uri, eol: Eol): void {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const write = (): void => {
      timer = undefined;
      if (file.binding !== undefined) return; // the editor has it: saved from there
      const text = withEol(file.ytext.toString(), eol === 'crlf' ? '\r\n' : '\n');
      void vscode.workspace.fs.writeFile(uri, new TextEncoder().encode(text));
    };
    const observer = (): void => {
      if (file.binding !== undefined || timer !== undefined) return;
      timer = setTimeout(write, WRITE_DELAY_MS);
    };
    file.ytext.observe(observer);
    this.subscriptions.push(
      new vscode.Disposable(() => {
        clearTimeout(timer);
        file.ytext.unobserve(observer);
      }),
    );
  }

  override dispose(): void {
    this.asksConnection?.dispose();
    this.manifestConnection.dispose();
    super.dispose();
  }
}

/** The file's text, or undefined for binary or too large files. */
async function readText(uri: vscode.Uri): Promise<string | undefined> {
  try {
    const stat = await vscode.workspace.fs.stat(uri);
    if (stat.size > MAX_FILE_BYTES || (stat.type & vscode.FileType.File) === 0) return undefined;
    const bytes = await vscode.workspace.fs.readFile(uri);
    if (bytes.subarray(0, 8000).includes(0)) return undefined;
    return new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  } catch {
    return undefined;
  }
}

