/**
 * Sharing a workspace folder. The manifest lists the folder's text files; a file's hub
 * document is filled from disk when a guest first asks for it (or the host opens it), and
 * from then on the file on disk receives the merged edits: written directly while no editor
 * shows it, saved from the editor otherwise.
 */
import * as vscode from 'vscode';
import { HubConnection } from './connection';
import { toLf, withEol } from './lines';
import { Manifest, fileDocument, manifestDocument, type Eol } from './manifest';
import { setLocalUser } from './presence';
import { Session, randomId, saveAfterRemoteEdits } from './session';
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
  private readonly seeding = new Map<string, Promise<SharedFile>>();

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
    const uris = await vscode.workspace.findFiles(
      new vscode.RelativePattern(this.folder, '**/*'),
      EXCLUDE,
      MAX_SHARED_FILES,
    );
    const entries: [string, Eol][] = [];
    for (const uri of uris) {
      const bytes = await readText(uri);
      if (bytes === undefined) continue;
      entries.push([this.pathOf(uri) ?? '', bytes.includes('\r\n') ? 'crlf' : 'lf']);
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
    // Files created by guests: written to disk as they arrive.
    this.manifest.files.observe((event) => {
      if (event.transaction.local) return;
      for (const [path, change] of event.changes.keys) if (change.action === 'add') void this.seed(path);
      this.fire();
    });
    serve();
    return entries.length;
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
    if (!this.manifest.ready.get(path)) {
      const text = (await readText(uri)) ?? '';
      if (file.ytext.length === 0 && text !== '') {
        file.connection.doc.transact(() => file.ytext.insert(0, toLf(text)), 'disk');
      }
      this.manifest.ready.set(path, true);
    }
    this.writeBackToDisk(file, uri, this.manifest.files.get(path)?.eol ?? 'lf');
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

