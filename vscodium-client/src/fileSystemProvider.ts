/**
 * The nova: file system: nova://<session id>/<path>. For a guest, the files of a shared
 * folder (listed by the session manifest, each its own hub document); for a joined document,
 * that one document. Reads return the shared text with the file's end of line; a save
 * makes the shared text equal to the saved one with minimal edits (usually none: the
 * binding already sent every keystroke). A guest's deletes and renames (files and folders)
 * change the manifest; the host deletes and writes the files on disk. A rename onto an
 * existing file is refused unless VS Code asked to overwrite.
 *
 * Files a read-only token cannot edit (by its grants, or once the hub said "read-only") are
 * stat'ed with the read-only permission, so VS Code opens them in a read-only editor.
 */
import * as vscode from 'vscode';
import { GuestSession } from './guestSession';
import { fileDocument, manifestDocument } from './manifest';
import { DocumentSession, type Session } from './session';
import { isReadOnlyToken } from './tokenGrants';

export class NovaFileSystem implements vscode.FileSystemProvider {
  private readonly changed = new vscode.EventEmitter<vscode.FileChangeEvent[]>();
  readonly onDidChangeFile = this.changed.event;
  private readonly started = Date.now();
  /** Changes only when VS Code writes the file, so a save never looks like a conflict. */
  private readonly mtimes = new Map<string, number>();

  constructor(
    private readonly sessionOf: (id: string) => Promise<Session | undefined>,
    /** Told what each stat said about read-only (editorAccess.ts keeps open editors in line). */
    private readonly onStat: (uri: vscode.Uri, readOnly: boolean) => void = () => undefined,
  ) {}

  /** Tells VS Code the file list of a session changed (explorer refresh). */
  refresh(session: Session): void {
    const uri = vscode.Uri.from({ scheme: 'nova', authority: session.id, path: '/' });
    this.changed.fire([{ type: vscode.FileChangeType.Changed, uri }]);
  }

  watch(): vscode.Disposable {
    return new vscode.Disposable(() => undefined);
  }

  private async session(uri: vscode.Uri): Promise<GuestSession | DocumentSession> {
    const session = await this.sessionOf(uri.authority);
    if (session instanceof GuestSession || session instanceof DocumentSession) return session;
    throw vscode.FileSystemError.Unavailable(`no Nova session ${uri.authority}: join it first`);
  }

  async stat(uri: vscode.Uri): Promise<vscode.FileStat> {
    const session = await this.session(uri);
    const path = uri.path.replace(/^\/+/, '');
    const readOnly = this.readOnly(session, path);
    this.onStat(uri, readOnly);
    const base = {
      ctime: this.started,
      mtime: this.mtimes.get(uri.toString()) ?? this.started,
      size: 0,
      ...(readOnly ? { permissions: vscode.FilePermission.Readonly } : {}),
    };
    if (path === '') return { ...base, type: vscode.FileType.Directory };
    if (session instanceof DocumentSession) {
      if (uri.path !== session.uri.path) throw vscode.FileSystemError.FileNotFound(uri);
      return { ...base, type: vscode.FileType.File, size: session.sharedFile.ytext.length };
    }
    if (session.manifest.files.has(path)) {
      const size = session.files.get(path)?.ytext.length ?? 0;
      return { ...base, type: vscode.FileType.File, size };
    }
    if (session.manifest.isDirectory(path)) return { ...base, type: vscode.FileType.Directory };
    throw vscode.FileSystemError.FileNotFound(uri);
  }

  async readDirectory(uri: vscode.Uri): Promise<[string, vscode.FileType][]> {
    const session = await this.session(uri);
    const dir = uri.path.replace(/^\/+|\/+$/g, '');
    if (session instanceof DocumentSession) {
      return dir === '' ? [[session.uri.path.slice(1), vscode.FileType.File]] : [];
    }
    return session.manifest
      .children(dir)
      .map(([name, isDir]) => [name, isDir ? vscode.FileType.Directory : vscode.FileType.File]);
  }

  async readFile(uri: vscode.Uri): Promise<Uint8Array> {
    const session = await this.session(uri);
    if (session instanceof DocumentSession) {
      await session.sharedFile.connection.whenSynced();
      return new TextEncoder().encode(session.sharedFile.ytext.toString());
    }
    return new TextEncoder().encode(await session.read(uri.path.replace(/^\/+/, '')));
  }

  /** Whether the local user may not change `path` ('' : the folder, i.e. add files). */
  readOnly(session: GuestSession | DocumentSession, path: string): boolean {
    const token = session.settings.token;
    if (session instanceof DocumentSession) {
      return session.sharedFile.connection.readOnly || isReadOnlyToken(token, session.documentName);
    }
    if (path === '' || !session.manifest.files.has(path)) {
      return session.manifestConnection.readOnly || isReadOnlyToken(token, manifestDocument(session.id));
    }
    return (session.files.get(path)?.connection.readOnly ?? false) || isReadOnlyToken(token, fileDocument(session.id, path));
  }

  /** Whether the local user may not change the file at `uri` of `session` (see `readOnly`). */
  readOnlyAt(session: GuestSession | DocumentSession, uri: vscode.Uri): boolean {
    return this.readOnly(session, uri.path.replace(/^\/+/, ''));
  }

  /** Tells VS Code to re-stat a file (e.g. the hub just said it is read-only for us). */
  changedFile(uri: vscode.Uri): void {
    this.changed.fire([{ type: vscode.FileChangeType.Changed, uri }]);
  }

  async writeFile(uri: vscode.Uri, content: Uint8Array): Promise<void> {
    const session = await this.session(uri);
    if (this.readOnly(session, uri.path.replace(/^\/+/, ''))) {
      throw vscode.FileSystemError.NoPermissions(`${uri.path}: your token is read-only for this file`);
    }
    const text = new TextDecoder().decode(content);
    if (session instanceof DocumentSession) {
      const binding = session.sharedFile.binding;
      if (binding === undefined || binding.shadowText.replace(/\r\n/g, '\n') !== text.replace(/\r\n/g, '\n')) {
        throw vscode.FileSystemError.NoPermissions('open the document in an editor to change it');
      }
      this.mtimes.set(uri.toString(), Date.now());
      return;
    }
    await session.write(uri.path.replace(/^\/+/, ''), text);
    this.mtimes.set(uri.toString(), Date.now());
  }

  createDirectory(): void {
    // Directories exist through the files in them.
  }

  async delete(uri: vscode.Uri): Promise<void> {
    const session = await this.session(uri);
    if (!(session instanceof GuestSession)) throw vscode.FileSystemError.NoPermissions(`${uri.path}: delete it in the host's editor`);
    if (this.readOnly(session, '')) throw vscode.FileSystemError.NoPermissions(`${uri.path}: your token is read-only`);
    const paths = session.filesAt(uri.path.replace(/^\/+|\/+$/g, ''));
    if (paths.length === 0) throw vscode.FileSystemError.FileNotFound(uri);
    session.remove(paths);
    this.changed.fire([{ type: vscode.FileChangeType.Deleted, uri }]);
  }

  async rename(oldUri: vscode.Uri, newUri: vscode.Uri, options: { readonly overwrite: boolean }): Promise<void> {
    const session = await this.session(oldUri);
    if (!(session instanceof GuestSession) || newUri.authority !== oldUri.authority) {
      throw vscode.FileSystemError.NoPermissions(`${oldUri.path}: rename it in the host's editor`);
    }
    if (this.readOnly(session, '')) throw vscode.FileSystemError.NoPermissions(`${oldUri.path}: your token is read-only`);
    const from = oldUri.path.replace(/^\/+|\/+$/g, '');
    const to = newUri.path.replace(/^\/+|\/+$/g, '');
    const moves = session.filesAt(from).map((path): [string, string] => [path, to + path.slice(from.length)]);
    if (moves.length === 0) throw vscode.FileSystemError.FileNotFound(oldUri);
    // A conflict with a file already there is reported, never silently merged.
    const taken = moves.filter(([, target]) => session.manifest.files.has(target));
    if (taken.length > 0 && !options.overwrite) throw vscode.FileSystemError.FileExists(newUri);
    for (const [source, target] of moves) {
      await session.write(target, await session.read(source), session.manifest.files.get(source)?.eol);
    }
    session.remove(moves.map(([source]) => source));
    this.changed.fire([
      { type: vscode.FileChangeType.Deleted, uri: oldUri },
      { type: vscode.FileChangeType.Created, uri: newUri },
    ]);
  }
}
