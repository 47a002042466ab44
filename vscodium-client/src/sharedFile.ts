/**
 * One shared text: its hub connection, its Y.Text ("content") and, while an editor shows it,
 * the binding and the remote cursors drawn there. The local cursor is published from here.
 */
import * as vscode from 'vscode';
import * as Y from 'yjs';
import { DocumentBinding, type InitialContent } from './binding';
import { CodePointIndex } from './codePoints';
import { HubConnection } from './connection';
import { LatencyTrace } from './latencyTrace';
import { setLocalCursor, setLocalUser, type LocalUser } from './presence';
import { RemoteCursors } from './remoteCursors';
import { roomPath } from './shareLink';

export const TEXT_FIELD = 'content';

export class SharedFile implements vscode.Disposable {
  readonly connection: HubConnection;
  /** Agents' cursors (code points) to Y.Text indices, kept up to date with each change. */
  readonly codePoints: CodePointIndex;
  binding: DocumentBinding | undefined;
  private cursors: RemoteCursors | undefined;
  private readonly subscriptions: vscode.Disposable[] = [];

  constructor(
    readonly documentName: string,
    hubUrl: string,
    token: string,
    user: LocalUser,
    /** The relative path in a folder session, for presence ("file") and follow. */
    readonly path: string | undefined,
    private readonly options: { readonly traceLatency: boolean } = { traceLatency: false },
  ) {
    // gc off: deleted text stays, so a suggestion's version can be rebuilt (suggestions.ts).
    const doc = new Y.Doc({ gc: false });
    this.connection = new HubConnection({ hubUrl, document: roomPath(documentName), token, doc });
    this.codePoints = new CodePointIndex(this.ytext);
    setLocalUser(this.connection.awareness, user);
    if (path !== undefined) this.connection.awareness.setLocalStateField('file', path);
  }

  get ytext(): Y.Text {
    return this.connection.doc.getText(TEXT_FIELD);
  }

  /** Binds an editor document; the previous binding (if any) is replaced. */
  bind(document: vscode.TextDocument, initial: InitialContent): DocumentBinding {
    this.unbind();
    const binding = new DocumentBinding(document, this.ytext, initial);
    this.binding = binding;
    this.cursors = new RemoteCursors(binding, this.connection.awareness, this.codePoints);
    if (this.options.traceLatency) {
      // 'local': a keystroke reached the Y.Text (and the socket); 'received': a remote update
      // reached this Y.Text; 'applying': the editor is asked to apply it; 'remote': it is in the editor.
      // The extension host's console reaches the workbench's: the benchmark reads the batched lines.
      const trace = new LatencyTrace((line) => console.log(line));
      const received = (_event: Y.YTextEvent, transaction: Y.Transaction): void => {
        if (transaction.origin !== binding) trace.record('received');
      };
      this.ytext.observe(received);
      this.subscriptions.push(
        binding.onDidSync((direction) => trace.record(direction)),
        binding.onWillApplyRemote(() => trace.record('applying')),
        new vscode.Disposable(() => {
          this.ytext.unobserve(received);
          trace.dispose();
        }),
      );
    }
    this.subscriptions.push(
      vscode.window.onDidChangeTextEditorSelection((event) => {
        if (event.textEditor.document !== document) return;
        const selection = event.selections[0];
        if (selection === undefined) return;
        setLocalCursor(
          this.connection.awareness,
          this.ytext,
          binding.positionToYIndex(selection.anchor),
          binding.positionToYIndex(selection.active),
        );
      }),
    );
    return binding;
  }

  isBoundTo(document: vscode.TextDocument): boolean {
    return this.binding?.document === document;
  }

  unbind(): void {
    for (const subscription of this.subscriptions.splice(0)) subscription.dispose();
    this.cursors?.dispose();
    this.cursors = undefined;
    this.binding?.dispose();
    this.binding = undefined;
    this.connection.awareness.setLocalStateField('cursor', null);
  }

  dispose(): void {
    this.unbind();
    this.codePoints.dispose();
    this.connection.dispose();
  }
}
