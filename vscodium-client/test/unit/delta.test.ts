import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as delta from '../../src/delta';

test('apply, compose and invert agree', () => {
  const base = 'hello world';
  const a = delta.fromSplices([{ start: 5, end: 5, text: ',' }]);
  const b = delta.fromSplices([{ start: 0, end: 1, text: 'J' }, { start: 7, end: 12, text: 'there' }]);
  const both = delta.compose(a, b);
  assert.equal(delta.apply(base, both), delta.apply(delta.apply(base, a), b));
  assert.equal(delta.apply(base, both), 'Jello, there');
  assert.equal(delta.apply(delta.apply(base, both), delta.invert(both, base)), base);
});

test('transform makes concurrent deltas converge', () => {
  const base = 'abcdef';
  const local = delta.fromSplices([{ start: 2, end: 4, text: 'XY' }]);
  const remote = delta.fromSplices([{ start: 3, end: 3, text: '!' }, { start: 5, end: 6, text: '' }]);
  const left = delta.apply(delta.apply(base, remote), delta.transform(local, remote, false));
  const right = delta.apply(delta.apply(base, local), delta.transform(remote, local, true));
  assert.equal(left, right);
});

test('transform breaks insert ties consistently', () => {
  const base = 'ab';
  const local = delta.fromSplices([{ start: 1, end: 1, text: 'L' }]);
  const remote = delta.fromSplices([{ start: 1, end: 1, text: 'R' }]);
  assert.equal(delta.apply(delta.apply(base, remote), delta.transform(local, remote, false)), 'aRLb');
  assert.equal(delta.apply(delta.apply(base, local), delta.transform(remote, local, true)), 'aRLb');
});

test('mapIndex follows inserts and deletes', () => {
  const d = delta.fromSplices([{ start: 2, end: 4, text: '' }, { start: 6, end: 6, text: 'xyz' }]);
  assert.equal(delta.mapIndex(d, 1), 1);
  assert.equal(delta.mapIndex(d, 3), 2);
  assert.equal(delta.mapIndex(d, 6), 4);
  assert.equal(delta.mapIndex(d, 6, true), 7);
  assert.equal(delta.mapIndex(d, 8), 9);
});

test('random compose/transform round trips', () => {
  let seed = 7;
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const randomDelta = (text: string): delta.Delta => {
    const start = random(text.length + 1);
    const end = Math.min(text.length, start + random(3));
    return delta.fromSplices([{ start, end, text: 'xyz'.slice(0, random(3)) }]);
  };
  for (let i = 0; i < 500; i += 1) {
    const base = 'the quick brown fox'.slice(0, random(19));
    const a = randomDelta(base);
    const b = randomDelta(base);
    const left = delta.apply(delta.apply(base, b), delta.transform(a, b, false));
    const right = delta.apply(delta.apply(base, a), delta.transform(b, a, true));
    assert.equal(left, right, JSON.stringify({ base, a, b }));
    const c = randomDelta(delta.apply(base, a));
    assert.equal(delta.apply(base, delta.compose(a, c)), delta.apply(delta.apply(base, a), c));
  }
});

test('unmapIndex is mapIndex over the inverse, without the base text', () => {
  let seed = 3;
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  for (let round = 0; round < 300; round += 1) {
    const base = 'abcdefghijklmnop'.slice(0, 1 + random(16));
    const splices = [];
    let at = 0;
    while (at < base.length && splices.length < 3) {
      const start = at + random(base.length - at + 1);
      const end = Math.min(base.length, start + random(3));
      splices.push({ start, end, text: 'XYZ'.slice(0, random(4)) });
      at = end + 1;
    }
    const change = delta.fromSplices(splices);
    const after = delta.apply(base, change);
    for (let index = 0; index <= after.length; index += 1) {
      assert.equal(delta.unmapIndex(change, index), delta.mapIndex(delta.invert(change, base), index), JSON.stringify({ change, index }));
    }
  }
});
