import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as Y from 'yjs';
import {
  SUGGESTIONS_MAP,
  anchor,
  attribution,
  codePointToUtf16,
  decisionUrl,
  openSuggestions,
  parseSuggestion,
  place,
  suggestedText,
  type Suggestion,
} from '../../src/suggestions';

/** A version token as the hub makes it: the encoded snapshot, base64url without padding. */
function versionOf(doc: Y.Doc): string {
  return Buffer.from(Y.encodeSnapshot(Y.snapshot(doc))).toString('base64url').replace(/=+$/, '');
}

function record(fields: Record<string, unknown>): string {
  return JSON.stringify({
    id: 's1',
    author: 'agent:Fixer',
    version: 'v',
    field: 'content',
    status: 'open',
    created_at: 1,
    edits: [{ start: 0, end: 1, text: 'x' }],
    ...fields,
  });
}

test('records are parsed field by field; malformed ones are refused', () => {
  const parsed = parseSuggestion('s1', record({ model: 'rules-1' }));
  assert.equal(parsed?.author, 'agent:Fixer');
  assert.equal(parsed?.model, 'rules-1');
  assert.equal(parseSuggestion('s1', record({}))?.model, undefined);
  assert.equal(parseSuggestion('other', record({})), undefined, 'id must be its key');
  assert.equal(parseSuggestion('s1', record({ status: 'maybe' })), undefined);
  assert.equal(parseSuggestion('s1', record({ edits: [] })), undefined);
  assert.equal(parseSuggestion('s1', record({ edits: [{ start: 3, end: 1, text: '' }] })), undefined);
  assert.equal(parseSuggestion('s1', record({ edits: [{ start: -1, end: 1, text: '' }] })), undefined);
  assert.equal(parseSuggestion('s1', record({ model: 7 })), undefined);
  assert.equal(parseSuggestion('s1', '{not json'), undefined);
  assert.equal(parseSuggestion('s1', { id: 's1' }), undefined, 'records are JSON strings');
});

test('only open suggestions on the field are listed, oldest first', () => {
  const doc = new Y.Doc();
  const map = doc.getMap<unknown>(SUGGESTIONS_MAP);
  map.set('b', record({ id: 'b', created_at: 5 }));
  map.set('a', record({ id: 'a', created_at: 2 }));
  map.set('c', record({ id: 'c', status: 'accepted' }));
  map.set('d', record({ id: 'd', field: 'notes' }));
  map.set('e', 'garbage');
  assert.deepEqual(
    openSuggestions(map, 'content').map((s) => s.id),
    ['a', 'b'],
  );
});

test('code points become UTF-16 offsets', () => {
  const text = 'a😀b';
  assert.equal(codePointToUtf16(text, 0), 0);
  assert.equal(codePointToUtf16(text, 1), 1);
  assert.equal(codePointToUtf16(text, 2), 3);
  assert.equal(codePointToUtf16(text, 3), 4);
  assert.equal(codePointToUtf16(text, 99), 4);
});

function suggestionOn(doc: Y.Doc, edits: Suggestion['edits']): Suggestion {
  return {
    id: 's1',
    author: 'agent:Fixer',
    model: 'rules-1',
    version: versionOf(doc),
    field: 'content',
    edits,
    status: 'open',
    createdAt: 1,
    decidedBy: undefined,
  };
}

test('a suggestion stays on its code when people type before it since its version', () => {
  const doc = new Y.Doc({ gc: false });
  const text = doc.getText('content');
  text.insert(0, 'def 😀greet():\n    return 1\n');
  // Replace "greet" (code points 5..10, after the emoji) with "hello".
  const suggestion = suggestionOn(doc, [{ start: 5, end: 10, text: 'hello' }]);
  text.insert(0, '# a comment\n');
  text.delete(text.length - 2, 1); // "return 1" -> "return "
  const anchored = anchor(doc, suggestion);
  assert.notEqual(anchored, undefined);
  const placed = place(doc, 'content', anchored, suggestion);
  assert.equal(placed.approximate, false);
  assert.equal(placed.changed, false);
  const live = text.toString();
  const [edit] = placed.edits;
  assert.ok(edit !== undefined);
  assert.equal(live.slice(edit.start, edit.end), 'greet');
  assert.equal(suggestedText(live, placed.edits), '# a comment\ndef 😀hello():\n    return \n');
});

test('a change to the suggested range since its version is reported', () => {
  const doc = new Y.Doc({ gc: false });
  const text = doc.getText('content');
  text.insert(0, 'one two three');
  const suggestion = suggestionOn(doc, [{ start: 4, end: 7, text: 'TWO' }, { start: 13, end: 13, text: '!' }]);
  text.delete(5, 1); // "two" -> "to"
  const placed = place(doc, 'content', anchor(doc, suggestion), suggestion);
  assert.equal(placed.changed, true);
  assert.equal(suggestedText(text.toString(), placed.edits), 'one TWO three!');
});

test('without the version (garbage-collected document) the record positions are used as they are', () => {
  const doc = new Y.Doc(); // gc on: old versions cannot be rebuilt
  const text = doc.getText('content');
  text.insert(0, 'abc');
  const suggestion = suggestionOn(doc, [{ start: 1, end: 2, text: 'B' }]);
  assert.equal(anchor(doc, suggestion), undefined);
  const placed = place(doc, 'content', undefined, suggestion);
  assert.equal(placed.approximate, true);
  assert.equal(suggestedText(text.toString(), placed.edits), 'aBc');
});

test('attribution names the recorded author and the model', () => {
  const doc = new Y.Doc({ gc: false });
  const suggestion = suggestionOn(doc, [{ start: 0, end: 0, text: 'x' }]);
  assert.equal(attribution(suggestion), 'agent:Fixer · rules-1');
  assert.equal(attribution({ ...suggestion, model: undefined }), 'agent:Fixer');
});

test('decisions go to the hub over HTTP(S), each name segment encoded', () => {
  assert.equal(
    decisionUrl('ws://127.0.0.1:1234/', 'nova-session/ab/src/my file.py', 'id1', 'accept'),
    'http://127.0.0.1:1234/api/documents/nova-session/ab/src/my%20file.py/suggestions/id1/accept',
  );
  assert.equal(decisionUrl('wss://hub.example:443', 'n', 'x', 'reject'), 'https://hub.example:443/api/documents/n/suggestions/x/reject');
});
