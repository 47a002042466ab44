/**
 * Lines of a text the way VS Code counts them (a line break is "\r\n", "\r" or "\n"),
 * so a (line, character) position means the same in the editor, whatever its end-of-line
 * setting, and in the shared Y.Text, which keeps "\n".
 */

export interface LinePosition {
  readonly line: number;
  readonly character: number;
}

const LINE_BREAK = /\r\n|\r|\n/g;

/** Offsets where each line starts. */
export function lineStarts(text: string): number[] {
  const starts = [0];
  for (const match of text.matchAll(LINE_BREAK)) starts.push(match.index + match[0].length);
  return starts;
}

export class LineIndex {
  private readonly starts: number[];

  constructor(readonly text: string) {
    this.starts = lineStarts(text);
  }

  offsetAt(position: LinePosition): number {
    const line = Math.min(Math.max(position.line, 0), this.starts.length - 1);
    const start = this.starts[line] ?? 0;
    const end = line + 1 < this.starts.length ? this.lineEnd(line) : this.text.length;
    return Math.min(start + Math.max(position.character, 0), end);
  }

  positionAt(offset: number): LinePosition {
    const at = Math.min(Math.max(offset, 0), this.text.length);
    let low = 0;
    let high = this.starts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if ((this.starts[mid] ?? 0) <= at) low = mid;
      else high = mid - 1;
    }
    return { line: low, character: at - (this.starts[low] ?? 0) };
  }

  /** Offset of the line break ending `line` (text length for the last line). */
  private lineEnd(line: number): number {
    const next = this.starts[line + 1] ?? this.text.length;
    if (this.text[next - 1] === '\n' && this.text[next - 2] === '\r') return next - 2;
    return next - 1;
  }
}

/** Every line break as "\n". */
export function toLf(text: string): string {
  return text.replace(LINE_BREAK, '\n');
}

/** Every line break as `eol`. */
export function withEol(text: string, eol: string): string {
  return eol === '\n' ? toLf(text) : text.replace(LINE_BREAK, eol);
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

/**
 * The one changed region between `base` (any line breaks) and `target` (compared with line
 * breaks as "\n"): offsets into `base`, the replacement taken from `target`. Line breaks
 * count as equal whatever their form, and a surrogate pair is never split.
 */
export function lineBreakAwareDiff(
  base: string,
  target: string,
): { start: number; end: number; text: string; targetStart: number; targetEnd: number } {
  const b = base;
  const t = toLf(target);
  let i = 0;
  let j = 0;
  for (;;) {
    if (i >= b.length || j >= t.length) break;
    if (b[i] === '\r' && t[j] === '\n') {
      i += b[i + 1] === '\n' ? 2 : 1;
      j += 1;
    } else if (b[i] === t[j]) {
      i += 1;
      j += 1;
    } else {
      break;
    }
  }
  if (i > 0 && j > 0 && isHighSurrogate(t.charCodeAt(j - 1)) && b[i] !== t[j]) {
    i -= 1;
    j -= 1;
  }
  let k = b.length;
  let l = t.length;
  while (k > i && l > j) {
    if (b[k - 1] === '\n' && b[k - 2] === '\r' && k - 2 >= i && t[l - 1] === '\n') {
      k -= 2;
      l -= 1;
    } else if (b[k - 1] === '\r' && t[l - 1] === '\n') {
      k -= 1;
      l -= 1;
    } else if (b[k - 1] === t[l - 1]) {
      k -= 1;
      l -= 1;
    } else {
      break;
    }
  }
  if (k < b.length && l < t.length && isHighSurrogate(t.charCodeAt(l - 1))) {
    k += 1;
    l += 1;
  }
  return { start: i, end: k, text: t.slice(j, l), targetStart: j, targetEnd: l };
}
