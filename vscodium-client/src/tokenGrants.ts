/**
 * What a hub token lets its holder do with a document, read from the token's own claims
 * (the hub's `grants`: document glob + role). Only for the editor's UX — opening shared
 * files read-only — the hub checks the signature and refuses writes by itself.
 */

export type Role = 'read' | 'write' | 'admin';

const RANK: Readonly<Record<Role, number>> = { read: 1, write: 2, admin: 3 };

interface Grant {
  readonly pattern: RegExp;
  readonly role: Role;
}

/** Grants in an unverified JWT, or undefined when there is no token or it is not a JWT. */
export function grantsOf(token: string): readonly Grant[] | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(parts[1] ?? '', 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof claims !== 'object' || claims === null) return undefined;
  const grants = (claims as { grants?: unknown }).grants;
  if (!Array.isArray(grants)) return undefined;
  const parsed: Grant[] = [];
  for (const grant of grants as unknown[]) {
    if (typeof grant !== 'object' || grant === null) continue;
    const { doc, role } = grant as { doc?: unknown; role?: unknown };
    if (typeof doc !== 'string' || typeof role !== 'string') continue;
    const lower = role.toLowerCase();
    if (lower === 'read' || lower === 'write' || lower === 'admin') parsed.push({ pattern: globToRegExp(doc), role: lower });
  }
  return parsed;
}

/** The strongest role the token gives on `document`; undefined: none, or no readable grants. */
export function roleFor(token: string, document: string): Role | undefined {
  const grants = grantsOf(token);
  if (grants === undefined) return undefined;
  let best: Role | undefined;
  for (const grant of grants) {
    if (grant.pattern.test(document) && (best === undefined || RANK[grant.role] > RANK[best])) best = grant.role;
  }
  return best;
}

/** Whether the token only lets its holder read `document` (no token: the hub decides). */
export function isReadOnlyToken(token: string, document: string): boolean {
  return roleFor(token, document) === 'read';
}

/** Python's fnmatchcase, which the hub uses: `*` and `?` match any character, `/` too. */
export function globToRegExp(glob: string): RegExp {
  let source = '';
  for (let i = 0; i < glob.length; i += 1) {
    const char = glob[i] ?? '';
    if (char === '*') source += '.*';
    else if (char === '?') source += '.';
    else if (char === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close === -1) {
        source += '\\[';
        continue;
      }
      let body = glob.slice(i + 1, close).replace(/\\/g, '\\\\');
      if (body.startsWith('!')) body = `^${body.slice(1)}`;
      source += `[${body}]`;
      i = close;
    } else source += char.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, 's');
}
