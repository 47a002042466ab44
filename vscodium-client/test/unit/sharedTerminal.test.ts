import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as Y from 'yjs';
import { refusalFor } from '../../src/refusals';
import { appendCapped, insertedText, sizeOf } from '../../src/sharedTerminal';

test('the terminal scrollback keeps the newest output within its cap', () => {
  const doc = new Y.Doc();
  const text = doc.getText('content');
  for (let i = 0; i < 50; i += 1) appendCapped(text, `line ${i}\r\n`, 100);
  assert.ok(text.length <= 110, `length ${text.length}`);
  assert.ok(text.toString().endsWith('line 49\r\n'));
  assert.ok(!text.toString().includes('line 1\r\n'));
});

test('a guest shows what the host appended, not the trimmed start', () => {
  const host = new Y.Doc();
  const guest = new Y.Doc();
  const shown: string[] = [];
  guest.getText('content').observe((event) => shown.push(insertedText(event.delta)));
  host.on('update', (update: Uint8Array) => Y.applyUpdate(guest, update));
  appendCapped(host.getText('content'), 'a'.repeat(8), 10);
  appendCapped(host.getText('content'), 'b'.repeat(8), 10);
  assert.equal(shown.join(''), 'a'.repeat(8) + 'b'.repeat(8));
  assert.equal(guest.getText('content').toString(), 'a'.repeat(2) + 'b'.repeat(8));
});

test('a removed guest and an ended session are explained, other revocations as before', () => {
  const removed = refusalFor(4498, 'token expired or revoked: re-authenticate: removed by the host');
  assert.equal(removed?.message, 'The host removed you from the session.');
  const ended = refusalFor(4498, 'token expired or revoked: re-authenticate: the host ended the session');
  assert.equal(ended?.message, 'The host ended the session.');
  assert.match(refusalFor(4498, 'token expired or revoked: re-authenticate: revoked')?.message ?? '', /expired or was revoked/);
});

test("guests' views take the host's terminal size from the output document", () => {
  const meta = new Y.Doc().getMap<unknown>('meta');
  assert.equal(sizeOf(meta), undefined);
  meta.set('columns', 97);
  meta.set('rows', 0);
  assert.equal(sizeOf(meta), undefined);
  meta.set('rows', 11);
  assert.deepEqual(sizeOf(meta), { columns: 97, rows: 11 });
});
