/**
 * Code point indices (how agents name positions: Python string indices) to a Y.Text's UTF-16
 * indices, without reading the text. The two differ by one for every astral character (a
 * surrogate pair) before the position, so the index keeps where those are, updated from the
 * Y.Text's change events: O(change + astral characters after it) per edit, O(log n) per lookup.
 * Reading the whole text per remote cursor update, as before, was O(file).
 */
import type * as Y from 'yjs';

function isHigh(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

function isLow(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

/** Offsets (within `text`) of the high surrogates of its surrogate pairs. */
function astralOffsets(text: string): number[] {
  const found: number[] = [];
  for (let i = 0; i + 1 < text.length; i += 1) {
    if (isHigh(text.charCodeAt(i)) && isLow(text.charCodeAt(i + 1))) {
      found.push(i);
      i += 1;
    }
  }
  return found;
}

export class CodePointIndex {
  /** UTF-16 indices of the astral characters in the Y.Text, ascending. */
  private astral: number[];
  /** Astral entries visited by updates and lookups (tests compare it across file sizes). */
  work = 0;

  constructor(readonly ytext: Y.Text) {
    this.astral = astralOffsets(ytext.toString());
    ytext.observe(this.onChange);
  }

  private readonly onChange = (event: Y.YTextEvent): void => {
    let index = 0;
    for (const op of event.delta) {
      if (op.retain !== undefined) {
        index += op.retain;
      } else if (op.delete !== undefined) {
        this.remove(index, op.delete);
      } else if (typeof op.insert === 'string') {
        this.insert(index, op.insert.length, astralOffsets(op.insert));
        index += op.insert.length;
      } else if (op.insert !== undefined) {
        const length = Array.isArray(op.insert) ? op.insert.length : 1;
        this.insert(index, length, []);
        index += length;
      }
    }
  };

  /** The first entry at or after UTF-16 index `at`. */
  private firstFrom(at: number): number {
    let low = 0;
    let high = this.astral.length;
    while (low < high) {
      this.work += 1;
      const middle = (low + high) >> 1;
      if ((this.astral[middle] ?? 0) < at) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  private insert(at: number, length: number, offsets: readonly number[]): void {
    const from = this.firstFrom(at);
    for (let i = from; i < this.astral.length; i += 1) {
      this.work += 1;
      this.astral[i] = (this.astral[i] ?? 0) + length;
    }
    if (offsets.length > 0) this.astral.splice(from, 0, ...offsets.map((offset) => at + offset));
  }

  private remove(at: number, length: number): void {
    const from = this.firstFrom(at);
    const to = this.firstFrom(at + length);
    this.astral.splice(from, to - from);
    for (let i = from; i < this.astral.length; i += 1) {
      this.work += 1;
      this.astral[i] = (this.astral[i] ?? 0) - length;
    }
  }

  /** The UTF-16 index of code point `codePoints` (clamped to the text). */
  toUtf16(codePoints: number): number {
    // The k-th astral character (from 0) starts at code point astral[k] - k.
    let low = 0;
    let high = this.astral.length;
    while (low < high) {
      this.work += 1;
      const middle = (low + high) >> 1;
      if ((this.astral[middle] ?? 0) - middle < codePoints) low = middle + 1;
      else high = middle;
    }
    return Math.max(0, Math.min(codePoints + low, this.ytext.length));
  }

  dispose(): void {
    this.ytext.unobserve(this.onChange);
  }
}
