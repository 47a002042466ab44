/**
 * The extension's binding, connection and presence model against a real hub, with the
 * fake vscode module standing in for the editor. Driven over stdin/stdout, one JSON
 * request per line ({id, op, ...}), one reply per line ({id, ok, result | error}),
 * by tests/test_vscode_extension.py, which puts a pycrdt client on the other side.
 */
import { createInterface } from 'node:readline';
import type * as vscode from 'vscode';
import * as Y from 'yjs';
import { DocumentBinding } from '../../src/binding';
import { CodePointIndex } from '../../src/codePoints';
import { HubConnection } from '../../src/connection';
import { NovaFileSystem } from '../../src/fileSystemProvider';
import { GuestSession } from '../../src/guestSession';
import { DocumentSession } from '../../src/session';
import { participants, setLocalCursor, setLocalUser } from '../../src/presence';
import * as fake from '../fake/vscode';

interface Editor {
  readonly document: fake.FakeTextDocument;
  readonly connection: HubConnection;
  readonly codePoints: CodePointIndex;
  binding: DocumentBinding | undefined;
}

const editors = new Map<string, Editor>();

function editor(name: unknown): Editor {
  const found = editors.get(String(name));
  if (found === undefined) throw new Error(`no editor ${String(name)}`);
  return found;
}

function ytextOf(e: Editor): Y.Text {
  return e.connection.doc.getText('content');
}

async function until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value ?? '');
}

type Request = Record<string, unknown> & { id: number; op: string };

const ops: Record<string, (request: Request) => Promise<unknown>> = {
  /** A guest's file operations on a shared folder through the nova: file system. */
  async fs_guest(request) {
    const settings = { hubUrl: String(request.hub), token: '', user: { name: 'guest', color: '#336699', kind: 'human' as const } };
    const session = new GuestSession(settings, String(request.session));
    const fileSystem = new NovaFileSystem((id) => Promise.resolve(id === session.id ? session : undefined));
    const uri = (path: string): vscode.Uri => session.uriOf(path) as unknown as vscode.Uri;
    const outcome = async (action: () => Promise<void>): Promise<string> => {
      try {
        await action();
        return 'ok';
      } catch (error) {
        return (error as { code?: string }).code ?? String(error);
      }
    };
    try {
      await session.start();
      const results: Record<string, string> = {};
      for (const step of request.steps as { op: string; from: string; to?: string; overwrite?: boolean }[]) {
        const key = `${step.op} ${step.from}${step.to === undefined ? '' : ` -> ${step.to}`}`;
        results[key] = await outcome(() =>
          step.op === 'delete'
            ? fileSystem.delete(uri(step.from))
            : fileSystem.rename(uri(step.from), uri(step.to ?? ''), { overwrite: step.overwrite === true }),
        );
      }
      return { results, files: session.manifest.paths() };
    } finally {
      session.dispose();
    }
  },
  /** A joined document through the nova: file system: its stat and a save attempt. */
  async fs_document(request) {
    const token = typeof request.token === 'string' ? request.token : '';
    const settings = { hubUrl: String(request.hub), token, user: { name: 'fs', color: '#336699', kind: 'human' as const } };
    const session = new DocumentSession(settings, String(request.document), undefined);
    try {
      const fileSystem = new NovaFileSystem((id) => Promise.resolve(id === session.id ? session : undefined));
      await session.sharedFile.connection.whenSynced();
      const stat = await fileSystem.stat(session.uri);
      let write: string;
      try {
        await fileSystem.writeFile(session.uri, new TextEncoder().encode(text(request.text)));
        write = 'accepted';
      } catch (error) {
        write = error instanceof Error ? error.message : String(error);
      }
      return { type: stat.type, permissions: stat.permissions ?? null, write, shared: session.sharedFile.ytext.toString() };
    } finally {
      session.dispose();
    }
  },
  async open(request) {
    const name = String(request.editor);
    const eol = request.eol === 'crlf' ? fake.EndOfLine.CRLF : fake.EndOfLine.LF;
    const document = fake.openDocument(`file:/${name}.txt`, text(request.text), eol);
    const connection = new HubConnection({
      hubUrl: String(request.hub),
      document: String(request.document),
      token: typeof request.token === 'string' ? request.token : undefined,
      maxBackoffMs: 500,
    });
    setLocalUser(connection.awareness, { name: request.user === undefined ? name : text(request.user), color: '#336699', kind: 'human' });
    const e: Editor = { document, connection, codePoints: new CodePointIndex(connection.doc.getText('content')), binding: undefined };
    editors.set(name, e);
    try {
      await connection.whenSynced(Number(request.timeoutMs ?? 10_000));
    } catch (error) {
      return { state: connection.state, refusal: connection.refusal ?? null, error: String(error) };
    }
    const initial = request.initial === 'fromDocument' ? 'fromDocument' : 'fromYjs';
    e.binding = new DocumentBinding(document as unknown as vscode.TextDocument, ytextOf(e), initial);
    return { clientId: connection.doc.clientID, state: connection.state };
  },
  async type(request) {
    const e = editor(request.editor);
    e.document.type(Number(request.start), Number(request.end), String(request.text));
    return e.document.getText();
  },
  async text(request) {
    const e = editor(request.editor);
    return { document: e.document.getText(), shared: ytextOf(e).toString(), inSync: e.binding?.inSync ?? false };
  },
  async wait_document(request) {
    const e = editor(request.editor);
    const started = performance.now();
    const want = String(request.text);
    await until(() => e.document.getText() === want, Number(request.timeoutMs ?? 10_000), `document ${JSON.stringify(want)}`);
    return { ms: performance.now() - started };
  },
  async wait_presence(request) {
    const e = editor(request.editor);
    const name = String(request.name);
    await until(
      () => participants(e.connection.awareness, e.codePoints).some((p) => p.name === name && (request.cursor !== true || p.cursor !== undefined)),
      Number(request.timeoutMs ?? 10_000),
      `presence of ${name}`,
    );
    return ops.presence?.(request);
  },
  async presence(request) {
    const e = editor(request.editor);
    const binding = e.binding;
    return participants(e.connection.awareness, e.codePoints).map((p) => ({
      ...p,
      // Where the editor draws the cursor: (line, character) in the document.
      position:
        p.cursor === undefined || binding === undefined
          ? null
          : { anchor: binding.yIndexToPosition(p.cursor.anchor), head: binding.yIndexToPosition(p.cursor.head) },
    }));
  },
  async set_cursor(request) {
    const e = editor(request.editor);
    const binding = e.binding;
    if (binding === undefined) throw new Error('not bound');
    const anchor = binding.offsetToYIndex(Number(request.anchor));
    const head = binding.offsetToYIndex(Number(request.head ?? request.anchor));
    setLocalCursor(e.connection.awareness, ytextOf(e), anchor, head);
    return null;
  },
  async disconnect(request) {
    editor(request.editor).connection.disconnect();
    return null;
  },
  async reconnect(request) {
    const e = editor(request.editor);
    e.connection.reconnect();
    await e.connection.whenSynced(Number(request.timeoutMs ?? 10_000));
    return null;
  },
  async status(request) {
    const c = editor(request.editor).connection;
    return { state: c.state, pendingEdits: c.pendingEdits, refusal: c.refusal ?? null, readOnly: c.readOnlyReason ?? null };
  },
  async wait_status(request) {
    const c = editor(request.editor).connection;
    await until(() => c.state === request.state, Number(request.timeoutMs ?? 10_000), `state ${String(request.state)}`);
    return ops.status?.(request);
  },
  async close(request) {
    const e = editor(request.editor);
    e.binding?.dispose();
    e.connection.dispose();
    editors.delete(String(request.editor));
    return null;
  },
};

const lines = createInterface({ input: process.stdin });
const write = (reply: unknown): void => void process.stdout.write(`${JSON.stringify(reply)}\n`);
lines.on('line', (line) => {
  const request = JSON.parse(line) as Request;
  const op = ops[request.op];
  if (op === undefined) {
    write({ id: request.id, ok: false, error: `unknown op ${request.op}` });
    return;
  }
  op(request).then(
    (result) => write({ id: request.id, ok: true, result: result ?? null }),
    (error: unknown) => write({ id: request.id, ok: false, error: String(error) }),
  );
});
lines.on('close', () => {
  for (const e of editors.values()) {
    e.binding?.dispose();
    e.connection.dispose();
  }
  setTimeout(() => process.exit(0), 50);
});
