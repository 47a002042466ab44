/**
 * Going to a participant (once) and following one (the editor goes to the file they are in
 * and keeps their cursor in view until you stop). `Following` is the one follow of a window:
 * who it is, and an event when that changes (the participants view marks them).
 */
import * as vscode from 'vscode';
import { participants, type Participant } from './presence';
import type { Session } from './session';

/**
 * Whom `who` names: a participant key (the participants view, the quick picks), else a display
 * name (a command's argument typed by hand). Keys tell same-name people apart.
 */
function matcher(session: Session, who: string): (participant: Participant) => boolean {
  const everyone = [session.presenceConnection, ...[...session.files.values()].map((file) => file.connection)];
  const byKey = everyone.some((connection) => connection !== undefined && participants(connection.awareness).some((p) => p.key === who));
  return byKey ? (p) => !p.isLocal && p.key === who : (p) => !p.isLocal && p.name === who;
}

/** The file a participant is in: what they say, or the shared file whose document they are on. */
function whereIs(session: Session, who: string): { path: string; participant: Participant | undefined } | undefined {
  const presence = session.presenceConnection;
  const isThem = matcher(session, who);
  const them = presence === undefined ? undefined : participants(presence.awareness).find(isThem);
  if (them?.file !== undefined) return { path: them.file, participant: them };
  // Agents join a file's document without saying so in the session's presence.
  for (const [path, file] of session.files) {
    const onFile = participants(file.connection.awareness).find(isThem);
    if (onFile !== undefined) return { path, participant: onFile };
  }
  if (session.files.size === 1) return { path: [...session.files.keys()][0] ?? '', participant: them };
  return undefined;
}

/** Their cursor's position in the editor showing `path`, when they have one there. */
function cursorOf(session: Session, path: string, who: string): { document: vscode.TextDocument; head: vscode.Position } | undefined {
  const file = session.files.get(path);
  const binding = file?.binding;
  if (file === undefined || binding === undefined) return undefined;
  const them = participants(file.connection.awareness, file.codePoints).find(matcher(session, who));
  if (them?.cursor === undefined) return undefined;
  return { document: binding.document, head: binding.yIndexToPosition(them.cursor.head) };
}

function reveal(document: vscode.TextDocument, head: vscode.Position, select: boolean): void {
  for (const editor of vscode.window.visibleTextEditors) {
    if (editor.document !== document) continue;
    editor.revealRange(new vscode.Range(head, head), vscode.TextEditorRevealType.InCenterIfOutsideViewport);
    if (select) editor.selection = new vscode.Selection(head, head);
  }
}

/** Opens the file `who` is in and puts the caret at theirs; false when they are nowhere to go to. */
export async function goTo(session: Session, who: string): Promise<boolean> {
  const where = whereIs(session, who);
  const uri = where === undefined ? undefined : session.uriOf(where.path);
  if (where === undefined || uri === undefined) return false;
  await vscode.window.showTextDocument(uri, { preview: true, preserveFocus: false });
  const cursor = cursorOf(session, where.path, who);
  if (cursor !== undefined) reveal(cursor.document, cursor.head, true);
  return true;
}

export class Follower implements vscode.Disposable {
  private readonly subscriptions: vscode.Disposable[];
  private lastFile: string | undefined;
  private lastLine: number | undefined;
  private opening = false;

  constructor(
    private readonly session: Session,
    /** A participant key (or a display name). */
    readonly who: string,
  ) {
    // Presence changes (they moved or switched files) and remote edits (they typed, maybe
    // onto new lines); `step` only talks to the workbench when their line or file changed.
    this.subscriptions = [session.onDidChange(() => void this.step()), session.onDidApplyRemoteEdit(() => void this.step())];
    void this.step();
  }

  private async step(): Promise<void> {
    if (this.opening) return;
    const where = whereIs(this.session, this.who);
    if (where === undefined) return;
    const uri = this.session.uriOf(where.path);
    if (uri === undefined) return;
    if (where.path !== this.lastFile) {
      this.lastFile = where.path;
      this.lastLine = undefined;
      this.opening = true;
      try {
        await vscode.window.showTextDocument(uri, { preview: true, preserveFocus: false });
      } finally {
        this.opening = false;
      }
    }
    const cursor = cursorOf(this.session, where.path, this.who);
    if (cursor === undefined || cursor.head.line === this.lastLine) return;
    this.lastLine = cursor.head.line;
    reveal(cursor.document, cursor.head, false);
  }

  dispose(): void {
    for (const subscription of this.subscriptions) subscription.dispose();
  }
}

/** Whom this window follows, if anyone. */
export class Following implements vscode.Disposable {
  private follower: Follower | undefined;
  private readonly changed = new vscode.EventEmitter<string | undefined>();
  readonly onDidChange = this.changed.event;

  /** Whom this window follows: a participant key (or a display name), if anyone. */
  get who(): string | undefined {
    return this.follower?.who;
  }

  follow(session: Session, who: string): void {
    this.follower?.dispose();
    this.follower = new Follower(session, who);
    this.changed.fire(who);
  }

  unfollow(): void {
    if (this.follower === undefined) return;
    this.follower.dispose();
    this.follower = undefined;
    this.changed.fire(undefined);
  }

  dispose(): void {
    this.follower?.dispose();
    this.follower = undefined;
    this.changed.dispose();
  }
}
