/** Activation: the nova: file system, the commands, the status bar and the presence view. */
import * as vscode from 'vscode';
import { commandRunner } from './commandRunner';
import { EditorAccess } from './editorAccess';
import { NovaFileSystem } from './fileSystemProvider';
import { GuestSession } from './guestSession';
import { registerHostControls } from './hostControls';
import { HostSession } from './hostSession';
import { registerParticipants } from './participants';
import { PresenceView } from './presenceView';
import { labelOf } from './remoteCursors';
import { DocumentSession, NOVA_SCHEME, randomId } from './session';
import { SessionManager } from './sessionManager';
import { readSettings } from './settings';
import { parseJoinInput, parseJoinQuery, shareLink, type JoinTarget } from './shareLink';
import { StatusBar } from './statusBar';
import { registerSuggestionReview } from './suggestionReview';

const PENDING_JOIN = 'nova.pendingJoin';
const RESUME_WINDOW_MS = 120_000;
const SESSION_WAIT_MS = 15_000;

/** A guest's join that added the shared folder, continued after the extension host restarted. */
function resumeJoin(
  context: vscode.ExtensionContext,
  join: (target: JoinTarget) => Promise<void>,
  log: vscode.OutputChannel,
): void {
  const pending = context.globalState.get<{ target: JoinTarget; at: number }>(PENDING_JOIN);
  if (pending === undefined) return;
  void context.globalState.update(PENDING_JOIN, undefined);
  const inWorkspace = (vscode.workspace.workspaceFolders ?? []).some(
    (folder) => folder.uri.scheme === NOVA_SCHEME && folder.uri.authority === pending.target.name,
  );
  if (!inWorkspace || Date.now() - pending.at > RESUME_WINDOW_MS) return;
  log.appendLine(`rejoining session ${pending.target.name}`);
  join(pending.target).catch((error: unknown) => log.appendLine(`rejoin failed: ${String(error)}`));
}

export function activate(context: vscode.ExtensionContext): { manager: SessionManager; activatedInMs: number } {
  const started = Date.now();
  const log = vscode.window.createOutputChannel('Nova Collab');
  const statusBar = new StatusBar();
  const presenceView = new PresenceView();
  const manager = new SessionManager(statusBar, presenceView, log);
  const hostControls = registerHostControls(context, manager, log);
  const editorAccess = new EditorAccess(log);
  const fileSystem = new NovaFileSystem(
    (id) => manager.waitForSession(id, SESSION_WAIT_MS),
    (uri, readOnly) => editorAccess.stated(uri, readOnly),
  );
  manager.onDidChange((session) => {
    if (session instanceof GuestSession) session.manifest.files.observe(() => fileSystem.refresh(session));
    if (session instanceof GuestSession || session instanceof DocumentSession) {
      // Open editors follow the user's access as it changes (let back in with write access,
      // or told read-only by the hub): no reopening, no restart.
      const syncAccess = (): void =>
        void editorAccess.sync((uri) => (uri.authority === session.id ? fileSystem.readOnlyAt(session, uri) : undefined));
      // When the hub says a file is read-only for us, VS Code re-stats it (files opened later).
      const restated = new Set<string>();
      session.onDidChange(() => {
        for (const [key, file] of session.files) {
          if (!file.connection.readOnly || restated.has(key)) continue;
          restated.add(key);
          fileSystem.changedFile(session instanceof GuestSession ? session.uriOf(key) : session.uri);
        }
        syncAccess();
      });
      syncAccess();
    }
  });

  const run = commandRunner(log);

  const join = async (target: JoinTarget): Promise<void> => {
    const settings = await hostControls.admit({ ...readSettings(), hubUrl: target.hubUrl }, target);
    if (target.kind === 'session') {
      const session = await manager.begin(new GuestSession(settings, target.name), (s) => s.start());
      const uri = session.rootUri;
      const folders = vscode.workspace.workspaceFolders ?? [];
      if (!folders.some((folder) => folder.uri.toString() === uri.toString())) {
        // The window reopens on the shared folder (the extension restarts with it): join again then.
        await context.globalState.update(PENDING_JOIN, { target, at: Date.now() });
        await vscode.commands.executeCommand('vscode.openFolder', uri, { forceReuseWindow: true });
        return;
      }
      void vscode.commands.executeCommand('workbench.view.explorer');
    } else {
      const session = await manager.begin(new DocumentSession(settings, target.name, undefined), (s) =>
        s.sharedFile.connection.whenSynced(),
      );
      await vscode.window.showTextDocument(session.uri);
    }
  };

  const copyLink = async (): Promise<string | undefined> => {
    const session = manager.session;
    if (session === undefined) throw new Error('no session: start or join one first');
    const link = shareLink(vscode.env.uriScheme, session.target);
    await vscode.env.clipboard.writeText(link);
    return link;
  };

  context.subscriptions.push(
    log,
    editorAccess,
    statusBar,
    presenceView,
    manager,
    vscode.workspace.registerFileSystemProvider(NOVA_SCHEME, fileSystem, { isCaseSensitive: true }),
    vscode.window.registerTreeDataProvider('nova.presence', presenceView),
    vscode.window.registerUriHandler({
      handleUri: (uri) => {
        const target = parseJoinQuery(uri.query, readSettings().hubUrl);
        if (target !== undefined) void run('join', () => join(target))();
      },
    }),
    vscode.commands.registerCommand(
      'nova.startSession',
      run('start session', async (folderArg?: unknown) => {
        const folders = vscode.workspace.workspaceFolders?.filter((f) => f.uri.scheme !== NOVA_SCHEME) ?? [];
        const folder =
          folderArg instanceof vscode.Uri
            ? vscode.workspace.getWorkspaceFolder(folderArg)
            : folders.length === 1
              ? folders[0]
              : await vscode.window.showWorkspaceFolderPick({ placeHolder: 'Folder to share' });
        if (folder === undefined) throw new Error('open a folder to share first');
        let count = 0;
        await manager.begin(new HostSession(readSettings(), folder), async (s) => (count = await s.start()));
        const link = await copyLink();
        void vscode.window.showInformationMessage(`Nova Collab: sharing ${count} files of ${folder.name}. Link copied: ${link}`);
        return link;
      }),
    ),
    vscode.commands.registerCommand(
      'nova.shareFile',
      run('share file', async (name?: unknown) => {
        const editor = vscode.window.activeTextEditor;
        if (editor === undefined) throw new Error('open the file to share first');
        const base = editor.document.uri.path.split('/').pop() ?? 'untitled';
        const documentName = typeof name === 'string' && name !== '' ? name : `nova-file/${randomId()}/${base}`;
        const session = await manager.begin(new DocumentSession(readSettings(), documentName, editor.document), (s) =>
          s.sharedFile.connection.whenSynced(),
        );
        await session.attach(editor.document);
        const link = await copyLink();
        void vscode.window.showInformationMessage(`Nova Collab: sharing ${base}. Link copied: ${link}`);
        return link;
      }),
    ),
    vscode.commands.registerCommand(
      'nova.join',
      run('join', async (input?: unknown) => {
        const text =
          typeof input === 'string'
            ? input
            : await vscode.window.showInputBox({
                prompt: 'Share link, document URL (ws://host:port/name) or document name',
                placeHolder: 'notes.md',
              });
        if (text === undefined) return;
        const target = parseJoinInput(text, readSettings().hubUrl);
        if (target === undefined) throw new Error('nothing to join');
        await join(target);
      }),
    ),
    vscode.commands.registerCommand(
      'nova.leave',
      run('leave', async () => {
        const session = manager.session;
        manager.leave();
        if (session instanceof GuestSession) {
          const folders = vscode.workspace.workspaceFolders ?? [];
          const index = folders.findIndex((f) => f.uri.scheme === NOVA_SCHEME && f.uri.authority === session.id);
          if (index >= 0 && folders.length === 1) await vscode.commands.executeCommand('workbench.action.closeFolder');
          else if (index >= 0) vscode.workspace.updateWorkspaceFolders(index, 1);
        }
      }),
    ),
    vscode.commands.registerCommand('nova.copyLink', run('copy link', copyLink)),
    vscode.commands.registerCommand(
      'nova.showPresence',
      run('participants', async () => {
        const people = manager.people();
        const picked = await vscode.window.showQuickPick(
          [
            ...people.map((p) => ({
              label: `$(${p.kind === 'agent' ? 'hubot' : 'account'}) ${labelOf(p)}`,
              description: p.isLocal ? 'you' : p.file,
              command: p.isLocal ? undefined : { id: 'nova.follow', args: [p.key] },
            })),
            ...(following.who !== undefined
              ? [
                  {
                    label: '$(eye-closed) Stop following',
                    description: people.find((p) => p.key === following.who)?.name ?? following.who,
                    command: { id: 'nova.unfollow', args: [] },
                  },
                ]
              : []),
            { label: '$(link) Copy share link', description: '', command: { id: 'nova.copyLink', args: [] } },
            { label: '$(debug-disconnect) Leave', description: '', command: { id: 'nova.leave', args: [] } },
          ],
          { placeHolder: manager.session?.title ?? 'Not in a session' },
        );
        if (picked?.command !== undefined) await vscode.commands.executeCommand(picked.command.id, ...picked.command.args);
      }),
    ),
  );
  const following = registerParticipants(context, manager, presenceView, run);
  registerSuggestionReview(context, manager, run, () => {
    const { token, user } = readSettings();
    return { token, actor: `human:${user.name}` };
  });
  resumeJoin(context, join, log);
  const activatedInMs = Date.now() - started;
  log.appendLine(`Nova Collab activated in ${activatedInMs} ms`);
  console.log(`Nova Collab activated in ${activatedInMs} ms`);
  return { manager, activatedInMs };
}

export function deactivate(): void {
  // Everything is in the context's subscriptions.
}
