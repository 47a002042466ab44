/**
 * The one live session of this window: starting, joining and leaving it, attaching editor
 * documents to it, and keeping the status bar, the presence view and messages up to date.
 */
import * as vscode from 'vscode';
import { GuestSession } from './guestSession';
import { HostSession } from './hostSession';
import type { Participant } from './presence';
import { sessionParticipants, type PresenceView } from './presenceView';
import { DocumentSession, type Session } from './session';
import type { StatusBar } from './statusBar';

export class SessionManager implements vscode.Disposable {
  private current: Session | undefined;
  private readonly subscriptions: vscode.Disposable[] = [];
  private readonly told = new Set<string>();
  private readonly changed = new vscode.EventEmitter<Session | undefined>();
  readonly onDidChange = this.changed.event;

  constructor(
    private readonly statusBar: StatusBar,
    private readonly presenceView: PresenceView,
    private readonly log: vscode.OutputChannel,
  ) {
    this.subscriptions.push(
      vscode.workspace.onDidOpenTextDocument((document) => void this.attach(document)),
      vscode.window.onDidChangeActiveTextEditor((editor) => this.onActiveEditor(editor)),
    );
  }

  get session(): Session | undefined {
    return this.current;
  }

  sessionById(id: string): Session | undefined {
    return this.current?.id === id ? this.current : undefined;
  }

  /** The session `id` once it is live (a rejoin after a restart takes a moment), or undefined. */
  async waitForSession(id: string, timeoutMs: number): Promise<Session | undefined> {
    const found = this.sessionById(id);
    if (found !== undefined || timeoutMs <= 0) return found;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        subscription.dispose();
        resolve(undefined);
      }, timeoutMs);
      const subscription = this.onDidChange((session) => {
        if (session?.id !== id) return;
        clearTimeout(timer);
        subscription.dispose();
        resolve(session);
      });
    });
  }

  async begin<T extends Session>(session: T, start: (session: T) => Promise<unknown>): Promise<T> {
    this.leave();
    this.current = session;
    session.onDidChange(() => this.refresh(session));
    this.refresh(session);
    try {
      await start(session);
    } catch (error) {
      if (this.current === session) this.leave();
      throw error;
    }
    for (const document of vscode.workspace.textDocuments) void this.attach(document);
    this.onActiveEditor(vscode.window.activeTextEditor);
    this.changed.fire(session);
    return session;
  }

  leave(): void {
    const session = this.current;
    if (session === undefined) return;
    this.current = undefined;
    session.dispose();
    this.told.clear();
    this.refresh(undefined);
    this.changed.fire(undefined);
  }

  people(): Participant[] {
    return this.current === undefined ? [] : sessionParticipants(this.current);
  }

  private async attach(document: vscode.TextDocument): Promise<void> {
    const session = this.current;
    if (session === undefined) return;
    try {
      const file = await session.attach(document);
      if (file !== undefined) this.log.appendLine(`bound ${document.uri.toString()} to ${file.documentName}`);
    } catch (error) {
      this.log.appendLine(`could not bind ${document.uri.toString()}: ${String(error)}`);
    }
  }

  private onActiveEditor(editor: vscode.TextEditor | undefined): void {
    const session = this.current;
    if (session === undefined || editor === undefined) return;
    let path: string | undefined;
    if (session instanceof HostSession || session instanceof GuestSession) path = session.pathOf(editor.document.uri);
    else if (session instanceof DocumentSession) path = session.documentName;
    session.setActivePath(path);
  }

  private refresh(session: Session | undefined): void {
    const connections = session?.connections() ?? [];
    const people = this.people();
    this.statusBar.show(session?.title, connections, people.length);
    this.presenceView.update(people);
    for (const connection of connections) {
      if (connection.state === 'refused' && connection.refusal !== undefined) {
        this.tell(`refused:${connection.options.document}`, () =>
          void vscode.window.showErrorMessage(`Nova Collab: ${connection.refusal?.message ?? 'refused'}`),
        );
      }
      if (connection.readOnlyReason !== undefined) {
        this.tell(`read-only:${connection.options.document}`, () =>
          void vscode.window.showWarningMessage(
            `Nova Collab: this document is read-only for you (${connection.readOnlyReason ?? ''}); your edits are not shared.`,
          ),
        );
      }
    }
  }

  private tell(key: string, show: () => void): void {
    if (this.told.has(key)) return;
    this.told.add(key);
    show();
  }

  dispose(): void {
    this.leave();
    for (const subscription of this.subscriptions) subscription.dispose();
    this.changed.dispose();
  }
}
