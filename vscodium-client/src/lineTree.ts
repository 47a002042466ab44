/**
 * A text kept as a balanced tree of its lines (a treap ordered by line number), so that the
 * binding's per-keystroke work is O(change + log lines), not O(file):
 * - `positionAt` / `offsetAt` walk one root-to-leaf path (subtree sums of characters and lines);
 * - `splice` re-reads only the lines the change touches and splits the tree around them;
 * - `slice` visits only the lines it returns.
 * Line breaks are those VS Code counts ("\r\n", "\r", "\n"); each line keeps its own break, the
 * last line has none. `work` counts the tree nodes visited, so tests can show the cost of an
 * edit does not grow with the file.
 */
import type { LinePosition } from './lines';

interface Node {
  /** The line, with its line break (the last line has none). */
  text: string;
  breakLength: number;
  priority: number;
  left: Node | undefined;
  right: Node | undefined;
  /** Lines and characters in this subtree. */
  lines: number;
  chars: number;
}

const LINE = /[^\r\n]*(\r\n|\r|\n)?/y;

/** The lines of `text`, each with its break; always at least one (the last, without a break). */
function splitLines(text: string): { text: string; breakLength: number }[] {
  const lines: { text: string; breakLength: number }[] = [];
  LINE.lastIndex = 0;
  for (;;) {
    const start = LINE.lastIndex;
    const match = LINE.exec(text);
    if (match === null) break;
    const brk = match[1];
    if (brk === undefined) {
      lines.push({ text: text.slice(start), breakLength: 0 });
      break;
    }
    lines.push({ text: match[0], breakLength: brk.length });
  }
  return lines;
}

export class LineTree {
  private root: Node | undefined;
  /** Tree nodes visited since construction (or since the caller reset it). */
  work = 0;
  /** xorshift state for the treap priorities (per tree: no global state). */
  private seed = 0x9e3779b9;

  constructor(text: string) {
    this.root = this.build(splitLines(text));
  }

  get length(): number {
    return this.root?.chars ?? 0;
  }

  get lineCount(): number {
    return this.root?.lines ?? 1;
  }

  toString(): string {
    const parts: string[] = [];
    const walk = (node: Node | undefined): void => {
      if (node === undefined) return;
      walk(node.left);
      parts.push(node.text);
      walk(node.right);
    };
    walk(this.root);
    return parts.join('');
  }

  /** The offset of a (line, character) position; a character past the line's end stops at its break. */
  offsetAt(position: LinePosition): number {
    const found = this.lineByIndex(Math.min(Math.max(position.line, 0), this.lineCount - 1));
    if (found === undefined) return 0;
    const contentLength = found.node.text.length - found.node.breakLength;
    return found.start + Math.min(Math.max(position.character, 0), contentLength);
  }

  positionAt(offset: number): LinePosition {
    const at = Math.min(Math.max(offset, 0), this.length);
    const found = this.lineByOffset(at);
    if (found === undefined) return { line: 0, character: 0 };
    return { line: found.line, character: at - found.start };
  }

  /** The text between two offsets. */
  slice(start: number, end: number): string {
    const from = Math.max(0, start);
    const to = Math.min(this.length, end);
    if (to <= from) return '';
    const parts: string[] = [];
    const walk = (node: Node | undefined, base: number): void => {
      if (node === undefined) return;
      this.work += 1;
      const leftChars = node.left?.chars ?? 0;
      const nodeStart = base + leftChars;
      const nodeEnd = nodeStart + node.text.length;
      if (from < nodeStart) walk(node.left, base);
      if (nodeStart < to && from < nodeEnd) {
        parts.push(node.text.slice(Math.max(0, from - nodeStart), Math.min(node.text.length, to - nodeStart)));
      }
      if (to > nodeEnd) walk(node.right, nodeEnd);
    };
    walk(this.root, 0);
    return parts.join('');
  }

  /** Replaces the text between two offsets. */
  splice(start: number, end: number, text: string): void {
    const from = Math.min(Math.max(start, 0), this.length);
    const to = Math.min(Math.max(end, from), this.length);
    if (from === to && text === '') return;
    let first = this.lineByOffset(from);
    const last = this.lineByOffset(to);
    if (first === undefined || last === undefined) return;
    // A change at the start of a line after a lone "\r" may complete that break into "\r\n".
    if (from === first.start && first.line > 0) {
      const previous = this.lineByIndex(first.line - 1);
      if (previous !== undefined && previous.node.text.endsWith('\r') && previous.node.breakLength === 1) first = previous;
    }
    const [before, rest] = this.splitAt(this.root, first.line);
    const [touched, after] = this.splitAt(rest, last.line - first.line + 1);
    const old = this.slice0(touched);
    const rewritten = old.slice(0, from - first.start) + text + old.slice(to - first.start);
    this.root = this.merge(this.merge(before, this.build(splitLines(rewritten), after === undefined)), after);
  }

  // -- tree ---------------------------------------------------------------------------------

  /** The line containing `offset` (the last line for the text's length), with its start. */
  private lineByOffset(offset: number): { node: Node; line: number; start: number } | undefined {
    let node = this.root;
    let line = 0;
    let start = 0;
    while (node !== undefined) {
      this.work += 1;
      const leftChars = node.left?.chars ?? 0;
      const leftLines = node.left?.lines ?? 0;
      if (offset < start + leftChars) {
        node = node.left;
      } else if (offset < start + leftChars + node.text.length || node.right === undefined) {
        return { node, line: line + leftLines, start: start + leftChars };
      } else {
        line += leftLines + 1;
        start += leftChars + node.text.length;
        node = node.right;
      }
    }
    return undefined;
  }

  private lineByIndex(index: number): { node: Node; line: number; start: number } | undefined {
    let node = this.root;
    let line = 0;
    let start = 0;
    while (node !== undefined) {
      this.work += 1;
      const leftLines = node.left?.lines ?? 0;
      const leftChars = node.left?.chars ?? 0;
      if (index < line + leftLines) {
        node = node.left;
      } else if (index === line + leftLines) {
        return { node, line: index, start: start + leftChars };
      } else {
        line += leftLines + 1;
        start += leftChars + node.text.length;
        node = node.right;
      }
    }
    return undefined;
  }

  /** The whole text of a (small) subtree. */
  private slice0(node: Node | undefined): string {
    const parts: string[] = [];
    const walk = (n: Node | undefined): void => {
      if (n === undefined) return;
      this.work += 1;
      walk(n.left);
      parts.push(n.text);
      walk(n.right);
    };
    walk(node);
    return parts.join('');
  }

  private update(node: Node): Node {
    node.lines = 1 + (node.left?.lines ?? 0) + (node.right?.lines ?? 0);
    node.chars = node.text.length + (node.left?.chars ?? 0) + (node.right?.chars ?? 0);
    return node;
  }

  /** Splits into the first `count` lines and the rest. */
  private splitAt(node: Node | undefined, count: number): [Node | undefined, Node | undefined] {
    if (node === undefined) return [undefined, undefined];
    this.work += 1;
    const leftLines = node.left?.lines ?? 0;
    if (count <= leftLines) {
      const [a, b] = this.splitAt(node.left, count);
      node.left = b;
      return [a, this.update(node)];
    }
    const [a, b] = this.splitAt(node.right, count - leftLines - 1);
    node.right = a;
    return [this.update(node), b];
  }

  private merge(left: Node | undefined, right: Node | undefined): Node | undefined {
    if (left === undefined) return right;
    if (right === undefined) return left;
    this.work += 1;
    if (left.priority > right.priority) {
      left.right = this.merge(left.right, right);
      return this.update(left);
    }
    right.left = this.merge(left, right.left);
    return this.update(right);
  }

  /**
   * A treap of `lines` in O(lines) (a Cartesian tree built with a stack). A rewritten region
   * that is not at the end of the text ends with a break: its empty "last line" is dropped.
   */
  private build(lines: { text: string; breakLength: number }[], isEnd = true): Node | undefined {
    const kept = !isEnd && lines.length > 1 && lines[lines.length - 1]?.text === '' ? lines.slice(0, -1) : lines;
    const stack: Node[] = [];
    for (const line of kept) {
      this.work += 1;
      const node: Node = { ...line, priority: this.nextPriority(), left: undefined, right: undefined, lines: 1, chars: 0 };
      node.chars = node.text.length;
      let last: Node | undefined;
      while (stack.length > 0 && (stack[stack.length - 1]?.priority ?? 0) < node.priority) {
        last = stack.pop();
        if (last !== undefined) this.update(last);
      }
      node.left = last;
      const parent = stack[stack.length - 1];
      if (parent !== undefined) parent.right = node;
      stack.push(node);
    }
    for (let i = stack.length - 1; i >= 0; i -= 1) {
      const node = stack[i];
      if (node !== undefined) this.update(node);
    }
    return stack[0];
  }

  private nextPriority(): number {
    let x = this.seed;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.seed = x >>> 0;
    return this.seed;
  }
}
