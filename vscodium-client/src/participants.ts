/**
 * The participants commands: follow, stop following, go to. The view (presenceView.ts) and
 * the status bar menu call them with a participant or a name.
 */
import * as vscode from 'vscode';
import { Following, goTo } from './follow';
import { isParticipant, type PresenceView } from './presenceView';
import { labelOf } from './remoteCursors';
import type { SessionManager } from './sessionManager';

type Run = (name: string, action: (...args: unknown[]) => unknown) => (...args: unknown[]) => Promise<unknown>;

/** Whom a command's argument names: a participant (the view), its key, or a display name. */
function whoOf(arg: unknown): string | undefined {
  if (typeof arg === 'string') return arg;
  return isParticipant(arg) ? arg.key : undefined;
}

export function registerParticipants(
  context: vscode.ExtensionContext,
  manager: SessionManager,
  view: PresenceView,
  run: Run,
): Following {
  const following = new Following();
  const pick = async (placeHolder: string): Promise<string | undefined> =>
    (
      await vscode.window.showQuickPick(
        manager.people().filter((p) => !p.isLocal).map((p) => ({ label: labelOf(p), description: p.file, key: p.key })),
        { placeHolder },
      )
    )?.key;
  const session = (): NonNullable<SessionManager['session']> => {
    const current = manager.session;
    if (current === undefined) throw new Error('no session');
    return current;
  };
  context.subscriptions.push(
    following,
    following.onDidChange((who) => view.setFollowed(who)),
    // A new session (or none) ends the follow.
    manager.onDidChange(() => following.unfollow()),
    vscode.commands.registerCommand(
      'nova.follow',
      run('follow', async (arg?: unknown) => {
        const current = session();
        const who = whoOf(arg) ?? (await pick('Follow whom?'));
        if (who === undefined || who === '') return;
        following.follow(current, who);
      }),
    ),
    vscode.commands.registerCommand(
      'nova.unfollow',
      run('stop following', () => following.unfollow()),
    ),
    vscode.commands.registerCommand(
      'nova.goTo',
      run('go to', async (arg?: unknown) => {
        const current = session();
        const who = whoOf(arg) ?? (await pick('Go to whom?'));
        if (who === undefined) return false;
        if (!(await goTo(current, who))) {
          const name = manager.people().find((p) => p.key === who)?.name ?? who;
          throw new Error(`${name} is not in a shared file`);
        }
        return true;
      }),
    ),
  );
  return following;
}
