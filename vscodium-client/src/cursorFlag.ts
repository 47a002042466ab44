/**
 * How another participant's caret looks: a coloured bar, and their name as a small flag that
 * floats over the code (absolutely positioned) instead of inline text that would push the
 * code after the caret aside. Pure data, so it is unit-tested without an editor.
 */

/** Above the caret's line, or below it on the first line (where "above" is clipped). */
export type FlagPlacement = 'above' | 'below';

export interface CaretLook {
  readonly border: string;
  readonly borderWidth: string;
  readonly after: {
    readonly contentText: string;
    readonly color: string;
    readonly backgroundColor: string;
    readonly textDecoration: string;
  };
}

/** Line height fraction the flag is lifted or lowered by, so it sits just off the line. */
const FLAG_OFFSET = '1.05em';

/** The caret decoration for a participant's colour and label. */
export function caretLook(color: string, label: string, placement: FlagPlacement): CaretLook {
  const vertical = placement === 'above' ? `top: -${FLAG_OFFSET}` : `top: ${FLAG_OFFSET}`;
  // VS Code writes `textDecoration` verbatim into the ::after rule: the extra declarations
  // take the flag out of the text flow, so the code keeps its columns. No `left`: the flag
  // keeps its horizontal place at the caret; `top` moves it off the caret's line.
  const overlay = [
    'none',
    'position: absolute',
    vertical,
    'z-index: 10',
    'pointer-events: none',
    'white-space: nowrap',
    'font-size: 0.8em',
    'line-height: 1.2em',
    'padding: 0 3px',
    'border-radius: 2px',
  ].join('; ');
  return {
    border: `solid ${color}`,
    borderWidth: '0 0 0 2px',
    after: { contentText: label, color: '#ffffff', backgroundColor: color, textDecoration: overlay },
  };
}

export function flagPlacement(line: number): FlagPlacement {
  return line === 0 ? 'below' : 'above';
}
