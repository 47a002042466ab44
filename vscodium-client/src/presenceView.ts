/** The "Nova Collab" view in the explorer: who is in the session (people and agents) and where. */
import * as vscode from 'vscode';
import type { Participant } from './presence';
import { labelOf } from './remoteCursors';

export class PresenceView implements vscode.TreeDataProvider<Participant>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private people: Participant[] = [];

  update(people: Participant[]): void {
    this.people = people;
    this.changed.fire(undefined);
  }

  getChildren(element?: Participant): Participant[] {
    return element === undefined ? this.people : [];
  }

  getTreeItem(participant: Participant): vscode.TreeItem {
    const item = new vscode.TreeItem(labelOf(participant));
    const where = participant.file !== undefined ? ` · ${participant.file}` : '';
    item.description = `${participant.isLocal ? 'you' : participant.kind}${where}`;
    item.iconPath = new vscode.ThemeIcon(participant.kind === 'agent' ? 'hubot' : 'account');
    item.tooltip = `${participant.name} (${participant.kind}${participant.model !== undefined ? `, ${participant.model}` : ''})`;
    if (!participant.isLocal) {
      item.command = { command: 'nova.follow', title: 'Follow', arguments: [participant.name] };
    }
    return item;
  }

  dispose(): void {
    this.changed.dispose();
  }
}
