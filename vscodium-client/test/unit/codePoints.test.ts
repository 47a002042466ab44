import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as Y from 'yjs';
import { CodePointIndex } from '../../src/codePoints';
import { codePointsToUtf16 } from '../../src/presence';

function remote(ytext: Y.Text, change: (text: Y.Text) => void): void {
  ytext.doc?.transact(() => change(ytext), 'remote');
}

test('code points map to UTF-16 indices as the text changes (astral characters on both sides)', () => {
  const doc = new Y.Doc();
  const ytext = doc.getText('content');
  ytext.insert(0, 'a😀b🎉c');
  const index = new CodePointIndex(ytext);
  let seed = 7;
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const alphabet = ['x', '😀', 'é', '\n', '🎉🎉', 'yz'];
  for (let step = 0; step < 400; step += 1) {
    const text = ytext.toString();
    // Positions on character boundaries only (never inside a surrogate pair).
    const boundaries = [0];
    for (const char of text) boundaries.push((boundaries[boundaries.length - 1] ?? 0) + char.length);
    const at = boundaries[random(boundaries.length)] ?? 0;
    if (random(3) === 0 && at < text.length) {
      const end = boundaries[Math.min(boundaries.length - 1, boundaries.indexOf(at) + 1 + random(3))] ?? at;
      remote(ytext, (t) => t.delete(at, end - at));
    } else {
      remote(ytext, (t) => t.insert(at, alphabet[random(alphabet.length)] ?? 'q'));
    }
    const now = ytext.toString();
    const codePoints = [...now].length;
    for (const probe of [0, 1, random(codePoints + 1), codePoints, codePoints + 3]) {
      assert.equal(index.toUtf16(probe), Math.min(codePointsToUtf16(now, probe), now.length), `${JSON.stringify(now)} @ ${probe}`);
    }
  }
  index.dispose();
});

test('an agent cursor update costs O(change), never a read of the whole text', () => {
  const work = (lines: number): number => {
    const doc = new Y.Doc();
    const ytext = doc.getText('content');
    ytext.insert(0, Array.from({ length: lines }, (_, i) => `line ${i} ${i % 1000 === 0 ? '😀' : ''}`).join('\n'));
    const index = new CodePointIndex(ytext);
    ytext.toString = () => {
      throw new Error('the whole text was read');
    };
    const before = index.work;
    const rounds = 50;
    for (let i = 0; i < rounds; i += 1) {
      remote(ytext, (t) => t.insert(ytext.length - 5, 'k')); // near the end, as a typist would
      index.toUtf16(ytext.length - 10 - i);
    }
    index.dispose();
    return (index.work - before) / rounds;
  };
  const small = work(1_000);
  const large = work(50_000);
  console.log(`code point index work per edit + lookup at 1,000 / 50,000 lines: ${small} / ${large}`);
  // A read of the text would throw; binary searches grow with the log of the astral characters
  // (1 and 50 here), far below the 50-fold file size.
  assert.ok(large < 40, `${large}`);
  assert.ok(large < Math.max(small, 1) * 10, `${large} against ${small}`);
});
