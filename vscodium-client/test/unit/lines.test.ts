import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LineIndex, lineBreakAwareDiff, toLf, withEol } from '../../src/lines';

test('positions are the same for LF, CRLF and CR texts', () => {
  for (const eol of ['\n', '\r\n', '\r']) {
    const text = ['ab', 'c😀d', '', 'e'].join(eol);
    const index = new LineIndex(text);
    const offset = index.offsetAt({ line: 1, character: 3 });
    assert.equal(text.slice(offset, offset + 1), 'd');
    assert.deepEqual(index.positionAt(offset), { line: 1, character: 3 });
    assert.deepEqual(index.positionAt(text.length), { line: 3, character: 1 });
    // A character past the end of a line stops at its line break.
    assert.equal(index.offsetAt({ line: 0, character: 99 }), 2);
  }
});

test('line break conversion', () => {
  assert.equal(toLf('a\r\nb\rc\nd'), 'a\nb\nc\nd');
  assert.equal(withEol('a\nb\r\nc', '\r\n'), 'a\r\nb\r\nc');
});

test('diff treats line break forms as equal and keeps surrogate pairs whole', () => {
  assert.deepEqual(lineBreakAwareDiff('a\r\nb\r\nc', 'a\nb\nc'), { start: 7, end: 7, text: '', targetStart: 5, targetEnd: 5 });
  const d = lineBreakAwareDiff('x😀y', 'x😃y');
  assert.deepEqual([d.start, d.end, d.text], [1, 3, '😃']);
  const e = lineBreakAwareDiff('a\r\nbc', 'a\nbXc');
  assert.deepEqual([e.start, e.end, e.text], [4, 4, 'X']);
});
