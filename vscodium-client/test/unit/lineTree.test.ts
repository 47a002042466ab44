import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LineIndex } from '../../src/lines';
import { LineTree } from '../../src/lineTree';

function rng(seed: number): (n: number) => number {
  let state = seed;
  return (n) => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state % n;
  };
}

/** Agrees with the whole-text line index (the reference) on text, positions and slices. */
function assertSame(tree: LineTree, text: string): void {
  assert.equal(tree.toString(), text);
  assert.equal(tree.length, text.length);
  const reference = new LineIndex(text);
  for (let offset = 0; offset <= text.length; offset += 1) {
    assert.deepEqual(tree.positionAt(offset), reference.positionAt(offset), `positionAt(${offset}) of ${JSON.stringify(text)}`);
  }
  const lines = text.split(/\r\n|\r|\n/).length;
  assert.equal(tree.lineCount, lines);
  for (let line = 0; line <= lines; line += 1) {
    for (const character of [0, 1, 3, 99]) {
      assert.equal(tree.offsetAt({ line, character }), reference.offsetAt({ line, character }), `offsetAt(${line}, ${character})`);
    }
  }
}

test('a line tree agrees with the whole-text index for LF, CRLF, CR and empty texts', () => {
  for (const text of ['', '\n', 'a', 'a\n', 'ab\r\ncd\re\n\nf', '\r\n\r\n', '\r\r\n', 'x😀y\r']) {
    assertSame(new LineTree(text), text);
  }
});

test('random splices keep the tree equal to the text, line breaks split and joined included', () => {
  const random = rng(7);
  const alphabet = ['a', 'b', '\n', '\r', '\r\n', 'xy\nz', '😀', ''];
  let text = 'start\r\nmiddle\rend\n';
  const tree = new LineTree(text);
  for (let step = 0; step < 600; step += 1) {
    const start = random(text.length + 1);
    const end = Math.min(text.length, start + random(4));
    const insert = alphabet[random(alphabet.length)] ?? '';
    tree.splice(start, end, insert);
    text = text.slice(0, start) + insert + text.slice(end);
    if (step % 20 === 0) assertSame(tree, text);
    const from = random(text.length + 1);
    const to = from + random(8);
    assert.equal(tree.slice(from, to), text.slice(from, to));
  }
  assertSame(tree, text);
});

/** Tree nodes visited by one keystroke (insert), one deletion and the lookups a cursor needs. */
function workPerKeystroke(lines: number): number {
  const text = Array.from({ length: lines }, (_, i) => `line ${i} of the file`).join('\n');
  const tree = new LineTree(text);
  const random = rng(lines);
  const edits = 200;
  tree.work = 0;
  for (let i = 0; i < edits; i += 1) {
    const at = random(tree.length);
    tree.splice(at, at, 'k');
    tree.splice(at, at + 1, '');
    const position = tree.positionAt(at);
    tree.offsetAt(position);
  }
  return tree.work / edits;
}

test('the work per keystroke does not grow with the file (O(change + log lines))', () => {
  const small = workPerKeystroke(1_000);
  const large = workPerKeystroke(50_000);
  // A rebuilt line index would visit every line: 50,000 per keystroke in the large file.
  console.log(`line tree: ${small.toFixed(1)} nodes per keystroke at 1,000 lines, ${large.toFixed(1)} at 50,000 lines`);
  assert.ok(large < 300, `work per keystroke ${large}`);
  // 50x the lines costs the depth of the tree (a logarithm), not 200x.
  assert.ok(large < small * 3, `${large} against ${small}`);
});
