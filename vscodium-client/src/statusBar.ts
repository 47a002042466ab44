/** The status bar item: connected / reconnecting / offline with pending edits / refused. */
import * as vscode from 'vscode';
import type { HubConnection } from './connection';

export interface StatusSummary {
  readonly text: string;
  readonly tooltip: string;
  readonly problem: boolean;
}

/** Pure: what the connections of a session add up to. */
export function summarize(title: string, connections: readonly HubConnection[]): StatusSummary {
  const refused = connections.find((c) => c.state === 'refused');
  if (refused !== undefined) {
    return { text: '$(error) Nova: refused', tooltip: refused.refusal?.message ?? 'The hub refused the connection', problem: true };
  }
  const pending = connections.reduce((sum, c) => sum + c.pendingEdits, 0);
  const down = connections.filter((c) => c.state === 'reconnecting' || c.state === 'connecting');
  if (down.length > 0) {
    if (pending > 0) {
      return {
        text: `$(cloud-offline) Nova: offline, ${pending} pending edit${pending === 1 ? '' : 's'}`,
        tooltip: `${title}: not connected; your edits are kept and merge when the hub is back`,
        problem: true,
      };
    }
    return { text: '$(sync~spin) Nova: reconnecting', tooltip: `${title}: reconnecting to the hub`, problem: true };
  }
  const readOnly = connections.find((c) => c.readOnly);
  const suffix = readOnly !== undefined ? ' (read-only)' : '';
  return { text: `$(broadcast) Nova: connected${suffix}`, tooltip: `${title}: live`, problem: readOnly !== undefined };
}

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left, 100);

  constructor() {
    this.item.command = 'nova.showPresence';
  }

  /** What is shown, so an unchanged status sends nothing to the workbench. */
  private shown: string | undefined;

  show(title: string | undefined, connections: readonly HubConnection[], people: number): void {
    if (title === undefined) {
      if (this.shown !== undefined) this.item.hide();
      this.shown = undefined;
      return;
    }
    const summary = summarize(title, connections);
    const text = people > 1 ? `${summary.text} · ${people}` : summary.text;
    const key = `${text}\n${summary.tooltip}\n${String(summary.problem)}`;
    if (key === this.shown) return;
    this.shown = key;
    this.item.text = text;
    this.item.tooltip = summary.tooltip;
    this.item.backgroundColor = summary.problem ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
    this.item.show();
  }

  dispose(): void {
    this.item.dispose();
  }
}
