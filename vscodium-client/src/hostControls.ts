/**
 * Host controls and the shared terminal, wired to the session manager.
 *   Host: opens the session's lobby on the hub, is asked about each joiner (allow editing,
 *   allow read-only, refuse), removes guests, ends the session for everyone, shares a
 *   terminal and chooses the one guest who may type in it.
 *   Guest: without a token of its own, asks the host to let it in and waits for the answer;
 *   the token the hub mints for it is kept for rejoins (checked with the hub first); being
 *   removed or the session's end is explained; the host's shared terminal opens by itself.
 * The hub enforces every decision (collab_server/session_lobby.py); this is the editor's side.
 */
import * as vscode from 'vscode';
import { commandRunner } from './commandRunner';
import { GuestSession } from './guestSession';
import { HostSession } from './hostSession';
import type { Session } from './session';
import { HubApiError, SessionApi, httpBase, type Guest } from './sessionApi';
import type { SessionManager } from './sessionManager';
import type { Settings } from './settings';
import { GuestTerminal, HostTerminal } from './sharedTerminal';
import { manifestDocument } from './manifest';
import type { JoinTarget } from './shareLink';

const POLL_MS = 1000;
const ANSWER_POLL_MS = 500;
const ANSWER_WAIT_MS = 5 * 60_000;
const ADMISSION_KEY = 'nova.admission.';

interface Admission {
  readonly token: string;
  readonly participant: string;
  readonly at: number;
}

/** The host's lobby: join requests become questions; guests and the terminal are managed here. */
class HostLobby implements vscode.Disposable {
  private readonly asked = new Set<string>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private polling = false;
  terminal: HostTerminal | undefined;

  constructor(
    readonly session: HostSession,
    readonly api: SessionApi,
    private readonly log: vscode.OutputChannel,
  ) {}

  async start(): Promise<void> {
    try {
      await this.api.open();
    } catch (error) {
      this.log.appendLine(`host controls unavailable: ${String(error)}`);
      return;
    }
    this.timer = setInterval(() => void this.poll(), POLL_MS);
  }

  private async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      for (const request of await this.api.pending()) {
        if (this.asked.has(request.id)) continue;
        this.asked.add(request.id);
        void this.ask(request.id, request.name);
      }
    } catch (error) {
      if (error instanceof HubApiError && error.code === 'unknown_session') await this.api.open().catch(() => undefined);
      else this.log.appendLine(`join requests: ${String(error)}`);
    } finally {
      this.polling = false;
    }
  }

  private async ask(request: string, name: string): Promise<void> {
    const answer = await vscode.window.showInformationMessage(
      `Nova Collab: ${name} asks to join ${this.session.folder.name}.`,
      'Allow editing',
      'Allow read-only',
      'Refuse',
    );
    try {
      if (answer === 'Allow editing') await this.api.approve(request, 'write');
      else if (answer === 'Allow read-only') {
        this.session.serveReadOnlyGuests();
        await this.api.approve(request, 'read');
      }
      else if (answer === 'Refuse') await this.api.refuse(request);
      else this.asked.delete(request); // dismissed: asked again at the next poll
      if (answer !== undefined) this.log.appendLine(`join request of ${name}: ${answer}`);
    } catch (error) {
      void vscode.window.showErrorMessage(`Nova Collab: could not answer ${name}: ${String(error)}`);
    }
  }

  shareTerminal(): HostTerminal {
    if (this.terminal === undefined) {
      this.terminal = new HostTerminal(this.session.id, this.session.settings, this.session.folder.uri.fsPath);
      this.session.manifest.session.set('terminal', 'shared');
    }
    this.terminal.terminal.show();
    return this.terminal;
  }

  dispose(): void {
    clearInterval(this.timer);
    this.terminal?.dispose();
    this.terminal = undefined;
  }
}

/** Registers the host-control commands; returns the guest's admission step for "join". */
export function registerHostControls(
  context: vscode.ExtensionContext,
  manager: SessionManager,
  log: vscode.OutputChannel,
): { admit(settings: Settings, target: JoinTarget): Promise<Settings> } {
  let lobby: HostLobby | undefined;
  let guestTerminal: GuestTerminal | undefined;
  let watching: vscode.Disposable | undefined;
  const state = context.globalState;
  const admissionOf = (session: string): Admission | undefined => state.get<Admission>(ADMISSION_KEY + session);

  const onSession = (session: Session | undefined): void => {
    lobby?.dispose();
    lobby = undefined;
    guestTerminal?.dispose();
    guestTerminal = undefined;
    watching?.dispose();
    watching = undefined;
    if (session instanceof HostSession) {
      lobby = new HostLobby(session, new SessionApi(session.settings.hubUrl, session.id, session.settings.token), log);
      void lobby.start();
    } else if (session instanceof GuestSession) {
      watching = watchGuest(session);
    }
  };

  const watchGuest = (session: GuestSession): vscode.Disposable => {
    const api = new SessionApi(session.settings.hubUrl, session.id, session.settings.token);
    const openTerminal = (): void => {
      if (guestTerminal !== undefined || session.manifest.session.get('terminal') !== 'shared') return;
      const host = session.manifest.session.get('host') ?? 'the host';
      guestTerminal = new GuestTerminal(session.id, session.settings, admissionOf(session.id)?.participant, () => api.terminalToken(), log, host);
    };
    session.manifest.session.observe(openTerminal);
    openTerminal();
    let told = false;
    const subscription = session.onDidChange(() => {
      const connection = session.manifestConnection;
      if (told || connection.state !== 'refused' || connection.refusal?.code !== 4498) return;
      // Removed, or the session ended. The stored token stays: a rejoin shows it to the hub,
      // which refuses it, and then asks the host again.
      told = true;
      guestTerminal?.dispose();
      guestTerminal = undefined;
    });
    return new vscode.Disposable(() => {
      session.manifest.session.unobserve(openTerminal);
      subscription.dispose();
    });
  };

  const requireLobby = (): HostLobby => {
    if (lobby === undefined) throw new Error('only the host of a shared folder can do this: start a session first');
    return lobby;
  };

  const pickGuest = async (api: SessionApi, nameArg: unknown, placeHolder: string): Promise<Guest | undefined> => {
    const guests = await api.guests();
    if (guests.length === 0) throw new Error('no guest has joined through a request');
    if (typeof nameArg === 'string') {
      const found = guests.find((g) => g.name === nameArg || g.id === nameArg);
      if (found === undefined) throw new Error(`no guest named ${nameArg}`);
      return found;
    }
    const picked = await vscode.window.showQuickPick(
      guests.map((g) => ({ label: g.name, description: g.role === 'read' ? 'read-only' : 'can edit', guest: g })),
      { placeHolder },
    );
    return picked?.guest;
  };

  const run = commandRunner(log);

  context.subscriptions.push(
    manager.onDidChange(onSession),
    new vscode.Disposable(() => onSession(undefined)),
    vscode.commands.registerCommand(
      'nova.removeParticipant',
      run('remove participant', async (nameArg?: unknown) => {
        const host = requireLobby();
        const guest = await pickGuest(host.api, nameArg, 'Remove whom from the session?');
        if (guest === undefined) return;
        await host.api.remove(guest.id);
        if (guest.terminal) host.terminal?.setWriter(undefined, undefined);
        void vscode.window.showInformationMessage(`Nova Collab: ${guest.name} was removed; their token is revoked.`);
      }),
    ),
    vscode.commands.registerCommand(
      'nova.endSession',
      run('end session', async (confirmArg?: unknown) => {
        const host = requireLobby();
        const confirmed =
          confirmArg === true ||
          (await vscode.window.showQuickPick(['End the session for everyone', 'Cancel'], { placeHolder: 'End the shared session?' })) ===
            'End the session for everyone';
        if (!confirmed) return;
        await host.api.end();
        manager.leave();
        void vscode.window.showInformationMessage('Nova Collab: the session has ended for everyone.');
      }),
    ),
    vscode.commands.registerCommand(
      'nova.shareTerminal',
      run('share terminal', () => {
        requireLobby().shareTerminal();
      }),
    ),
    vscode.commands.registerCommand(
      'nova.terminalWriteAccess',
      run('terminal write access', async (nameArg?: unknown) => {
        const host = requireLobby();
        const nobody = 'Nobody (read-only for every guest)';
        let guest: Guest | undefined;
        if (nameArg === null || nameArg === nobody) guest = undefined;
        else if (typeof nameArg === 'string') guest = await pickGuest(host.api, nameArg, '');
        else {
          const guests = await host.api.guests();
          const picked = await vscode.window.showQuickPick(
            [...guests.map((g) => ({ label: g.name, guest: g as Guest | undefined })), { label: nobody, guest: undefined }],
            { placeHolder: 'Who may type in the shared terminal?' },
          );
          if (picked === undefined) return;
          guest = picked.guest;
        }
        const terminal = host.shareTerminal();
        await host.api.setTerminalWriter(guest?.id);
        terminal.setWriter(guest?.id, guest?.name);
        void vscode.window.showInformationMessage(
          guest === undefined ? 'Nova Collab: the shared terminal is read-only for every guest.' : `Nova Collab: ${guest.name} may type in the shared terminal.`,
        );
      }),
    ),
  );

  /** A guest without a token of its own asks the host; a stored token is checked with the hub first. */
  const admit = async (settings: Settings, target: JoinTarget): Promise<Settings> => {
    if (target.kind !== 'session' || settings.token !== '') return settings;
    const stored = admissionOf(target.name);
    if (stored !== undefined) {
      const status = await fetch(
        `${httpBase(settings.hubUrl)}/api/documents/${encodeURIComponent(manifestDocument(target.name))}/status`,
        { headers: { authorization: `Bearer ${stored.token}` }, signal: AbortSignal.timeout(10_000) },
      ).catch(() => undefined);
      if (status === undefined || (status.status !== 401 && status.status !== 403)) return { ...settings, token: stored.token };
      log.appendLine(`the hub refused the stored token for ${target.name} (HTTP ${status.status}): asking the host again`);
      await state.update(ADMISSION_KEY + target.name, undefined);
    }
    const api = new SessionApi(settings.hubUrl, target.name, '');
    const asked = await api.ask(settings.user.name);
    if (asked.status === 'open') return settings; // the hub runs without auth
    const answer = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'Nova Collab: waiting for the host to let you in…', cancellable: true },
      async (_progress, cancelled) => {
        const deadline = Date.now() + ANSWER_WAIT_MS;
        while (!cancelled.isCancellationRequested && Date.now() < deadline) {
          const reply = await api.answer(asked.request, asked.key);
          if (reply.status !== 'pending') return reply;
          await new Promise((resolve) => setTimeout(resolve, ANSWER_POLL_MS));
        }
        return undefined;
      },
    );
    if (answer === undefined) throw new Error('the host did not answer your request to join');
    if (answer.status !== 'approved') throw new Error('the host refused your request to join');
    await state.update(ADMISSION_KEY + target.name, { token: answer.token, participant: answer.participant, at: Date.now() });
    return { ...settings, token: answer.token };
  };

  return { admit };
}
