/**
 * Keeps the open editors of shared files as writable as the local user now is: a guest let
 * back in with write access can type in the editor that was read-only, and one made read-only
 * cannot type any more, without reopening anything or restarting.
 *
 * VS Code decides an editor's read-only state once, from the file system provider's stat, and
 * keeps it while the document is dirty (a guest's shared documents usually are: remote edits
 * make them so), so a changed stat alone does not reach an open editor. A session override does
 * (the workbench's "Set Active Editor Writeable / Read-only in Session"), so each open editor
 * whose state changed gets one, and the editor that was active is made active again.
 */
import * as vscode from 'vscode';

const SET_READ_ONLY = 'workbench.action.files.setActiveEditorReadonlyInSession';
const SET_WRITEABLE = 'workbench.action.files.setActiveEditorWriteableInSession';

export class EditorAccess implements vscode.Disposable {
  /**
   * What the open document of a URI shows: read-only or not. The first stat after the document
   * opened (later stats may not reach a dirty document), then the overrides set here.
   */
  private readonly told = new Map<string, boolean>();
  /** URIs with a session override: VS Code prefers it to any stat, for every later document too. */
  private readonly overridden = new Set<string>();
  private queue: Promise<void> = Promise.resolve();
  private disposed = false;
  private readonly subscriptions: vscode.Disposable[] = [];

  constructor(private readonly log: vscode.OutputChannel) {
    this.subscriptions.push(
      // A document opened again is read-only or not from the stat it is opened with.
      vscode.workspace.onDidCloseTextDocument((document) => {
        const key = document.uri.toString();
        if (!this.overridden.has(key)) this.told.delete(key);
      }),
    );
  }

  /** The file system provider reports each stat it answers. */
  stated(uri: vscode.Uri, readOnly: boolean): void {
    const key = uri.toString();
    if (!this.overridden.has(key) && !this.told.has(key)) this.told.set(key, readOnly);
  }

  /**
   * Brings every open editor of a `nova:` file whose access changed in line with
   * `readOnlyOf` (undefined: not this session's file, left alone). Calls run one at a time.
   */
  sync(readOnlyOf: (uri: vscode.Uri) => boolean | undefined): Promise<void> {
    this.queue = this.queue.then(() => this.apply(readOnlyOf)).catch((error: unknown) => {
      this.log.appendLine(`editor access: ${String(error)}`);
    });
    return this.queue;
  }

  private async apply(readOnlyOf: (uri: vscode.Uri) => boolean | undefined): Promise<void> {
    const changed: { uri: vscode.Uri; column: vscode.ViewColumn; preview: boolean; readOnly: boolean }[] = [];
    for (const group of vscode.window.tabGroups.all) {
      for (const tab of group.tabs) {
        if (!(tab.input instanceof vscode.TabInputText) || tab.input.uri.scheme !== 'nova') continue;
        const uri = tab.input.uri;
        const readOnly = readOnlyOf(uri);
        const told = this.told.get(uri.toString());
        if (readOnly === undefined || told === undefined || told === readOnly) continue;
        changed.push({ uri, column: group.viewColumn, preview: tab.isPreview, readOnly });
      }
    }
    if (changed.length === 0 || this.disposed) return;
    const active = vscode.window.activeTextEditor;
    for (const { uri, column, preview, readOnly } of changed) {
      const document = await vscode.workspace.openTextDocument(uri);
      await vscode.window.showTextDocument(document, { viewColumn: column, preview, preserveFocus: false });
      await vscode.commands.executeCommand(readOnly ? SET_READ_ONLY : SET_WRITEABLE);
      this.told.set(uri.toString(), readOnly);
      this.overridden.add(uri.toString());
      this.log.appendLine(`${uri.toString()} is ${readOnly ? 'read-only' : 'writable'} for you now`);
    }
    if (active !== undefined && !active.document.isClosed) {
      await vscode.window.showTextDocument(active.document, { viewColumn: active.viewColumn, preserveFocus: false });
    }
  }

  dispose(): void {
    this.disposed = true;
    for (const subscription of this.subscriptions) subscription.dispose();
  }
}
