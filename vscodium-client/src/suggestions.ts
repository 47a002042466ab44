/**
 * Suggestions stored in a document (root map `nova:suggestions`, one JSON record per id,
 * written by the hub's suggestion API), read and placed on the live text. No VS Code here.
 *
 * A record's edits are code points in the text at its `version` (an encoded Yjs snapshot).
 * To show them on today's text, the version's text is rebuilt from the local Y.Doc (it keeps
 * deleted items: gc off), each range is pinned to the characters it covered there (relative
 * positions, i.e. CRDT identity) and resolved in the live text, so a suggestion stays on its
 * code when people type above it. The hub does the same when it applies an accepted one.
 *
 * Records are untrusted data (any writer can put anything in the map): each is parsed field
 * by field and malformed ones are skipped. The `author` is whom the hub recorded: the verified
 * token subject when the hub runs with auth; `model` is what the suggesting caller claimed.
 */
import * as Y from 'yjs';

export const SUGGESTIONS_MAP = 'nova:suggestions';
const STATUSES = ['open', 'accepted', 'rejected'] as const;
export type SuggestionStatus = (typeof STATUSES)[number];

export interface SuggestionEdit {
  /** Code points in the text at `version`. */
  readonly start: number;
  readonly end: number;
  readonly text: string;
}

export interface Suggestion {
  readonly id: string;
  readonly author: string;
  readonly model: string | undefined;
  readonly version: string;
  readonly field: string;
  readonly edits: readonly SuggestionEdit[];
  readonly status: SuggestionStatus;
  readonly createdAt: number;
  readonly decidedBy: string | undefined;
}

/** One edit placed on the live text: UTF-16 offsets (Y.Text and VS Code units). */
export interface LiveEdit {
  readonly start: number;
  readonly end: number;
  readonly text: string;
  /** The text the suggestion meant to replace (from its version). */
  readonly expected: string;
}

export interface Placement {
  readonly edits: readonly LiveEdit[];
  /** The live text under an edit is no longer what the author saw (accepting will likely be refused). */
  readonly changed: boolean;
  /** The version could not be rebuilt: positions are the record's, taken as they are. */
  readonly approximate: boolean;
}

const MAX_RECORD_CHARS = 256 * 1024;

function nonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value !== '';
}

function isOffset(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

/** A stored record, checked like the hub checks it; undefined when malformed. */
export function parseSuggestion(key: string, raw: unknown): Suggestion | undefined {
  if (typeof raw !== 'string' || raw.length > MAX_RECORD_CHARS) return undefined;
  let record: unknown;
  try {
    record = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record)) return undefined;
  const r = record as Record<string, unknown>;
  const { id, author, version, field, status, model, created_at: createdAt, decided_by: decidedBy } = r;
  if (!nonEmptyString(id) || id !== key || !nonEmptyString(author) || !nonEmptyString(version)) return undefined;
  if (!nonEmptyString(field) || !STATUSES.includes(status as SuggestionStatus)) return undefined;
  if (typeof createdAt !== 'number' || !Number.isFinite(createdAt)) return undefined;
  if (model !== undefined && typeof model !== 'string') return undefined;
  if (decidedBy !== undefined && typeof decidedBy !== 'string') return undefined;
  if (!Array.isArray(r.edits) || r.edits.length === 0) return undefined;
  const edits: SuggestionEdit[] = [];
  for (const item of r.edits as unknown[]) {
    if (typeof item !== 'object' || item === null) return undefined;
    const { start, end, text } = item as Record<string, unknown>;
    if (!isOffset(start) || !isOffset(end) || end < start || typeof text !== 'string') return undefined;
    edits.push({ start, end, text });
  }
  return {
    id,
    author,
    model: model === '' ? undefined : model,
    version,
    field,
    edits: [...edits].sort((a, b) => a.start - b.start),
    status: status as SuggestionStatus,
    createdAt,
    decidedBy,
  };
}

/** The open suggestions on `field`, oldest first (malformed records are left out). */
export function openSuggestions(map: Y.Map<unknown>, field: string): Suggestion[] {
  const found: Suggestion[] = [];
  map.forEach((raw, key) => {
    const suggestion = parseSuggestion(key, raw);
    if (suggestion?.status === 'open' && suggestion.field === field) found.push(suggestion);
  });
  return found.sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
}

/** The UTF-16 offset of code point `index` in `text` (clamped to the text). */
export function codePointToUtf16(text: string, index: number): number {
  let units = 0;
  let points = 0;
  while (points < index && units < text.length) {
    const code = text.charCodeAt(units);
    units += code >= 0xd800 && code <= 0xdbff && units + 1 < text.length ? 2 : 1;
    points += 1;
  }
  return units;
}

function decodeVersion(token: string): Y.Snapshot {
  const base64 = token.replace(/-/g, '+').replace(/_/g, '/');
  const padded = base64 + '='.repeat((4 - (base64.length % 4)) % 4);
  return Y.decodeSnapshot(Uint8Array.from(Buffer.from(padded, 'base64')));
}

/** A suggestion's edits pinned to the characters they cover in its version. */
export interface Anchored {
  readonly edits: readonly {
    readonly start: Y.RelativePosition;
    readonly end: Y.RelativePosition;
    readonly text: string;
    readonly expected: string;
  }[];
}

/**
 * Pins the edits to CRDT identity in the version's text; undefined when the version cannot be
 * rebuilt from `doc` (garbage-collected, or from another document). O(document): cache it.
 */
export function anchor(doc: Y.Doc, suggestion: Suggestion): Anchored | undefined {
  let old: Y.Doc;
  try {
    old = Y.createDocFromSnapshot(doc, decodeVersion(suggestion.version));
  } catch {
    return undefined;
  }
  try {
    const text = old.getText(suggestion.field);
    const value = text.toString();
    const edits = suggestion.edits.map((edit) => {
      const start = codePointToUtf16(value, edit.start);
      const end = codePointToUtf16(value, edit.end);
      return {
        // The start sticks to the first character it covers, the end to the last one.
        start: Y.createRelativePositionFromTypeIndex(text, start, 0),
        end: Y.createRelativePositionFromTypeIndex(text, end, end > start ? -1 : 0),
        text: edit.text,
        expected: value.slice(start, end),
      };
    });
    return { edits };
  } finally {
    old.destroy();
  }
}

/** Where the anchored edits are in `doc`'s live text now. */
export function place(doc: Y.Doc, field: string, anchored: Anchored | undefined, suggestion: Suggestion): Placement {
  const live = doc.getText(field).toString();
  if (anchored === undefined) {
    const edits = suggestion.edits.map((edit) => {
      const start = codePointToUtf16(live, edit.start);
      const end = codePointToUtf16(live, edit.end);
      return { start, end, text: edit.text, expected: live.slice(start, end) };
    });
    return { edits, changed: false, approximate: true };
  }
  let changed = false;
  const edits = anchored.edits.map((edit) => {
    const start = Y.createAbsolutePositionFromRelativePosition(edit.start, doc)?.index ?? 0;
    const end = Math.max(start, Y.createAbsolutePositionFromRelativePosition(edit.end, doc)?.index ?? start);
    if (live.slice(start, end) !== edit.expected) changed = true;
    return { start, end, text: edit.text, expected: edit.expected };
  });
  return { edits, changed, approximate: false };
}

/** `live` with the edits made (what the diff view shows on its right). */
export function suggestedText(live: string, edits: readonly LiveEdit[]): string {
  let result = live;
  for (const edit of [...edits].sort((a, b) => b.start - a.start)) {
    result = result.slice(0, edit.start) + edit.text + result.slice(edit.end);
  }
  return result;
}

/** "agent:Fixer · rules-1": who suggested it (as the hub recorded) and the model they named. */
export function attribution(suggestion: Suggestion): string {
  return suggestion.model !== undefined ? `${suggestion.author} · ${suggestion.model}` : suggestion.author;
}

/** The hub's HTTP endpoint deciding a suggestion (the WebSocket URL's host, http(s)). */
export function decisionUrl(hubUrl: string, document: string, id: string, decision: 'accept' | 'reject'): string {
  const base = hubUrl.replace(/^ws(s?):\/\//, 'http$1://').replace(/\/+$/, '');
  const path = document.split('/').map(encodeURIComponent).join('/');
  return `${base}/api/documents/${path}/suggestions/${encodeURIComponent(id)}/${decision}`;
}
