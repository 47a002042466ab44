/**
 * Other participants' cursors and selections in the editors showing a bound document:
 * a coloured caret, a tinted selection and a name flag floating over the code (never
 * inline, so no code moves), repeated as the hover of caret and selection ("🤖" marks agents).
 */
import * as vscode from 'vscode';
import type * as awarenessProtocol from 'y-protocols/awareness';
import type { DocumentBinding } from './binding';
import type { CodePointIndex } from './codePoints';
import { caretLook, flagPlacement, type FlagPlacement } from './cursorFlag';
import { participants, type Participant } from './presence';

interface Look {
  readonly caret: vscode.TextEditorDecorationType;
  readonly selection: vscode.TextEditorDecorationType;
}

export function labelOf(participant: Pick<Participant, 'name' | 'kind' | 'model'>): string {
  if (participant.kind !== 'agent') return participant.name;
  return participant.model === undefined ? `🤖 ${participant.name}` : `🤖 ${participant.name} (${participant.model})`;
}

export class RemoteCursors implements vscode.Disposable {
  private readonly looks = new Map<string, Look>();
  private readonly subscriptions: vscode.Disposable[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** The largest editor offset a drawn caret or selection touches (-1: none drawn). */
  private lastDrawnOffset = -1;
  /** Decoration types each editor shows nothing of: clearing them again is not sent (each
   * setDecorations is a message to the renderer, competing with the edits themselves).
   * Non-empty ones are always sent: VS Code moves them with edits, so ours may differ. */
  private readonly empty = new WeakMap<vscode.TextEditor, Set<vscode.TextEditorDecorationType>>();

  constructor(
    private readonly binding: DocumentBinding,
    private readonly awareness: awarenessProtocol.Awareness,
    private readonly codePoints: CodePointIndex,
  ) {
    const schedule = (): void => this.schedule();
    awareness.on('change', schedule);
    this.subscriptions.push(
      { dispose: () => awareness.off('change', schedule) },
      binding.onDidSync((direction) => {
        // VS Code moves decorations with edits: a local change after every remote caret and
        // selection leaves them right, so nothing is sent to the workbench for it.
        if (direction === 'local' && binding.lastLocalChangeStart > this.lastDrawnOffset) return;
        schedule();
      }),
      vscode.window.onDidChangeVisibleTextEditors(schedule),
    );
    this.schedule();
  }

  private schedule(): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.render();
    }, 30);
  }

  private look(participant: Participant, placement: FlagPlacement): Look {
    const key = `${participant.color}|${labelOf(participant)}|${placement}`;
    let look = this.looks.get(key);
    if (look === undefined) {
      look = {
        caret: vscode.window.createTextEditorDecorationType({
          ...caretLook(participant.color, labelOf(participant), placement),
          rangeBehavior: vscode.DecorationRangeBehavior.ClosedClosed,
        }),
        selection: vscode.window.createTextEditorDecorationType({
          backgroundColor: `${participant.color}40`,
          rangeBehavior: vscode.DecorationRangeBehavior.ClosedClosed,
        }),
      };
      this.looks.set(key, look);
    }
    return look;
  }

  render(): void {
    const document = this.binding.document;
    const editors = vscode.window.visibleTextEditors.filter((editor) => editor.document === document);
    const carets = new Map<Look, vscode.DecorationOptions[]>();
    const selections = new Map<Look, vscode.DecorationOptions[]>();
    for (const look of this.looks.values()) {
      carets.set(look, []);
      selections.set(look, []);
    }
    let lastDrawnOffset = -1;
    for (const participant of participants(this.awareness, this.codePoints)) {
      if (participant.isLocal || participant.cursor === undefined) continue;
      lastDrawnOffset = Math.max(
        lastDrawnOffset,
        this.binding.yIndexToOffset(participant.cursor.head),
        this.binding.yIndexToOffset(participant.cursor.anchor),
      );
      const head = this.binding.yIndexToPosition(participant.cursor.head);
      const anchor = this.binding.yIndexToPosition(participant.cursor.anchor);
      const look = this.look(participant, flagPlacement(head.line));
      const hoverMessage = labelOf(participant);
      (carets.get(look) ?? carets.set(look, []).get(look))?.push({ range: new vscode.Range(head, head), hoverMessage });
      if (!anchor.isEqual(head)) {
        (selections.get(look) ?? selections.set(look, []).get(look))?.push({
          range: new vscode.Range(anchor, head),
          hoverMessage,
        });
      }
    }
    this.lastDrawnOffset = lastDrawnOffset;
    for (const editor of editors) {
      for (const [look, ranges] of carets) this.decorate(editor, look.caret, ranges);
      for (const [look, ranges] of selections) this.decorate(editor, look.selection, ranges);
    }
  }

  private decorate(
    editor: vscode.TextEditor,
    type: vscode.TextEditorDecorationType,
    ranges: readonly vscode.DecorationOptions[],
  ): void {
    let empty = this.empty.get(editor);
    if (empty === undefined) this.empty.set(editor, (empty = new Set()));
    if (ranges.length === 0) {
      if (empty.has(type)) return;
      empty.add(type);
    } else empty.delete(type);
    editor.setDecorations(type, ranges);
  }

  dispose(): void {
    clearTimeout(this.timer);
    for (const subscription of this.subscriptions) subscription.dispose();
    for (const look of this.looks.values()) {
      look.caret.dispose();
      look.selection.dispose();
    }
    this.looks.clear();
  }
}
