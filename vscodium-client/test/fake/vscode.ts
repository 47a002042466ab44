/**
 * A small fake of the `vscode` module: enough of TextDocument, WorkspaceEdit and
 * workspace.applyEdit, with VS Code's semantics where the binding depends on them:
 * - a document keeps one end of line; inserted text is converted to it;
 * - a change event lists ranges against the text before the change, last range first;
 * - applyEdit is asynchronous and refused when the document changed after the call.
 * The test bundles alias `vscode` to this module.
 */

type Listener<T> = (value: T) => void;

export class Disposable {
  constructor(private readonly callOnDispose: () => void) {}
  static from(...items: { dispose(): unknown }[]): Disposable {
    return new Disposable(() => items.forEach((item) => item.dispose()));
  }
  dispose(): void {
    this.callOnDispose();
  }
}

export class EventEmitter<T> {
  private listeners = new Set<Listener<T>>();
  readonly event = (listener: Listener<T>): Disposable => {
    this.listeners.add(listener);
    return new Disposable(() => this.listeners.delete(listener));
  };
  fire(value: T): void {
    for (const listener of [...this.listeners]) listener(value);
  }
  dispose(): void {
    this.listeners.clear();
  }
}

export class Position {
  constructor(
    readonly line: number,
    readonly character: number,
  ) {}
  isEqual(other: Position): boolean {
    return this.line === other.line && this.character === other.character;
  }
}

export class Range {
  readonly start: Position;
  readonly end: Position;
  constructor(start: Position | number, end: Position | number, endLine?: number, endCharacter?: number) {
    if (typeof start === 'number' && typeof end === 'number') {
      this.start = new Position(start, end);
      this.end = new Position(endLine ?? start, endCharacter ?? end);
    } else {
      this.start = start as Position;
      this.end = end as Position;
    }
  }
}

export class Selection extends Range {
  constructor(
    readonly anchor: Position,
    readonly active: Position,
  ) {
    super(anchor, active);
  }
}

export enum EndOfLine {
  LF = 1,
  CRLF = 2,
}

export class Uri {
  private constructor(
    readonly scheme: string,
    readonly authority: string,
    readonly path: string,
  ) {}
  static parse(value: string): Uri {
    const colon = value.indexOf(':');
    return new Uri(value.slice(0, colon), '', value.slice(colon + 1));
  }
  static from(parts: { scheme: string; authority?: string; path?: string }): Uri {
    return new Uri(parts.scheme, parts.authority ?? '', parts.path ?? '/');
  }
  toString(): string {
    return this.authority === '' ? `${this.scheme}:${this.path}` : `${this.scheme}://${this.authority}${this.path}`;
  }
}

// The file system provider's vocabulary (values as in VS Code's API).
export enum FileType {
  Unknown = 0,
  File = 1,
  Directory = 2,
}

export enum FilePermission {
  Readonly = 1,
}

export enum FileChangeType {
  Changed = 1,
  Created = 2,
  Deleted = 3,
}

export class FileSystemError extends Error {
  private constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
  private static of(code: string, what: unknown): FileSystemError {
    return new FileSystemError(`${code}: ${String(what)}`, code);
  }
  static FileNotFound(what?: unknown): FileSystemError {
    return FileSystemError.of('FileNotFound', what);
  }
  static FileExists(what?: unknown): FileSystemError {
    return FileSystemError.of('FileExists', what);
  }
  static NoPermissions(what?: unknown): FileSystemError {
    return FileSystemError.of('NoPermissions', what);
  }
  static Unavailable(what?: unknown): FileSystemError {
    return FileSystemError.of('Unavailable', what);
  }
}

interface TextEdit {
  readonly uri: Uri;
  readonly range: Range;
  readonly newText: string;
}

export class WorkspaceEdit {
  readonly edits: TextEdit[] = [];
  replace(uri: Uri, range: Range, newText: string): void {
    this.edits.push({ uri, range, newText });
  }
  insert(uri: Uri, position: Position, newText: string): void {
    this.edits.push({ uri, range: new Range(position, position), newText });
  }
  delete(uri: Uri, range: Range): void {
    this.edits.push({ uri, range, newText: '' });
  }
}

export interface ContentChange {
  readonly range: Range;
  readonly rangeOffset: number;
  readonly rangeLength: number;
  readonly text: string;
}

export interface ChangeEvent {
  readonly document: FakeTextDocument;
  readonly contentChanges: readonly ContentChange[];
}

const didChange = new EventEmitter<ChangeEvent>();

export class FakeTextDocument {
  version = 1;
  /** Edits the workbench applied whose change event has not reached the extension host yet. */
  undelivered = 0;
  isClosed = false;
  private text: string;

  constructor(
    readonly uri: Uri,
    text: string,
    readonly eol: EndOfLine = EndOfLine.LF,
  ) {
    this.text = text.replace(/\r\n|\r|\n/g, this.eolString);
  }

  get eolString(): string {
    return this.eol === EndOfLine.CRLF ? '\r\n' : '\n';
  }

  getText(): string {
    return this.text;
  }

  get lineCount(): number {
    return this.text.split(this.eolString).length;
  }

  offsetAt(position: Position): number {
    const lines = this.text.split(this.eolString);
    const line = Math.min(position.line, lines.length - 1);
    let offset = 0;
    for (let i = 0; i < line; i += 1) offset += (lines[i] ?? '').length + this.eolString.length;
    return offset + Math.min(position.character, (lines[line] ?? '').length);
  }

  positionAt(offset: number): Position {
    const before = this.text.slice(0, Math.max(0, Math.min(offset, this.text.length))).split(this.eolString);
    return new Position(before.length - 1, (before[before.length - 1] ?? '').length);
  }

  /** Applies changes made against the current text (what typing, paste or undo does) and fires the event. */
  change(changes: readonly { range: Range; text: string }[]): void {
    const resolved = changes
      .map((change) => {
        const start = this.offsetAt(change.range.start);
        const end = this.offsetAt(change.range.end);
        return {
          range: new Range(this.positionAt(start), this.positionAt(end)),
          rangeOffset: start,
          rangeLength: end - start,
          text: change.text.replace(/\r\n|\r|\n/g, this.eolString),
        };
      })
      .sort((a, b) => b.rangeOffset - a.rangeOffset);
    for (const change of resolved) {
      this.text = this.text.slice(0, change.rangeOffset) + change.text + this.text.slice(change.rangeOffset + change.rangeLength);
    }
    this.version += 1;
    didChange.fire({ document: this, contentChanges: resolved });
  }

  /** Typing: replace [start, end) (offsets in the document's own text) by `text`. */
  type(start: number, end: number, text: string): void {
    this.change([{ range: new Range(this.positionAt(start), this.positionAt(end)), text }]);
  }
}

const documents = new Map<string, FakeTextDocument>();

export function openDocument(uri: string, text: string, eol: EndOfLine = EndOfLine.LF): FakeTextDocument {
  const document = new FakeTextDocument(Uri.parse(uri), text, eol);
  documents.set(document.uri.toString(), document);
  return document;
}

/**
 * How applyEdit is delivered: 'async' applies it on a later task; 'held' queues it until `release()`.
 * `echoDelayMs` > 0: the edit is applied and acknowledged at once, but its change event (and the
 * document's text and version, as the extension host sees them) arrive that much later, as from
 * a busy workbench; edits made against the old version meanwhile are refused, as VS Code does.
 */
export const control = {
  mode: 'async' as 'async' | 'held',
  held: [] as (() => void)[],
  echoDelayMs: 0,
  applied: 0,
  refused: 0,
  release(): void {
    const queued = this.held.splice(0);
    for (const run of queued) run();
  },
};

const didClose = new EventEmitter<FakeTextDocument>();

/** Closes a document: its close event fires (the document object stays readable). */
export function closeDocument(document: FakeTextDocument): void {
  documents.delete(document.uri.toString());
  document.isClosed = true;
  didClose.fire(document);
}

export const workspace = {
  onDidChangeTextDocument: didChange.event,
  onDidCloseTextDocument: didClose.event,
  applyEdit(edit: WorkspaceEdit): Promise<boolean> {
    const versions = new Map<FakeTextDocument, number>();
    for (const { uri } of edit.edits) {
      const document = documents.get(uri.toString());
      if (document === undefined) return Promise.resolve(false);
      versions.set(document, document.version);
    }
    return new Promise((resolve) => {
      const run = (): void => {
        for (const [document, version] of versions) {
          if (document.version + document.undelivered !== version) {
            control.refused += 1;
            resolve(false);
            return;
          }
        }
        for (const [document] of versions) {
          const changes = edit.edits
            .filter((e) => e.uri.toString() === document.uri.toString())
            .map((e) => ({ range: e.range, text: e.newText }));
          if (control.echoDelayMs <= 0) {
            document.change(changes);
            continue;
          }
          document.undelivered += 1;
          setTimeout(() => {
            document.undelivered -= 1;
            document.change(changes);
          }, control.echoDelayMs);
        }
        control.applied += 1;
        resolve(true);
      };
      if (control.mode === 'held') control.held.push(run);
      else setTimeout(run, 0);
    });
  },
};

/** No editor is visible in the fake: the binding applies remote edits through `workspace.applyEdit`. */
export const window = {
  visibleTextEditors: [] as { document: FakeTextDocument }[],
};
