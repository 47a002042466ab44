/**
 * The shared terminal, read-only first. The host runs a shell in a pseudoterminal; its output
 * goes to the hub document "nova-session/<id>-terminal" (a Y.Text capped at SCROLLBACK_CHARS,
 * oldest output dropped) and guests watch it in their own pseudoterminal. The one guest the
 * host lets type appends keystrokes to "nova-session/<id>-terminal-input" with a token the hub
 * mints only for that guest; anyone else's keystrokes are refused by the hub (no grant), and
 * the guest's terminal says so.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import type * as Y from 'yjs';
import { HubConnection } from './connection';
import { manifestDocument } from './manifest';
import { roomPath } from './shareLink';
import { TEXT_FIELD } from './sharedFile';
import type { Settings } from './settings';

export const SCROLLBACK_CHARS = 100_000;
const MAX_PENDING_INPUT = 4096;
const INPUT_SYNC_MS = 15_000;
/** The size the shell starts with, until the host's terminal panel says its own. */
const COLUMNS = 120;
const ROWS = 32;

export interface TerminalSize {
  readonly columns: number;
  readonly rows: number;
}

/** The shared size in the output document's meta (the host writes it; guests' views follow it). */
export function sizeOf(meta: Y.Map<unknown>): TerminalSize | undefined {
  const columns = meta.get('columns');
  const rows = meta.get('rows');
  return typeof columns === 'number' && typeof rows === 'number' && columns > 0 && rows > 0 ? { columns, rows } : undefined;
}

export function terminalDocument(session: string): string {
  return `${manifestDocument(session)}-terminal`;
}

export function terminalInputDocument(session: string): string {
  return `${manifestDocument(session)}-terminal-input`;
}

/** Appends to a capped scrollback: the oldest characters go once the cap is passed by a tenth. */
export function appendCapped(text: Y.Text, chunk: string, cap = SCROLLBACK_CHARS): void {
  const doc = text.doc;
  const apply = (): void => {
    text.insert(text.length, chunk);
    if (text.length > cap + cap / 10) text.delete(0, text.length - cap);
  };
  if (doc === null) apply();
  else doc.transact(apply);
}

/** The inserted strings of a Y.Text event (a terminal only ever appends, or trims its start). */
export function insertedText(delta: readonly { insert?: unknown }[]): string {
  return delta.map((part) => (typeof part.insert === 'string' ? part.insert : '')).join('');
}

/** The host's shell: a real pty through util-linux `script` where there is one, else pipes with local echo. */
class Shell implements vscode.Disposable {
  private readonly process: ChildProcess;
  readonly lineMode: boolean;
  private line = '';
  /** Where the pty's name is written (its size is set through it: `stty -F`). */
  private readonly ttyFile: string;
  private tty: string | undefined;
  private wanted: TerminalSize | undefined;

  constructor(cwd: string, onOutput: (text: string) => void, onExit: (code: number | null) => void) {
    const shell = process.env.SHELL ?? (process.platform === 'win32' ? 'cmd.exe' : '/bin/sh');
    const script = '/usr/bin/script';
    this.lineMode = !(process.platform === 'linux' && existsSync(script));
    this.ttyFile = join(tmpdir(), `nova-terminal-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
    const env = { ...process.env, TERM: 'xterm-256color', COLUMNS: String(COLUMNS), LINES: String(ROWS), NOVA_TTY_FILE: this.ttyFile };
    this.process = this.lineMode
      ? spawn(shell, process.platform === 'win32' ? [] : ['-i'], { cwd, env })
      : spawn(
          script,
          ['-qfc', `stty cols ${COLUMNS} rows ${ROWS} 2>/dev/null; tty > "$NOVA_TTY_FILE"; exec "${shell}"`, '/dev/null'],
          { cwd, env },
        );
    const decoder = new TextDecoder();
    const out = (data: Buffer): void => {
      if (this.wanted !== undefined) this.applySize();
      const text = decoder.decode(data, { stream: true });
      onOutput(this.lineMode ? text.replace(/\r?\n/g, '\r\n') : text);
    };
    this.process.stdout?.on('data', out);
    this.process.stderr?.on('data', out);
    this.process.on('exit', onExit);
  }

  /** Keystrokes, local or a guest's. Line mode echoes them and sends whole lines. */
  input(data: string, echo: (text: string) => void): void {
    if (!this.lineMode) {
      this.process.stdin?.write(data);
      return;
    }
    for (const char of data) {
      if (char === '\r' || char === '\n') {
        echo('\r\n');
        this.process.stdin?.write(`${this.line}\n`);
        this.line = '';
      } else if (char === '\x7f' || char === '\b') {
        if (this.line !== '') echo('\b \b');
        this.line = this.line.slice(0, -1);
      } else if (char === '\x03') {
        this.process.kill('SIGINT');
      } else if (char >= ' ') {
        this.line += char;
        echo(char);
      }
    }
  }

  /**
   * The pty's new size: the kernel tells the shell and what runs in it (SIGWINCH), so full-screen
   * programs redraw and lines wrap where the host's terminal wraps them. (Line mode has no pty.)
   */
  resize(size: TerminalSize): void {
    if (this.lineMode) return;
    this.wanted = size;
    this.applySize();
  }

  /** Sets the wanted size once the pty is known (the shell writes its name as it starts). */
  private applySize(): void {
    const size = this.wanted;
    if (size === undefined) return;
    if (this.tty === undefined) {
      try {
        this.tty = readFileSync(this.ttyFile, 'utf8').trim();
      } catch {
        return; // still starting: tried again at its first output
      }
    }
    this.wanted = undefined;
    execFile('stty', ['-F', this.tty, 'cols', String(size.columns), 'rows', String(size.rows)], () => undefined);
  }

  dispose(): void {
    this.process.kill();
    rmSync(this.ttyFile, { force: true });
  }
}

/** The host's side: runs the shell, publishes its output, takes the writer's keystrokes. */
export class HostTerminal implements vscode.Disposable {
  readonly output: HubConnection;
  readonly input: HubConnection;
  private readonly shell: Shell;
  private readonly written = new vscode.EventEmitter<string>();
  private readonly closed = new vscode.EventEmitter<void>();
  readonly terminal: vscode.Terminal;
  private disposed = false;

  constructor(session: string, settings: Settings, cwd: string) {
    this.output = new HubConnection({ hubUrl: settings.hubUrl, document: roomPath(terminalDocument(session)), token: settings.token });
    this.input = new HubConnection({ hubUrl: settings.hubUrl, document: roomPath(terminalInputDocument(session)), token: settings.token });
    const scrollback = this.output.doc.getText(TEXT_FIELD);
    const show = (text: string): void => {
      this.written.fire(text);
      appendCapped(scrollback, text);
    };
    this.shell = new Shell(cwd, show, (code) => {
      show(`\r\n[shell exited${code === null ? '' : ` with ${code}`}]\r\n`);
      this.closed.fire();
    });
    const keystrokes = this.input.doc.getText(TEXT_FIELD);
    keystrokes.observe((event, transaction) => {
      if (transaction.local) return;
      this.shell.input(insertedText(event.delta), show);
      // Consumed keystrokes go (the writer only appends, so nothing unread is dropped).
      if (keystrokes.length > MAX_PENDING_INPUT) this.input.doc.transact(() => keystrokes.delete(0, keystrokes.length));
    });
    const meta = this.output.doc.getMap<unknown>('meta');
    const pty: vscode.Pseudoterminal = {
      onDidWrite: this.written.event,
      onDidClose: this.closed.event,
      open: (initial) => {
        if (initial !== undefined) resize(initial);
      },
      close: () => this.dispose(),
      handleInput: (data) => this.shell.input(data, show),
      // The host's panel decides the shared size: the shell's pty follows it, guests' views too.
      setDimensions: (dimensions) => resize(dimensions),
    };
    const resize = (dimensions: vscode.TerminalDimensions): void => {
      const size = { columns: dimensions.columns, rows: dimensions.rows };
      const shared = sizeOf(meta);
      if (shared?.columns === size.columns && shared.rows === size.rows) return;
      this.shell.resize(size);
      this.output.doc.transact(() => {
        meta.set('columns', size.columns);
        meta.set('rows', size.rows);
      });
    };
    this.terminal = vscode.window.createTerminal({ name: 'Nova: shared terminal', pty });
    this.terminal.show();
  }

  /** Tells guests who may type (the hub enforces it with the writer's own token). */
  setWriter(participant: string | undefined, name: string | undefined): void {
    const meta = this.output.doc.getMap<string | null>('meta');
    this.output.doc.transact(() => {
      meta.set('writer', participant ?? null);
      meta.set('writerName', name ?? null);
    });
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.terminal.dispose();
    this.shell.dispose();
    this.output.dispose();
    this.input.dispose();
    this.written.dispose();
    this.closed.dispose();
  }
}

/** A guest's view: the host's output live; keystrokes go to the hub, which lets only the writer's through. */
export class GuestTerminal implements vscode.Disposable {
  readonly output: HubConnection;
  private input: HubConnection | undefined;
  private inputAsWriter = false;
  private readonly written = new vscode.EventEmitter<string>();
  readonly terminal: vscode.Terminal;
  private opened = false;
  private typing: Promise<void> = Promise.resolve();
  private inputReady: Promise<boolean> = Promise.resolve(false);

  constructor(
    session: string,
    private readonly settings: Settings,
    private readonly participant: string | undefined,
    private readonly terminalToken: () => Promise<string>,
    private readonly log: vscode.OutputChannel,
    hostName: string,
  ) {
    this.output = new HubConnection({ hubUrl: settings.hubUrl, document: roomPath(terminalDocument(session)), token: settings.token });
    this.inputDocument = roomPath(terminalInputDocument(session));
    const scrollback = this.output.doc.getText(TEXT_FIELD);
    scrollback.observe((event) => {
      if (this.opened) this.written.fire(insertedText(event.delta));
    });
    const meta = this.output.doc.getMap<unknown>('meta');
    const resized = new vscode.EventEmitter<vscode.TerminalDimensions | undefined>();
    this.resized = resized;
    meta.observe(() => {
      const writer = meta.get('writer');
      this.onWriterChanged(typeof writer === 'string' ? writer : undefined);
      // The host's size: this view draws the host's lines as they are (no re-wrapping).
      const size = sizeOf(meta);
      if (size !== undefined && (size.columns !== this.size?.columns || size.rows !== this.size.rows)) {
        this.size = size;
        if (this.opened) resized.fire(size);
      }
    });
    const pty: vscode.Pseudoterminal = {
      onDidWrite: this.written.event,
      onDidOverrideDimensions: resized.event,
      open: () => {
        this.opened = true;
        this.size = sizeOf(meta);
        if (this.size !== undefined) resized.fire(this.size);
        this.written.fire(scrollback.toString());
      },
      close: () => undefined,
      // In order: the first keystroke may wait for the terminal token; the next ones queue behind it.
      handleInput: (data) => {
        this.typing = this.typing.then(() => this.type(data));
      },
    };
    this.terminal = vscode.window.createTerminal({ name: `Nova: ${hostName}'s terminal`, pty });
    this.terminal.show(true);
  }

  private readonly inputDocument: string;
  private readonly resized: vscode.EventEmitter<vscode.TerminalDimensions | undefined>;
  /** The host's terminal size, when it said. */
  private size: TerminalSize | undefined;

  get isWriter(): boolean {
    return this.participant !== undefined && this.output.doc.getMap('meta').get('writer') === this.participant;
  }

  private onWriterChanged(writer: string | undefined): void {
    const mine = writer !== undefined && writer === this.participant;
    if (mine === this.inputAsWriter) return;
    this.input?.dispose();
    this.input = undefined;
    this.inputAsWriter = false;
    this.say(mine ? 'the host lets you type in this terminal' : 'this terminal is read-only for you');
  }

  /** Keystrokes go to the hub: as the writer with the terminal token, else with the session token
   * (refused by the hub, and the terminal says so once). Each waits for the connection's sync. */
  private async type(data: string): Promise<void> {
    try {
      if (this.input === undefined || this.input.state === 'closed') {
        const writer = this.isWriter;
        const token = writer ? await this.terminalToken() : this.settings.token;
        this.input?.dispose();
        const input = new HubConnection({ hubUrl: this.settings.hubUrl, document: this.inputDocument, token });
        this.input = input;
        this.inputAsWriter = writer;
        this.inputReady = input.whenSynced(INPUT_SYNC_MS).then(
          () => true,
          (error: unknown) => {
            this.say(`the hub refused your keystrokes: ${input.refusal?.message ?? String(error)}`);
            return false;
          },
        );
      }
      const input = this.input;
      if (!(await this.inputReady) || input !== this.input) return;
      const keystrokes = input.doc.getText(TEXT_FIELD);
      keystrokes.insert(keystrokes.length, data);
    } catch (error) {
      this.log.appendLine(`terminal input: ${String(error)}`);
      this.say(`your keystrokes were not sent: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  private say(text: string): void {
    if (this.opened) this.written.fire(`\r\n\x1b[2m[Nova Collab: ${text}]\x1b[0m\r\n`);
  }

  dispose(): void {
    this.input?.dispose();
    this.output.dispose();
    this.written.dispose();
    this.resized.dispose();
    this.terminal.dispose();
  }
}
