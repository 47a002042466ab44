/**
 * Binds one VS Code TextDocument to one Y.Text, both ways.
 *
 * - Editor -> Yjs: each change event's `contentChanges` become one Yjs transaction of
 *   incremental inserts and deletes (never a whole-text replace).
 * - Yjs -> editor: remote changes become one WorkspaceEdit of minimal ranges.
 *
 * `applyEdit` is asynchronous and VS Code refuses it when the user typed in between, so
 * remote changes the editor does not show yet are kept as a `pending` delta against the
 * editor's text. A local change is transformed over `pending` before it reaches the
 * Y.Text, `pending` is transformed over the local change, and the edit is sent again.
 * Our own edit coming back as a change event is recognised and not sent to Yjs (no echo).
 *
 * Never twice, whatever the timing: once VS Code accepted an edit, the binding waits for its
 * change event however late it comes, and sends nothing else meanwhile. VS Code refuses an
 * edit made against an older version of the document (both `TextEditor.edit` and
 * `workspace.applyEdit` check it), so the next change event after an accepted edit is that
 * edit's: nothing can overtake it. (A wall-clock limit on that wait, as before, re-applied
 * the edit when the event came late, and then sent it to Yjs again as if typed.) The only
 * edits VS Code accepts without an event are the ones that change nothing: those are never
 * sent to it, and a closed document ends the wait.
 *
 * Line breaks: VS Code's (line, character) positions are the same whatever the document's
 * end of line, so every offset is computed on a copy of the editor's text whose line breaks
 * are the ones the Y.Text holds ("\n" from Nova clients; a peer's "\r\n" is respected).
 * Text typed in the editor reaches the Y.Text with "\n"; text from the Y.Text reaches the
 * editor with the document's end of line.
 */
import * as vscode from 'vscode';
import * as Y from 'yjs';
import * as delta from './delta';
import { lineBreakAwareDiff, toLf, withEol } from './lines';
import { LineTree } from './lineTree';

export type InitialContent = 'fromYjs' | 'fromDocument';

interface InFlight {
  readonly edit: delta.Delta;
  /** Remote changes that arrived while the edit was in flight. */
  after: delta.Delta;
  echoed: boolean;
  stale: boolean;
  /** Called once the edit's change event arrived or a local change made the edit stale. */
  settle: () => void;
}

const MAX_BLIND_RETRIES = 20;

export class DocumentBinding implements vscode.Disposable {
  /** The editor's text as last seen, with the Y.Text's line breaks (a line tree: edits and
   * position lookups cost O(change + log lines), never a pass over the file). */
  private readonly text: LineTree;
  /** Remote changes the editor does not show yet, against `text`. */
  private pending: delta.Delta = delta.EMPTY;
  private inFlight: InFlight | undefined;
  private flushScheduled = false;
  private blindRetries = 0;
  private disposed = false;
  /** Whether the editor is read-only (a read-only guest): VS Code refuses `TextEditor.edit`
   * there, so remote edits go through a workspace edit, which it applies. */
  isReadOnly: () => boolean = () => false;
  private readonly subscriptions: vscode.Disposable[] = [];
  private readonly changed = new vscode.EventEmitter<'local' | 'remote'>();
  /** Fires after a local change reached the Y.Text ('local') or a remote one reached the editor ('remote'). */
  readonly onDidSync = this.changed.event;
  private readonly applying = new vscode.EventEmitter<void>();
  /** Fires when the binding asks the editor to apply remote changes (the latency trace). */
  readonly onWillApplyRemote = this.applying.event;
  /** Where the last local change started in the editor's text (remote cursors before it did not move). */
  lastLocalChangeStart = 0;
  /** Local transactions made since the counter was last reset (the status bar's pending edits). */
  localTransactions = 0;

  constructor(
    readonly document: vscode.TextDocument,
    readonly ytext: Y.Text,
    initial: InitialContent,
  ) {
    const ydoc = ytext.doc;
    if (ydoc === null) throw new Error('the Y.Text must belong to a Y.Doc');
    const shared = ytext.toString();
    const diff = lineBreakAwareDiff(shared, document.getText());
    this.text = new LineTree(shared.slice(0, diff.start) + diff.text + shared.slice(diff.end));
    if (initial === 'fromDocument') {
      ydoc.transact(() => {
        if (diff.end > diff.start) ytext.delete(diff.start, diff.end - diff.start);
        if (diff.text.length > 0) ytext.insert(diff.start, diff.text);
      }, this);
    } else {
      this.pending = delta.normalize([
        { retain: diff.start },
        { delete: diff.text.length },
        { insert: shared.slice(diff.start, diff.end) },
      ]);
    }
    this.ytext.observe(this.onYjsEvent);
    this.subscriptions.push(
      vscode.workspace.onDidChangeTextDocument((event) => {
        if (event.document === this.document) this.onEditorChange(event.contentChanges);
      }),
      // A closed document sends no more events: an edit waiting for its event stops waiting.
      vscode.workspace.onDidCloseTextDocument((document) => {
        if (document === this.document) this.inFlight?.settle();
      }),
    );
    this.scheduleFlush();
  }

  /** True when the editor shows everything the Y.Text holds. */
  get inSync(): boolean {
    return delta.isEmpty(this.pending) && this.inFlight === undefined;
  }

  /** The editor's text as the binding sees it (line breaks as in the Y.Text). */
  get shadowText(): string {
    return this.text.toString();
  }

  /** Tree nodes the binding's text has visited so far (its work; tests compare it across file sizes). */
  get textWork(): number {
    return this.text.work;
  }

  /** Offset in the editor (binding's text) of a Y.Text index. */
  yIndexToOffset(index: number): number {
    if (delta.isEmpty(this.pending)) return index;
    return delta.unmapIndex(this.pending, index);
  }

  offsetToYIndex(offset: number): number {
    return delta.mapIndex(this.pending, offset);
  }

  yIndexToPosition(index: number): vscode.Position {
    const at = this.text.positionAt(this.yIndexToOffset(index));
    return new vscode.Position(at.line, at.character);
  }

  positionToYIndex(position: vscode.Position): number {
    return this.offsetToYIndex(this.text.offsetAt(position));
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.inFlight?.settle();
    this.ytext.unobserve(this.onYjsEvent);
    for (const subscription of this.subscriptions) subscription.dispose();
    this.changed.dispose();
    this.applying.dispose();
  }

  // -- Yjs -> editor --------------------------------------------------------------------

  private readonly onYjsEvent = (event: Y.YTextEvent, transaction: Y.Transaction): void => {
    if (transaction.origin === this) return;
    const ops: delta.Op[] = [];
    for (const op of event.delta) {
      if (op.retain !== undefined) ops.push({ retain: op.retain });
      else if (op.delete !== undefined) ops.push({ delete: op.delete });
      else if (typeof op.insert === 'string') ops.push({ insert: op.insert });
      else if (Array.isArray(op.insert)) ops.push({ insert: '\ufffc'.repeat(op.insert.length) });
    }
    const remote = delta.normalize(ops);
    this.pending = delta.compose(this.pending, remote);
    if (this.inFlight !== undefined && !this.inFlight.stale) {
      this.inFlight.after = delta.compose(this.inFlight.after, remote);
    }
    this.scheduleFlush();
  };

  private scheduleFlush(): void {
    if (this.flushScheduled || this.disposed) return;
    this.flushScheduled = true;
    // A microtask, not a timer: the edit leaves for the editor as soon as the update that
    // brought it is handled (changes of one transaction or message are still sent as one).
    queueMicrotask(() => {
      this.flushScheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.disposed || this.inFlight !== undefined || delta.isEmpty(this.pending)) return;
    const edit = this.pending;
    if (!this.changesText(edit)) {
      // VS Code may accept an edit that changes nothing without a change event: never sent.
      applyToTree(this.text, edit);
      this.pending = delta.EMPTY;
      return;
    }
    let settle = (): void => undefined;
    const settled = new Promise<void>((resolve) => (settle = resolve));
    const inFlight: InFlight = {
      edit,
      after: delta.EMPTY,
      echoed: false,
      stale: false,
      settle: () => settle(),
    };
    this.inFlight = inFlight;
    this.applying.fire();
    let applied = false;
    try {
      applied = await this.applyToEditor(edit);
    } catch {
      applied = false;
    }
    if (applied && !inFlight.echoed && !inFlight.stale && !this.disposed) {
      // Accepted: its change event is on its way (no other event can come first). Waiting for
      // it has no time limit: giving up would apply the edit a second time.
      await settled;
    }
    this.inFlight = undefined;
    if (this.disposed) return;
    if (inFlight.echoed) {
      this.blindRetries = 0;
      this.changed.fire('remote');
    } else if (!inFlight.stale) {
      // Refused without a local change in between (document closed, read-only editor...).
      this.blindRetries += 1;
      if (this.blindRetries > MAX_BLIND_RETRIES || this.document.isClosed) return;
      setTimeout(() => this.scheduleFlush(), Math.min(50 * this.blindRetries, 1000));
      return;
    }
    this.scheduleFlush();
  }

  /** Whether a change to the binding's text changes what it shows (line breaks compared as "\n"). */
  private changesText(change: delta.Delta): boolean {
    return !this.sameResult(change, delta.EMPTY);
  }

  /**
   * Asks VS Code to apply `edit`; false when it refuses (the document changed in between).
   * An editor showing the document takes it directly (`TextEditor.edit`: one message to the
   * renderer, applied there at once); otherwise a workspace edit (the bulk edit service, which
   * resolves the model and checks for conflicts first: slower, but needs no editor).
   */
  private applyToEditor(edit: delta.Delta): Thenable<boolean> {
    const eol = this.document.eol === vscode.EndOfLine.CRLF ? '\r\n' : '\n';
    const replacements = delta.toSplices(edit).map((splice) => {
      const start = this.text.positionAt(splice.start);
      const end = this.text.positionAt(splice.end);
      return { range: new vscode.Range(start.line, start.character, end.line, end.character), text: withEol(splice.text, eol) };
    });
    const editor = vscode.window.visibleTextEditors.find((candidate) => candidate.document === this.document);
    if (editor !== undefined && !this.isReadOnly()) {
      return editor.edit((builder) => {
        for (const { range, text } of replacements) builder.replace(range, text);
      });
    }
    const workspaceEdit = new vscode.WorkspaceEdit();
    for (const { range, text } of replacements) workspaceEdit.replace(this.document.uri, range, text);
    return vscode.workspace.applyEdit(workspaceEdit);
  }

  /**
   * Whether two changes to the binding's text leave the same text (line breaks compared as
   * "\n"): only the region either touches is compared, with one character of context on each
   * side so a "\r" + "\n" pair across its edge counts as one break.
   */
  private sameResult(a: delta.Delta, b: delta.Delta): boolean {
    const spanA = delta.span(a) ?? delta.span(b);
    const spanB = delta.span(b) ?? spanA;
    if (spanA === undefined || spanB === undefined) return true; // neither changes anything
    const from = Math.max(0, Math.min(spanA.start, spanB.start) - 1);
    const to = Math.min(this.text.length, Math.max(spanA.end, spanB.end) + 1);
    const region = this.text.slice(from, to);
    const within = (d: delta.Delta): string => toLf(delta.apply(region, delta.dropRetain(d, from)));
    return within(a) === within(b);
  }

  // -- editor -> Yjs --------------------------------------------------------------------

  private onEditorChange(changes: readonly vscode.TextDocumentContentChangeEvent[]): void {
    if (this.disposed || changes.length === 0) return;
    const lines = this.text;
    const local = delta.fromSplices(
      changes.map((change) => ({
        start: lines.offsetAt(change.range.start),
        end: lines.offsetAt(change.range.end),
        text: toLf(change.text),
      })),
    );
    const inFlight = this.inFlight;
    if (inFlight !== undefined && !inFlight.echoed && !inFlight.stale) {
      if (this.sameResult(local, inFlight.edit)) {
        applyToTree(this.text, inFlight.edit);
        this.pending = inFlight.after;
        inFlight.echoed = true;
        inFlight.settle();
        return;
      }
      inFlight.stale = true; // the user typed first: VS Code refuses the edit, it is sent again
      inFlight.settle();
    }
    this.lastLocalChangeStart = delta.span(local)?.start ?? 0;
    const toShared = delta.transform(local, this.pending, false);
    this.pending = delta.transform(this.pending, local, true);
    applyToTree(this.text, local);
    if (!delta.isEmpty(toShared)) {
      const ydoc = this.ytext.doc;
      ydoc?.transact(() => {
        let index = 0;
        for (const op of toShared) {
          if ('retain' in op) index += op.retain;
          else if ('delete' in op) this.ytext.delete(index, op.delete);
          else {
            this.ytext.insert(index, op.insert);
            index += op.insert.length;
          }
        }
      }, this);
      this.localTransactions += 1;
      this.changed.fire('local');
    }
    if (!delta.isEmpty(this.pending)) this.scheduleFlush();
  }
}

/** Applies a delta (against the tree's text) as splices, last first so earlier offsets hold. */
function applyToTree(tree: LineTree, change: delta.Delta): void {
  const splices = delta.toSplices(change);
  for (let i = splices.length - 1; i >= 0; i -= 1) {
    const splice = splices[i];
    if (splice !== undefined) tree.splice(splice.start, splice.end, splice.text);
  }
}
