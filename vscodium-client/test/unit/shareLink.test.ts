import assert from 'node:assert/strict';
import { test } from 'node:test';
import { children } from '../support/manifestChildren';
import { parseJoinInput, parseJoinQuery, roomPath, shareLink } from '../../src/shareLink';

const HUB = 'ws://127.0.0.1:1234';

test('a share link round-trips through join', () => {
  const link = shareLink('vscodium', { hubUrl: 'ws://hub.local:4000', kind: 'session', name: 'abc123' });
  assert.match(link, /^vscodium:\/\/nova-collab\.nova-collab\/join\?/);
  assert.deepEqual(parseJoinInput(link, HUB), { hubUrl: 'ws://hub.local:4000', kind: 'session', name: 'abc123' });
  assert.deepEqual(parseJoinQuery('document=notes.md', HUB), { hubUrl: HUB, kind: 'document', name: 'notes.md' });
});

test('join takes a document URL or a bare name', () => {
  assert.deepEqual(parseJoinInput('ws://10.0.0.2:1234/team/notes%20v2.md?token=x', HUB), {
    hubUrl: 'ws://10.0.0.2:1234',
    kind: 'document',
    name: 'team/notes v2.md',
  });
  assert.deepEqual(parseJoinInput(' notes.md ', HUB), { hubUrl: HUB, kind: 'document', name: 'notes.md' });
  assert.equal(parseJoinInput('  ', HUB), undefined);
});

test('document names become URL paths segment by segment', () => {
  assert.equal(roomPath('nova-session/ab/src/my file#1.ts'), 'nova-session/ab/src/my%20file%231.ts');
});

test('manifest lists directory children', () => {
  assert.deepEqual(children(['src/a.ts', 'src/lib/b.ts', 'README.md'], ''), [['README.md', false], ['src', true]]);
  assert.deepEqual(children(['src/a.ts', 'src/lib/b.ts', 'README.md'], 'src'), [['a.ts', false], ['lib', true]]);
});
