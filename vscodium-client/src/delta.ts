/**
 * Text deltas (retain / insert / delete, lengths in UTF-16 code units, the unit of both
 * VS Code offsets and yjs's Y.Text indices) and the three operations the binding needs:
 * compose, transform and position mapping. Pure functions, no I/O.
 */

export type Op = { readonly retain: number } | { readonly insert: string } | { readonly delete: number };
export type Delta = readonly Op[];

export const EMPTY: Delta = [];

function lengthOf(op: Op): number {
  if ('insert' in op) return op.insert.length;
  if ('delete' in op) return op.delete;
  return op.retain;
}

/** Appends ops, merging neighbours of one kind and putting inserts before deletes at one place. */
class Builder {
  readonly ops: Op[] = [];

  push(op: Op): this {
    if (lengthOf(op) === 0) return this;
    const last = this.ops[this.ops.length - 1];
    if (last === undefined) {
      this.ops.push(op);
    } else if ('insert' in op && 'insert' in last) {
      this.ops[this.ops.length - 1] = { insert: last.insert + op.insert };
    } else if ('delete' in op && 'delete' in last) {
      this.ops[this.ops.length - 1] = { delete: last.delete + op.delete };
    } else if ('retain' in op && 'retain' in last) {
      this.ops[this.ops.length - 1] = { retain: last.retain + op.retain };
    } else if ('insert' in op && 'delete' in last) {
      // delete+insert and insert+delete at one place mean the same: keep one canonical order
      this.ops.pop();
      this.push(op);
      this.ops.push(last);
    } else {
      this.ops.push(op);
    }
    return this;
  }

  build(): Delta {
    const last = this.ops[this.ops.length - 1];
    if (last !== undefined && 'retain' in last) this.ops.pop();
    return this.ops;
  }
}

/** Walks a delta in chunks; past its end it behaves as an endless retain. */
class Cursor {
  private index = 0;
  private offset = 0;

  constructor(private readonly ops: Delta) {}

  hasNext(): boolean {
    return this.index < this.ops.length;
  }

  peekKind(): 'retain' | 'insert' | 'delete' {
    const op = this.ops[this.index];
    if (op === undefined || 'retain' in op) return 'retain';
    return 'insert' in op ? 'insert' : 'delete';
  }

  peekLength(): number {
    const op = this.ops[this.index];
    return op === undefined ? Infinity : lengthOf(op) - this.offset;
  }

  next(length = Infinity): Op {
    const op = this.ops[this.index];
    if (op === undefined) return { retain: length };
    const take = Math.min(length, lengthOf(op) - this.offset);
    const start = this.offset;
    if (start + take >= lengthOf(op)) {
      this.index += 1;
      this.offset = 0;
    } else {
      this.offset += take;
    }
    if ('insert' in op) return { insert: op.insert.slice(start, start + take) };
    if ('delete' in op) return { delete: take };
    return { retain: take };
  }
}

export function isEmpty(delta: Delta): boolean {
  return delta.every((op) => 'retain' in op || lengthOf(op) === 0);
}

export function normalize(ops: readonly Op[]): Delta {
  const builder = new Builder();
  for (const op of ops) builder.push(op);
  return builder.build();
}

export function apply(text: string, delta: Delta): string {
  const parts: string[] = [];
  let at = 0;
  for (const op of delta) {
    if ('retain' in op) {
      parts.push(text.slice(at, at + op.retain));
      at += op.retain;
    } else if ('delete' in op) {
      at += op.delete;
    } else {
      parts.push(op.insert);
    }
  }
  if (at > text.length) throw new RangeError(`delta spans ${at} code units, text has ${text.length}`);
  parts.push(text.slice(at));
  return parts.join('');
}

/** The delta that has the effect of `first` followed by `second`. */
export function compose(first: Delta, second: Delta): Delta {
  const a = new Cursor(first);
  const b = new Cursor(second);
  const out = new Builder();
  while (a.hasNext() || b.hasNext()) {
    if (b.peekKind() === 'insert') {
      out.push(b.next());
    } else if (a.peekKind() === 'delete') {
      out.push(a.next());
    } else {
      const length = Math.min(a.peekLength(), b.peekLength());
      const opA = a.next(length);
      const opB = b.next(length);
      if ('retain' in opB) out.push(opA);
      else if ('retain' in opA) out.push(opB); // b deletes what a kept
      // else: b deletes what a inserted: both vanish
    }
  }
  return out.build();
}

/**
 * `delta` rewritten to apply after `other`, both made against the same text.
 * At one position, `delta`'s insert goes first when `deltaFirst`, else `other`'s.
 */
export function transform(delta: Delta, other: Delta, deltaFirst: boolean): Delta {
  const a = new Cursor(delta);
  const b = new Cursor(other);
  const out = new Builder();
  while (a.hasNext() || b.hasNext()) {
    if (a.peekKind() === 'insert' && (deltaFirst || b.peekKind() !== 'insert')) {
      out.push(a.next());
    } else if (b.peekKind() === 'insert') {
      out.push({ retain: b.peekLength() });
      b.next();
    } else {
      const length = Math.min(a.peekLength(), b.peekLength());
      const opA = a.next(length);
      const opB = b.next(length);
      if ('delete' in opB) continue; // already gone
      out.push(opA);
    }
  }
  return out.build();
}

/** Where position `index` of the text before `delta` is after it (inserts at `index` push it right when `stickRight`). */
export function mapIndex(delta: Delta, index: number, stickRight = false): number {
  let offset = 0;
  let result = index;
  for (const op of delta) {
    if (offset > index) break;
    if ('retain' in op) {
      offset += op.retain;
    } else if ('delete' in op) {
      result -= Math.min(op.delete, index - offset);
      offset += op.delete;
    } else if (offset < index || stickRight) {
      result += op.insert.length;
    }
  }
  return result;
}

/**
 * Where position `index` of the text after `delta` was before it: the same as
 * `mapIndex(invert(delta, base), index)`, without the base text (lengths only).
 */
export function unmapIndex(delta: Delta, index: number): number {
  let after = 0;
  let before = 0;
  for (let i = 0; i < delta.length; i += 1) {
    const op = delta[i];
    if (op === undefined) break;
    if ('retain' in op) {
      if (index <= after + op.retain) return before + (index - after);
      after += op.retain;
      before += op.retain;
    } else if ('insert' in op) {
      if (index === after) return before;
      const next = delta[i + 1];
      // Inside (or at the end of) text that replaced a deletion: after the deleted text.
      if (index <= after + op.insert.length) return before + (next !== undefined && 'delete' in next ? next.delete : 0);
      after += op.insert.length;
    } else {
      if (index <= after) return before;
      before += op.delete;
    }
  }
  return before + (index - after);
}

/** The region of the base text a delta changes (start of its first change to end of its last), if any. */
export function span(delta: Delta): { start: number; end: number } | undefined {
  let at = 0;
  let start: number | undefined;
  let end = 0;
  for (const op of delta) {
    if ('retain' in op) {
      at += op.retain;
      continue;
    }
    start ??= at;
    if ('delete' in op) at += op.delete;
    end = at;
  }
  return start === undefined ? undefined : { start, end };
}

/** `delta` for the base text without its first `count` characters, which it must only retain. */
export function dropRetain(delta: Delta, count: number): Delta {
  const first = delta[0];
  if (count === 0 || first === undefined) return delta; // an empty delta retains everything
  if (first === undefined || !('retain' in first) || first.retain < count) throw new RangeError('delta changes the dropped prefix');
  return normalize([{ retain: first.retain - count }, ...delta.slice(1)]);
}

/** The delta that undoes `delta` on the text it was made against. */
export function invert(delta: Delta, base: string): Delta {
  const out = new Builder();
  let at = 0;
  for (const op of delta) {
    if ('retain' in op) {
      out.push(op);
      at += op.retain;
    } else if ('delete' in op) {
      out.push({ insert: base.slice(at, at + op.delete) });
      at += op.delete;
    } else {
      out.push({ delete: op.insert.length });
    }
  }
  return out.build();
}

export interface Splice {
  readonly start: number;
  readonly end: number;
  readonly text: string;
}

/** A delta from non-overlapping splices, each against the same text (any order). */
export function fromSplices(splices: readonly Splice[]): Delta {
  const sorted = [...splices].sort((x, y) => x.start - y.start || x.end - y.end);
  const out = new Builder();
  let at = 0;
  for (const splice of sorted) {
    if (splice.start < at) throw new RangeError('overlapping changes');
    out.push({ retain: splice.start - at });
    out.push({ delete: splice.end - splice.start });
    out.push({ insert: splice.text });
    at = splice.end;
  }
  return out.build();
}

/** The splices of a delta, positions against the text before it, in ascending order. */
export function toSplices(delta: Delta): Splice[] {
  const splices: Splice[] = [];
  let at = 0;
  let current: { start: number; end: number; text: string } | undefined;
  for (const op of delta) {
    if ('retain' in op) {
      if (current !== undefined) splices.push(current);
      current = undefined;
      at += op.retain;
      continue;
    }
    current ??= { start: at, end: at, text: '' };
    if ('delete' in op) {
      at += op.delete;
      current.end = at;
    } else {
      current.text += op.insert;
    }
  }
  if (current !== undefined) splices.push(current);
  return splices;
}
