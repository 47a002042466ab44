/**
 * What the hub's close codes mean for the person at the editor, and which ones end the
 * connection for good (reconnecting cannot help) rather than for a backoff retry.
 */

export interface Refusal {
  readonly code: number;
  readonly message: string;
}

const TERMINAL: ReadonlyMap<number, string> = new Map([
  [4400, 'The hub rejected the document name.'],
  [4401, 'The hub needs a token: set "nova.token" to a valid one.'],
  [4403, 'Your token does not give you access to this document.'],
  [4404, 'The document does not exist on the hub.'],
  [4413, 'The document is too large for this hub.'],
  [4498, 'Your token expired or was revoked: set a new one in "nova.token".'],
]);

/** Close reason details the hub sends for host controls (collab_server/session_lobby.py). */
export const REMOVED = 'removed by the host';
export const ENDED = 'the host ended the session';

/** The refusal for a close code, or undefined when the connection should be retried. */
export function refusalFor(code: number, reason: string): Refusal | undefined {
  // Host controls (a guest removed, the session ended) revoke the guest's token: say who did.
  if (code === 4498 && reason.includes(REMOVED)) return { code, message: 'The host removed you from the session.' };
  if (code === 4498 && reason.includes(ENDED)) return { code, message: 'The host ended the session.' };
  const message = TERMINAL.get(code);
  if (message === undefined) return undefined;
  return { code, message: reason === '' ? message : `${message} (hub: ${reason})` };
}

export const READ_ONLY_PREFIX = 'read-only';

export function isReadOnlyDenial(reason: string): boolean {
  return reason.startsWith(READ_ONLY_PREFIX);
}
