/** Following a participant: the editor goes to the file they are in and keeps their cursor in view. */
import * as vscode from 'vscode';
import { participants, type Participant } from './presence';
import type { Session } from './session';

export class Follower implements vscode.Disposable {
  private readonly subscription: vscode.Disposable;
  private lastFile: string | undefined;
  private opening = false;

  constructor(
    private readonly session: Session,
    readonly name: string,
  ) {
    this.subscription = session.onDidChange(() => void this.step());
    void this.step();
  }

  private find(connection = this.session.presenceConnection): Participant | undefined {
    if (connection === undefined) return undefined;
    return participants(connection.awareness).find((p) => !p.isLocal && p.name === this.name);
  }

  private async step(): Promise<void> {
    if (this.opening) return;
    const where = this.find();
    const path = where?.file ?? (this.session.files.size === 1 ? [...this.session.files.keys()][0] : undefined);
    if (path === undefined) return;
    const uri = this.session.uriOf(path);
    if (uri === undefined) return;
    if (path !== this.lastFile) {
      this.lastFile = path;
      this.opening = true;
      try {
        await vscode.window.showTextDocument(uri, { preview: true, preserveFocus: false });
      } finally {
        this.opening = false;
      }
    }
    const file = this.session.files.get(path);
    const binding = file?.binding;
    if (file === undefined || binding === undefined) return;
    const them = participants(file.connection.awareness, file.ytext).find((p) => !p.isLocal && p.name === this.name);
    if (them?.cursor === undefined) return;
    const head = binding.yIndexToPosition(them.cursor.head);
    for (const editor of vscode.window.visibleTextEditors) {
      if (editor.document === binding.document) {
        editor.revealRange(new vscode.Range(head, head), vscode.TextEditorRevealType.InCenterIfOutsideViewport);
      }
    }
  }

  dispose(): void {
    this.subscription.dispose();
  }
}
