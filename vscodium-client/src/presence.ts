/**
 * The people and agents on a document, read from awareness states:
 * `{user: {name, color, kind, model?}, cursor: {anchor, head}}` with Y.RelativePosition JSON
 * (y-codemirror.next style), or for agents `nova: {index, length}` in code points.
 * Cursors resolve to Y.Text indices (UTF-16). No VS Code here.
 */
import * as Y from 'yjs';
import type * as awarenessProtocol from 'y-protocols/awareness';
import type { CodePointIndex } from './codePoints';

export type ParticipantKind = 'human' | 'agent';

export interface LocalUser {
  /** Who this is across the session's documents (each connection has its own awareness client
   * id): random per session start, so two people with one name stay two. */
  readonly id?: string;
  readonly name: string;
  readonly color: string;
  readonly kind: ParticipantKind;
}

export interface Participant {
  /** Identity in the session: the user id its editor publishes, else its client on this document. */
  readonly key: string;
  readonly clientId: number;
  readonly name: string;
  readonly color: string;
  readonly kind: ParticipantKind;
  readonly model: string | undefined;
  /** Y.Text indices; anchor === head for a bare cursor. */
  readonly cursor: { readonly anchor: number; readonly head: number } | undefined;
  /** The shared file they are in (folder sessions), when they say. */
  readonly file: string | undefined;
  readonly isLocal: boolean;
}

const FALLBACK_COLORS = ['#e06c75', '#61afef', '#98c379', '#c678dd', '#d19a66', '#56b6c2'];

function colorFor(clientId: number, color: unknown): string {
  if (typeof color === 'string' && /^#[0-9a-fA-F]{3,8}$/.test(color)) return color;
  return FALLBACK_COLORS[clientId % FALLBACK_COLORS.length] ?? '#888888';
}

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
}

/** UTF-16 index of code point `codePoints` in `text`. */
export function codePointsToUtf16(text: string, codePoints: number): number {
  let index = 0;
  for (let seen = 0; seen < codePoints && index < text.length; seen += 1) {
    const code = text.charCodeAt(index);
    index += code >= 0xd800 && code <= 0xdbff && index + 1 < text.length ? 2 : 1;
  }
  return index;
}

function resolve(ytext: Y.Text, json: unknown): number | undefined {
  if (record(json) === undefined || ytext.doc === null) return undefined;
  try {
    const relative = Y.createRelativePositionFromJSON(json);
    const absolute = Y.createAbsolutePositionFromRelativePosition(relative, ytext.doc);
    return absolute !== null && absolute.type === ytext ? absolute.index : undefined;
  } catch {
    return undefined;
  }
}

function cursorOf(state: Record<string, unknown>, text: CodePointIndex | undefined): Participant['cursor'] {
  if (text === undefined) return undefined;
  const cursor = record(state.cursor);
  if (cursor !== undefined) {
    const anchor = resolve(text.ytext, cursor.anchor);
    const head = resolve(text.ytext, cursor.head);
    if (anchor !== undefined && head !== undefined) return { anchor, head };
  }
  const nova = record(state.nova);
  if (nova !== undefined && typeof nova.index === 'number') {
    // Code points, converted without reading the text (O(log n), not O(file)).
    const length = typeof nova.length === 'number' ? nova.length : 0;
    return { anchor: text.toUtf16(nova.index), head: text.toUtf16(nova.index + length) };
  }
  return undefined;
}

/**
 * Everyone with a `user` in their awareness state, the local client included (marked).
 * With `text` (the document's Y.Text, indexed by code point), their cursors too.
 */
export function participants(awareness: awarenessProtocol.Awareness, text?: CodePointIndex): Participant[] {
  const result: Participant[] = [];
  for (const [clientId, raw] of awareness.getStates()) {
    const state = record(raw);
    const user = record(state?.user);
    if (state === undefined || user === undefined) continue;
    result.push({
      key: typeof user.id === 'string' && user.id !== '' ? `user:${user.id}` : `client:${clientId}`,
      clientId,
      name: typeof user.name === 'string' && user.name !== '' ? user.name : `client ${clientId}`,
      color: colorFor(clientId, user.color),
      kind: user.kind === 'agent' ? 'agent' : 'human',
      model: typeof user.model === 'string' ? user.model : undefined,
      cursor: cursorOf(state, text),
      file: typeof state.file === 'string' ? state.file : undefined,
      isLocal: clientId === awareness.clientID,
    });
  }
  return result.sort((a, b) => Number(b.isLocal) - Number(a.isLocal) || a.name.localeCompare(b.name));
}

/**
 * Publishes the local cursor as relative positions, so it stays put while others type.
 * Typing does not move a relative position (it names the character after the caret), so
 * most keystrokes change nothing here: then nothing is sent (false), not one presence
 * message per keystroke next to the edit.
 */
export function setLocalCursor(
  awareness: awarenessProtocol.Awareness,
  ytext: Y.Text,
  anchor: number,
  head: number,
): boolean {
  const cursor = {
    anchor: Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(ytext, anchor)) as unknown,
    head: Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(ytext, head)) as unknown,
  };
  const current = record(record(awareness.getLocalState())?.cursor);
  if (current !== undefined && JSON.stringify(current) === JSON.stringify(cursor)) return false;
  awareness.setLocalStateField('cursor', cursor);
  return true;
}

export function setLocalUser(awareness: awarenessProtocol.Awareness, user: LocalUser): void {
  awareness.setLocalStateField('user', {
    name: user.name,
    color: user.color,
    kind: user.kind,
    ...(user.id !== undefined ? { id: user.id } : {}),
  });
}
