import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import type * as vscode from 'vscode';
import * as Y from 'yjs';
import { DocumentBinding, type InitialContent } from '../../src/binding';
import * as fake from '../fake/vscode';

let counter = 0;
const bindings: DocumentBinding[] = [];

afterEach(() => {
  for (const binding of bindings.splice(0)) binding.dispose();
  fake.control.mode = 'async';
  fake.control.echoDelayMs = 0;
  fake.control.release();
});

function setUp(
  text: string,
  shared: string,
  options: { eol?: fake.EndOfLine; initial?: InitialContent } = {},
): { document: fake.FakeTextDocument; ytext: Y.Text; binding: DocumentBinding; ydoc: Y.Doc } {
  counter += 1;
  const document = fake.openDocument(`file:/test-${counter}.txt`, text, options.eol ?? fake.EndOfLine.LF);
  const ydoc = new Y.Doc();
  const ytext = ydoc.getText('content');
  if (shared !== '') ytext.insert(0, shared);
  const binding = new DocumentBinding(document as unknown as vscode.TextDocument, ytext, options.initial ?? 'fromYjs');
  bindings.push(binding);
  return { document, ytext, binding, ydoc };
}

/** Waits until the binding has nothing in flight and the editor shows the Y.Text. */
async function settled(binding: DocumentBinding, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (fake.control.mode === 'held') fake.control.release();
    await new Promise((resolve) => setTimeout(resolve, 1));
    if (binding.inSync && undelivered(binding) === 0) return;
    if (Date.now() > deadline) throw new Error(`binding did not settle: editor ${JSON.stringify(binding.document.getText())}, shared ${JSON.stringify(binding.ytext.toString())}`);
  }
}

function undelivered(binding: DocumentBinding): number {
  return (binding.document as unknown as fake.FakeTextDocument).undelivered;
}

function remote(ytext: Y.Text, change: (text: Y.Text) => void): void {
  ytext.doc?.transact(() => change(ytext), 'remote');
}

function lf(document: fake.FakeTextDocument): string {
  return document.getText().replace(/\r\n/g, '\n');
}

function recordYDeltas(ytext: Y.Text): unknown[][] {
  const deltas: unknown[][] = [];
  ytext.observe((event) => deltas.push(event.delta));
  return deltas;
}

test('joining shows the shared text in the editor', async () => {
  const { document, binding } = setUp('', 'hello\nworld');
  await settled(binding);
  assert.equal(document.getText(), 'hello\nworld');
});

test('sharing puts the editor text into the Y.Text', async () => {
  const { ytext, binding } = setUp('a\r\nb', '', { initial: 'fromDocument', eol: fake.EndOfLine.CRLF });
  await settled(binding);
  assert.equal(ytext.toString(), 'a\nb');
});

test('sharing over an older shared text changes only the difference', async () => {
  const { ytext, binding } = setUp('one two three', 'one 2 three', { initial: 'fromDocument' });
  await settled(binding);
  assert.equal(ytext.toString(), 'one two three');
});

test('typing becomes incremental Yjs operations', async () => {
  const { document, ytext, binding } = setUp('', 'hello world');
  await settled(binding);
  const deltas = recordYDeltas(ytext);
  document.type(5, 5, ',');
  document.type(12, 12, '!');
  document.type(0, 1, 'J');
  assert.equal(ytext.toString(), 'Jello, world!');
  assert.deepEqual(deltas, [
    [{ retain: 5 }, { insert: ',' }],
    [{ retain: 12 }, { insert: '!' }],
    [{ insert: 'J' }, { delete: 1 }],
  ]);
});

test('remote changes become minimal editor edits and are not echoed', async () => {
  const { document, ytext, binding, ydoc } = setUp('', 'line one\nline two\nline three');
  await settled(binding);
  let localUpdates = 0;
  ydoc.on('update', (_update: Uint8Array, origin: unknown) => {
    if (origin === binding) localUpdates += 1;
  });
  const changes: unknown[] = [];
  const subscription = fake.workspace.onDidChangeTextDocument((event) => changes.push(...event.contentChanges));
  remote(ytext, (t) => {
    t.insert(14, 'TWO ');
    t.delete(0, 4);
  });
  await settled(binding);
  subscription.dispose();
  assert.equal(document.getText(), ' one\nline TWO two\nline three');
  assert.equal(changes.length, 2);
  for (const change of changes as fake.ContentChange[]) assert.ok(change.rangeLength <= 4 && change.text.length <= 4);
  assert.equal(localUpdates, 0);
  assert.equal(ytext.toString(), ' one\nline TWO two\nline three');
});

test('CRLF documents: offsets, typed line breaks and remote line breaks', async () => {
  const { document, ytext, binding } = setUp('', 'ab\ncd\nef', { eol: fake.EndOfLine.CRLF });
  await settled(binding);
  assert.equal(document.getText(), 'ab\r\ncd\r\nef');
  // Type at line 2, character 1 (document offset 9 counts two CRs).
  document.type(9, 9, 'X');
  assert.equal(ytext.toString(), 'ab\ncd\neXf');
  // Paste two lines with CRLF: the Y.Text gets "\n".
  document.type(4, 4, 'p\r\nq');
  assert.equal(ytext.toString(), 'ab\np\nqcd\neXf');
  // Delete a line break in the editor (two code units) - one in the Y.Text.
  const at = document.getText().indexOf('\r\nq');
  document.type(at, at + 2, '');
  assert.equal(ytext.toString(), 'ab\npqcd\neXf');
  // A remote line break reaches the editor as CRLF.
  remote(ytext, (t) => t.insert(1, '\n'));
  await settled(binding);
  assert.equal(document.getText(), 'a\r\nb\r\npqcd\r\neXf');
  assert.equal(lf(document), ytext.toString());
});

test('a peer inserting CRLF into the Y.Text keeps offsets right in an LF editor', async () => {
  const { document, ytext, binding } = setUp('', 'abc');
  await settled(binding);
  remote(ytext, (t) => t.insert(1, 'x\r\ny'));
  await settled(binding);
  assert.equal(document.getText(), 'ax\nybc');
  document.type(document.getText().length, document.getText().length, '!');
  document.type(3, 4, 'Y');
  assert.equal(ytext.toString(), 'ax\r\nYbc!');
});

test('surrogate pairs: UTF-16 offsets match on both sides', async () => {
  const { document, ytext, binding } = setUp('', 'a😀b');
  await settled(binding);
  document.type(3, 3, 'é');
  assert.equal(ytext.toString(), 'a😀éb');
  document.type(1, 3, '');
  assert.equal(ytext.toString(), 'aéb');
  remote(ytext, (t) => t.insert(1, '🎉'));
  await settled(binding);
  assert.equal(document.getText(), 'a🎉éb');
  document.type(3, 3, '→');
  assert.equal(ytext.toString(), 'a🎉→éb');
});

test('multi-cursor edits become one transaction', async () => {
  const { document, ytext, binding } = setUp('', 'foo\nfoo\nfoo');
  await settled(binding);
  const deltas = recordYDeltas(ytext);
  document.change([0, 1, 2].map((line) => ({ range: new fake.Range(line, 0, line, 3), text: 'barr' })));
  assert.equal(ytext.toString(), 'barr\nbarr\nbarr');
  assert.equal(deltas.length, 1);
});

test('typing while a remote edit is in flight: VS Code refuses it, the binding resends', async () => {
  const { document, ytext, binding } = setUp('', 'hello world');
  await settled(binding);
  fake.control.mode = 'held';
  remote(ytext, (t) => t.insert(0, '>> '));
  await new Promise((resolve) => setTimeout(resolve, 5)); // the binding calls applyEdit, VS Code holds it
  assert.equal(fake.control.held.length, 1);
  const refusedBefore = fake.control.refused;
  document.type(11, 11, '!'); // the user types before VS Code gets to the edit
  document.type(0, 0, '#');
  assert.equal(ytext.toString(), '>> #hello world!');
  await settled(binding);
  assert.equal(fake.control.refused, refusedBefore + 1);
  assert.equal(document.getText(), '>> #hello world!');
});

test('remote edits arriving while an edit is in flight are not lost', async () => {
  const { document, ytext, binding } = setUp('', 'abc');
  await settled(binding);
  fake.control.mode = 'held';
  remote(ytext, (t) => t.insert(3, 'd'));
  await new Promise((resolve) => setTimeout(resolve, 5));
  remote(ytext, (t) => t.insert(0, '0'));
  await settled(binding);
  assert.equal(document.getText(), '0abcd');
});

test('an echo arriving late (a busy workbench) is never applied or sent twice', async () => {
  const { document, ytext, binding, ydoc } = setUp('', 'hello world');
  await settled(binding);
  let localUpdates = 0;
  ydoc.on('update', (_update: Uint8Array, origin: unknown) => {
    if (origin === binding) localUpdates += 1;
  });
  // Longer than any wall-clock guess the binding could make (it used to give up after 2 s).
  fake.control.echoDelayMs = 2100;
  remote(ytext, (t) => t.insert(5, ' big'));
  await new Promise((resolve) => setTimeout(resolve, 100));
  remote(ytext, (t) => t.insert(0, '> '));
  await settled(binding, 10_000);
  fake.control.echoDelayMs = 0;
  remote(ytext, (t) => t.insert(ytext.length, '!'));
  await settled(binding);
  assert.equal(document.getText(), '> hello big world!');
  assert.equal(ytext.toString(), '> hello big world!');
  assert.equal(localUpdates, 0);
});

test('a remote change that leaves the text as it is needs no editor edit', async () => {
  const { document, ytext, binding } = setUp('', 'abc');
  await settled(binding);
  const applied = fake.control.applied;
  remote(ytext, (t) => {
    t.delete(1, 1);
    t.insert(1, 'b');
  });
  await settled(binding);
  assert.equal(fake.control.applied, applied);
  assert.equal(document.getText(), 'abc');
  document.type(3, 3, 'd');
  assert.equal(ytext.toString(), 'abcd');
});

test('undo and redo reach the Y.Text like any edit', async () => {
  const { document, ytext, binding } = setUp('', 'abc');
  await settled(binding);
  document.type(3, 3, 'def');
  document.type(3, 6, ''); // undo
  document.type(3, 3, 'def'); // redo
  assert.equal(ytext.toString(), 'abcdef');
});

test('random concurrent typing and remote edits converge', async () => {
  let seed = 42;
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const alphabet = ['a', 'b', '\n', 'é', '😀', ' '];
  for (const eol of [fake.EndOfLine.LF, fake.EndOfLine.CRLF]) {
    const { document, ytext, binding } = setUp('', 'start\ntext', { eol });
    await settled(binding);
    for (let step = 0; step < 300; step += 1) {
      fake.control.mode = random(3) === 0 ? 'held' : 'async';
      const choice = random(4);
      if (choice === 0) {
        const text = document.getText();
        let at = random(text.length + 1);
        if (text[at - 1] === '\r' || /[\udc00-\udfff]/.test(text[at] ?? '')) at -= 1;
        const end = Math.min(text.length, at + random(2));
        const safeEnd = text[end - 1] === '\r' || /[\udc00-\udfff]/.test(text[end] ?? '') ? at : end;
        document.type(at, safeEnd, alphabet[random(alphabet.length)] ?? 'x');
      } else if (choice === 1) {
        const text = ytext.toString();
        let at = random(text.length + 1);
        if (/[\udc00-\udfff]/.test(text[at] ?? '')) at -= 1;
        remote(ytext, (t) => t.insert(at, alphabet[random(alphabet.length)] ?? 'y'));
      } else if (choice === 2) {
        const text = ytext.toString();
        let at = random(Math.max(1, text.length));
        if (/[\udc00-\udfff]/.test(text[at] ?? '')) at -= 1;
        const length = /[\ud800-\udbff]/.test(text[at] ?? '') ? 2 : 1;
        if (text.length > at + length) remote(ytext, (t) => t.delete(at, length));
      } else {
        if (fake.control.mode === 'held' && random(2) === 0) fake.control.release();
        await new Promise((resolve) => setTimeout(resolve, random(2)));
      }
    }
    fake.control.mode = 'async';
    await settled(binding, 5000);
    assert.equal(lf(document), ytext.toString());
    assert.equal(binding.shadowText, ytext.toString());
  }
});

/** The binding's own work (line tree nodes visited) for keystrokes, remote edits and remote cursors. */
async function bindingWork(lines: number): Promise<{ perKeystroke: number; perRemoteEdit: number; perCursor: number }> {
  const text = Array.from({ length: lines }, (_, i) => `    value_${i} = compute(${i})`).join('\n');
  const { document, ytext, binding } = setUp('', text);
  await settled(binding, 20_000);
  const rounds = 50;
  const middle = Math.floor(text.length / 2);
  let before = binding.textWork;
  for (let i = 0; i < rounds; i += 1) document.type(middle + i, middle + i, 'k');
  const perKeystroke = (binding.textWork - before) / rounds;
  before = binding.textWork;
  for (let i = 0; i < rounds; i += 1) {
    remote(ytext, (t) => t.insert(10 + i, 'r'));
    await settled(binding);
  }
  const perRemoteEdit = (binding.textWork - before) / rounds;
  before = binding.textWork;
  for (let i = 0; i < rounds; i += 1) {
    const position = binding.yIndexToPosition(middle + i * 97);
    binding.positionToYIndex(position as unknown as vscode.Position);
  }
  const perCursor = (binding.textWork - before) / rounds;
  assert.equal(lf(document), ytext.toString());
  return { perKeystroke, perRemoteEdit, perCursor };
}

test('per keystroke, remote edit and remote cursor the binding works O(change), not O(file)', async () => {
  const small = await bindingWork(500);
  const large = await bindingWork(20_000);
  console.log(`binding work (tree nodes) at 500 / 20,000 lines: ${JSON.stringify(small)} / ${JSON.stringify(large)}`);
  for (const key of ['perKeystroke', 'perRemoteEdit', 'perCursor'] as const) {
    // Rebuilding a line index per keystroke would visit all 20,000 lines.
    assert.ok(large[key] < 400, `${key}: ${large[key]}`);
    assert.ok(large[key] < Math.max(small[key], 1) * 3, `${key}: ${large[key]} against ${small[key]}`);
  }
});
