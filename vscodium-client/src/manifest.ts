/**
 * A folder session's manifest: one hub document listing the shared files.
 *   Y.Map "files": relative path -> {eol: "lf" | "crlf"}
 *   Y.Map "session": {host, folder}
 *   Y.Map "ready": relative path -> true once the host put the file's text in its document
 * Each file is its own hub document: "<session document>/<relative path>".
 */
import * as Y from 'yjs';

export type Eol = 'lf' | 'crlf';

export interface FileEntry {
  readonly eol: Eol;
}

export const SESSION_PREFIX = 'nova-session';

export function manifestDocument(sessionId: string): string {
  return `${SESSION_PREFIX}/${sessionId}`;
}

/** Where guests whose token only reads the manifest ask the host for files ("requests" map). */
export function asksDocument(sessionId: string): string {
  return `${manifestDocument(sessionId)}-asks`;
}

export function fileDocument(sessionId: string, path: string): string {
  return `${manifestDocument(sessionId)}/${path}`;
}

export class Manifest {
  readonly files: Y.Map<FileEntry>;
  readonly session: Y.Map<string>;
  readonly ready: Y.Map<boolean>;

  constructor(readonly doc: Y.Doc) {
    this.files = doc.getMap('files');
    this.session = doc.getMap('session');
    this.ready = doc.getMap('ready');
  }

  paths(): string[] {
    return [...this.files.keys()].sort();
  }

  /** Direct children of directory `dir` ('' for the root): [name, isDirectory]. */
  children(dir: string): [string, boolean][] {
    const prefix = dir === '' ? '' : `${dir}/`;
    const seen = new Map<string, boolean>();
    for (const path of this.files.keys()) {
      if (!path.startsWith(prefix)) continue;
      const rest = path.slice(prefix.length);
      const slash = rest.indexOf('/');
      if (slash < 0) seen.set(rest, false);
      else seen.set(rest.slice(0, slash), true);
    }
    return [...seen.entries()].sort(([a], [b]) => a.localeCompare(b));
  }

  isDirectory(dir: string): boolean {
    if (dir === '') return true;
    const prefix = `${dir}/`;
    return [...this.files.keys()].some((path) => path.startsWith(prefix));
  }
}
