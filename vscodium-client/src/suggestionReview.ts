/**
 * Agent suggestions in the editor: each open suggestion of a shared file shows as a CodeLens
 * above its code ("author · model", Accept, Reject, Diff), its range tinted, and a diff view
 * (the file against a virtual document with the suggestion made). Accept and Reject call
 * the hub's HTTP API, which applies an accepted one through its rebasing and records who
 * decided; the records live in the Y document, so every window updates when anyone decides.
 */
import * as vscode from 'vscode';
import type { Session } from './session';
import type { SessionManager } from './sessionManager';
import { TEXT_FIELD, type SharedFile } from './sharedFile';
import {
  SUGGESTIONS_MAP,
  anchor,
  attribution,
  decisionUrl,
  openSuggestions,
  place,
  suggestedText,
  type Anchored,
  type Placement,
  type Suggestion,
} from './suggestions';

export const SUGGESTION_SCHEME = 'nova-suggestion';
const REFRESH_DELAY_MS = 30;

interface Shown {
  readonly file: SharedFile;
  readonly suggestion: Suggestion;
  readonly placement: Placement;
}

interface Target {
  readonly document: string;
  readonly id: string;
}

function isTarget(value: unknown): value is Target {
  const target = value as Partial<Target> | undefined;
  return typeof target?.document === 'string' && typeof target.id === 'string';
}

class SuggestionReview implements vscode.CodeLensProvider, vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly lensesChanged = new vscode.EventEmitter<void>();
  readonly onDidChangeCodeLenses = this.lensesChanged.event;
  private readonly contentChanged = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.contentChanged.event;
  /** The files whose suggestion map is observed, with how to stop. */
  private readonly watched = new Map<SharedFile, () => void>();
  /** Anchors per document and suggestion id (rebuilding a version is O(document)). */
  private readonly anchors = new Map<string, Anchored | undefined>();
  private readonly diffs = new Set<string>();
  private readonly tint = vscode.window.createTextEditorDecorationType({
    backgroundColor: new vscode.ThemeColor('diffEditor.removedTextBackground'),
    border: '1px dashed',
    borderColor: new vscode.ThemeColor('editorCodeLens.foreground'),
  });
  private sessionSubscription: vscode.Disposable | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** Watched files with at least one open suggestion. */
  private readonly withSuggestions = new Set<SharedFile>();
  /** Whether the last refresh showed any lens (then the next one must clear them). */
  private lensesShown = false;
  /** Editors whose tint was last set to nothing (clearing again is not sent). */
  private readonly untinted = new WeakSet<vscode.TextEditor>();

  constructor(
    private readonly manager: SessionManager,
    private readonly settings: () => { readonly token: string; readonly actor: string },
  ) {}

  follow(session: Session | undefined): void {
    this.sessionSubscription?.dispose();
    this.sessionSubscription = session?.onDidChange(() => this.watchFiles(session));
    this.watchFiles(session);
  }

  private watchFiles(session: Session | undefined): void {
    const files = new Set(session?.files.values() ?? []);
    for (const [file, stop] of this.watched) {
      if (files.has(file)) continue;
      stop();
      this.watched.delete(file);
    }
    for (const file of files) {
      if (this.watched.has(file)) continue;
      const map = file.connection.doc.getMap<unknown>(SUGGESTIONS_MAP);
      const recount = (): void => {
        if (openSuggestions(map, TEXT_FIELD).length > 0) this.withSuggestions.add(file);
        else this.withSuggestions.delete(file);
      };
      const suggestionsChanged = (): void => {
        recount();
        this.schedule();
      };
      // Typing moves suggestions only where there are some: a file without any (the usual case)
      // sends nothing to the workbench per keystroke (no CodeLens refresh, no decorations).
      const textChanged = (): void => {
        if (this.withSuggestions.has(file)) this.schedule();
      };
      recount();
      map.observe(suggestionsChanged);
      file.ytext.observe(textChanged);
      this.watched.set(file, () => {
        map.unobserve(suggestionsChanged);
        file.ytext.unobserve(textChanged);
        this.withSuggestions.delete(file);
      });
    }
    this.schedule();
  }

  schedule(): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.refresh();
    }, REFRESH_DELAY_MS);
  }

  private refresh(): void {
    const anyLenses = this.withSuggestions.size > 0;
    if (anyLenses || this.lensesShown) this.lensesChanged.fire();
    this.lensesShown = anyLenses;
    for (const editor of vscode.window.visibleTextEditors) {
      const shown = this.shownIn(editor.document);
      const ranges: vscode.DecorationOptions[] = [];
      for (const { file, suggestion, placement } of shown) {
        for (const edit of placement.edits) {
          const range = this.rangeOf(file, edit.start, edit.end);
          if (range === undefined || range.isEmpty) continue;
          const hover = new vscode.MarkdownString(`**${attribution(suggestion)}** suggests:`);
          hover.appendCodeblock(edit.text === '' ? '(delete)' : edit.text);
          ranges.push({ range, hoverMessage: hover });
        }
      }
      if (ranges.length === 0) {
        if (this.untinted.has(editor)) continue;
        this.untinted.add(editor);
      } else this.untinted.delete(editor);
      editor.setDecorations(this.tint, ranges);
    }
    for (const uri of this.diffs) this.contentChanged.fire(vscode.Uri.parse(uri));
  }

  private fileOf(document: vscode.TextDocument): SharedFile | undefined {
    for (const file of this.watched.keys()) if (file.isBoundTo(document)) return file;
    return undefined;
  }

  private fileNamed(documentName: string): SharedFile | undefined {
    for (const file of this.watched.keys()) if (file.documentName === documentName) return file;
    return undefined;
  }

  private shownIn(document: vscode.TextDocument): Shown[] {
    const file = this.fileOf(document);
    return file === undefined ? [] : this.shownFor(file);
  }

  private shownFor(file: SharedFile): Shown[] {
    const doc = file.connection.doc;
    return openSuggestions(doc.getMap<unknown>(SUGGESTIONS_MAP), TEXT_FIELD).map((suggestion) => {
      const key = `${file.documentName}\0${suggestion.id}`;
      if (!this.anchors.has(key)) this.anchors.set(key, anchor(doc, suggestion));
      return { file, suggestion, placement: place(doc, TEXT_FIELD, this.anchors.get(key), suggestion) };
    });
  }

  private rangeOf(file: SharedFile, start: number, end: number): vscode.Range | undefined {
    const binding = file.binding;
    if (binding === undefined) return undefined;
    return new vscode.Range(binding.yIndexToPosition(start), binding.yIndexToPosition(end));
  }

  provideCodeLenses(document: vscode.TextDocument): vscode.CodeLens[] {
    const lenses: vscode.CodeLens[] = [];
    for (const { file, suggestion, placement } of this.shownIn(document)) {
      const first = placement.edits[0];
      if (first === undefined) continue;
      const at = this.rangeOf(file, first.start, first.start);
      if (at === undefined) continue;
      const line = new vscode.Range(at.start.line, 0, at.start.line, 0);
      const target: Target = { document: file.documentName, id: suggestion.id };
      const note = placement.changed ? ' (the code changed since)' : placement.approximate ? ' (position approximate)' : '';
      lenses.push(
        new vscode.CodeLens(line, {
          title: `$(hubot) Suggestion by ${attribution(suggestion)}${note}`,
          tooltip: `Show the suggested change of ${suggestion.author} as a diff`,
          command: 'nova.showSuggestion',
          arguments: [target],
        }),
        new vscode.CodeLens(line, { title: '$(check) Accept', command: 'nova.acceptSuggestion', arguments: [target] }),
        new vscode.CodeLens(line, { title: '$(close) Reject', command: 'nova.rejectSuggestion', arguments: [target] }),
      );
    }
    return lenses;
  }

  /** The virtual right side of a diff: the file as it is now, with the suggestion made. */
  provideTextDocumentContent(uri: vscode.Uri): string {
    const target = this.targetOfUri(uri);
    const file = target === undefined ? undefined : this.fileNamed(target.document);
    const shown = file === undefined ? undefined : this.shownFor(file).find((s) => s.suggestion.id === target?.id);
    const binding = file?.binding;
    if (shown === undefined || binding === undefined) return 'This suggestion is no longer open.';
    const document = binding.document;
    const edits = shown.placement.edits.map((edit) => ({
      ...edit,
      start: document.offsetAt(binding.yIndexToPosition(edit.start)),
      end: document.offsetAt(binding.yIndexToPosition(edit.end)),
    }));
    return suggestedText(document.getText(), edits);
  }

  private targetOfUri(uri: vscode.Uri): Target | undefined {
    try {
      const target: unknown = JSON.parse(uri.query);
      return isTarget(target) ? target : undefined;
    } catch {
      return undefined;
    }
  }

  async showDiff(target: Target): Promise<void> {
    const file = this.fileNamed(target.document);
    const shown = file === undefined ? undefined : this.shownFor(file).find((s) => s.suggestion.id === target.id);
    const binding = file?.binding;
    if (shown === undefined || binding === undefined) throw new Error('this suggestion is no longer open');
    const base = target.document.split('/').pop() ?? target.document;
    const right = vscode.Uri.from({ scheme: SUGGESTION_SCHEME, path: `/${base}`, query: JSON.stringify(target) });
    this.diffs.add(right.toString());
    await vscode.commands.executeCommand(
      'vscode.diff',
      binding.document.uri,
      right,
      `${base} ↔ suggestion by ${attribution(shown.suggestion)}`,
    );
  }

  /** Accept or reject through the hub (it applies, rebased, and records who decided). */
  async decide(target: Target, decision: 'accept' | 'reject'): Promise<void> {
    const file = this.fileNamed(target.document);
    if (file === undefined) throw new Error('this suggestion is not in the session');
    const { token, actor } = this.settings();
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (token !== '') headers.authorization = `Bearer ${token}`;
    const response = await fetch(decisionUrl(file.connection.options.hubUrl, target.document, target.id, decision), {
      method: 'POST',
      headers,
      body: JSON.stringify({ actor }),
    });
    if (!response.ok) {
      const body = (await response.json().catch(() => undefined)) as { error?: { message?: string } } | undefined;
      throw new Error(`could not ${decision} the suggestion: ${body?.error?.message ?? `HTTP ${response.status}`}`);
    }
    this.schedule();
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.sessionSubscription?.dispose();
    for (const stop of this.watched.values()) stop();
    this.watched.clear();
    this.tint.dispose();
    this.lensesChanged.dispose();
    this.contentChanged.dispose();
  }
}

/** The suggestion lenses, decorations, diff documents and the accept/reject/show commands. */
export function registerSuggestionReview(
  context: vscode.ExtensionContext,
  manager: SessionManager,
  run: (name: string, action: (...args: unknown[]) => unknown) => (...args: unknown[]) => Promise<unknown>,
  settings: () => { readonly token: string; readonly actor: string },
): void {
  const review = new SuggestionReview(manager, settings);
  const targetOf = (value: unknown): Target => {
    if (!isTarget(value)) throw new Error('use the Accept / Reject lens above a suggestion');
    return value;
  };
  context.subscriptions.push(
    review,
    manager.onDidChange((session) => review.follow(session)),
    vscode.languages.registerCodeLensProvider([{ scheme: 'file' }, { scheme: 'nova' }], review),
    vscode.workspace.registerTextDocumentContentProvider(SUGGESTION_SCHEME, review),
    vscode.window.onDidChangeVisibleTextEditors(() => review.schedule()),
    vscode.commands.registerCommand('nova.showSuggestion', run('show suggestion', (t) => review.showDiff(targetOf(t)))),
    vscode.commands.registerCommand('nova.acceptSuggestion', run('accept suggestion', (t) => review.decide(targetOf(t), 'accept'))),
    vscode.commands.registerCommand('nova.rejectSuggestion', run('reject suggestion', (t) => review.decide(targetOf(t), 'reject'))),
  );
  review.follow(manager.session);
}
