/**
 * The participants view ("Nova Collab" in the explorer): everyone in the session, people and
 * agents (🤖, with their model), the file each is in, and whom you follow. Clicking a
 * participant goes to their cursor; the inline actions follow, stop following, go to.
 * It refreshes only when what it shows changed (never per keystroke).
 */
import * as vscode from 'vscode';
import { participants, type Participant } from './presence';
import { labelOf } from './remoteCursors';
import type { Session } from './session';

/** Tree item context values (package.json's menus match on them). */
export const PARTICIPANT_CONTEXT = { self: 'self', other: 'participant', followed: 'participantFollowed' } as const;

/**
 * Everyone in a session: the session's presence first (people say which file they are in),
 * then whoever is only on one shared file's document (agents usually), in that file. Each
 * document connection has its own presence client, so one person is on several: they are one
 * entry by the identity their editor publishes (`user.id`), never by name (two people may
 * share one); a client without that identity is one entry per client.
 */
export function sessionParticipants(session: Pick<Session, 'presenceConnection' | 'files'>): Participant[] {
  const seen = new Set<string>();
  const result: Participant[] = [];
  const add = (participant: Participant): void => {
    if (seen.has(participant.key)) return;
    seen.add(participant.key);
    result.push(participant);
  };
  const presence = session.presenceConnection;
  if (presence !== undefined) for (const participant of participants(presence.awareness)) add(participant);
  for (const [path, file] of session.files) {
    if (file.connection === presence) continue;
    for (const participant of participants(file.connection.awareness)) add({ ...participant, file: participant.file ?? path });
  }
  return result.sort((a, b) => Number(b.isLocal) - Number(a.isLocal) || a.name.localeCompare(b.name) || a.key.localeCompare(b.key));
}

export function isParticipant(value: unknown): value is Participant {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { name?: unknown }).name === 'string' &&
    typeof (value as { key?: unknown }).key === 'string' &&
    'kind' in value
  );
}

export class PresenceView implements vscode.TreeDataProvider<Participant>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private people: Participant[] = [];
  private followed: string | undefined;
  private shown = '';

  update(people: Participant[]): void {
    this.people = people;
    this.refresh();
  }

  /** Marks whom this window follows, by participant key (undefined: nobody). */
  setFollowed(key: string | undefined): void {
    this.followed = key;
    this.refresh();
  }

  private refresh(): void {
    const shown = JSON.stringify([
      this.followed,
      this.people.map((p) => [p.key, p.name, p.kind, p.model, p.file, p.isLocal, p.color]),
    ]);
    if (shown === this.shown) return;
    this.shown = shown;
    this.changed.fire(undefined);
  }

  getChildren(element?: Participant): Participant[] {
    return element === undefined ? this.people : [];
  }

  getTreeItem(participant: Participant): vscode.TreeItem {
    const item = new vscode.TreeItem(labelOf(participant));
    item.id = participant.key;
    const following = !participant.isLocal && participant.key === this.followed;
    const role = participant.isLocal ? 'you' : following ? 'following' : participant.kind === 'agent' ? 'agent' : '';
    item.description = [role, participant.file].filter((part) => part !== undefined && part !== '').join(' · ');
    item.iconPath = new vscode.ThemeIcon(following ? 'eye' : participant.kind === 'agent' ? 'hubot' : 'account');
    item.tooltip = `${participant.name} (${participant.kind}${participant.model !== undefined ? `, ${participant.model}` : ''})${
      participant.file !== undefined ? ` in ${participant.file}` : ''
    }`;
    item.contextValue = participant.isLocal ? PARTICIPANT_CONTEXT.self : following ? PARTICIPANT_CONTEXT.followed : PARTICIPANT_CONTEXT.other;
    if (!participant.isLocal) {
      item.command = { command: 'nova.goTo', title: 'Go to', arguments: [participant.key] };
    }
    return item;
  }

  dispose(): void {
    this.changed.dispose();
  }
}
