/**
 * Which paths of a shared folder are never shared: the ones the folder's root `.gitignore`
 * ignores, and secrets (a fixed list plus `nova.neverShare`). Applied by the host when it
 * lists the folder and when a guest creates a file, and by the guest before it asks.
 * The `.gitignore` subset: `#` comments, `!` negation, a trailing `/` (directories), a
 * leading or inner `/` (anchored at the root), `*`, `?`, `**`.
 */

/** Secrets that are never shared, whatever `.gitignore` says. */
export const SECRET_PATTERNS: readonly string[] = [
  '.env',
  '.env.*',
  '*.pem',
  '*.key',
  '*.p12',
  '*.pfx',
  'id_rsa*',
  'id_ed25519*',
  '.npmrc',
  '.pypirc',
  '.netrc',
  '.git/',
];

interface Rule {
  readonly regex: RegExp;
  readonly negated: boolean;
  readonly directoryOnly: boolean;
}

export class ShareFilter {
  private readonly rules: Rule[];

  constructor(gitignore: string, extraPatterns: readonly string[] = []) {
    this.rules = [...SECRET_PATTERNS, ...extraPatterns, ...gitignore.split(/\r?\n/)]
      .map((line) => line.replace(/\s+$/, ''))
      .filter((line) => line !== '' && !line.startsWith('#'))
      .map(parseRule);
    // Secrets come first but must win over a negation in .gitignore: checked separately.
    this.secrets = [...SECRET_PATTERNS, ...extraPatterns].map(parseRule);
  }

  private readonly secrets: Rule[];

  /** Whether the file at `path` (relative, '/'-separated) stays on the host. */
  excludes(path: string): boolean {
    const segments = path.split('/').filter((s) => s !== '');
    if (this.secrets.some((rule) => matchesAny(rule, segments))) return true;
    // Like git: a file is ignored if a parent directory is ignored (no re-inclusion below it),
    // else the last rule matching the file itself decides.
    for (let depth = 1; depth < segments.length; depth += 1) {
      if (decide(this.rules, segments.slice(0, depth), true)) return true;
    }
    return decide(this.rules, segments, false);
  }
}

function decide(rules: readonly Rule[], segments: readonly string[], isDirectory: boolean): boolean {
  let ignored = false;
  const path = segments.join('/');
  for (const rule of rules) {
    if (rule.directoryOnly && !isDirectory) continue;
    if (rule.regex.test(path)) ignored = !rule.negated;
  }
  return ignored;
}

function matchesAny(rule: Rule, segments: readonly string[]): boolean {
  for (let depth = 1; depth <= segments.length; depth += 1) {
    const isDirectory = depth < segments.length;
    if (rule.directoryOnly && !isDirectory) continue;
    if (rule.regex.test(segments.slice(0, depth).join('/'))) return true;
  }
  return false;
}

function parseRule(line: string): Rule {
  let pattern = line;
  const negated = pattern.startsWith('!');
  if (negated) pattern = pattern.slice(1);
  const directoryOnly = pattern.endsWith('/');
  if (directoryOnly) pattern = pattern.replace(/\/+$/, '');
  // A slash at the start or in the middle anchors the pattern at the root; otherwise it
  // matches at any depth.
  const anchored = pattern.includes('/');
  pattern = pattern.replace(/^\//, '');
  const body = globBody(pattern);
  return { regex: new RegExp(anchored ? `^${body}$` : `^(?:.*/)?${body}$`), negated, directoryOnly };
}

function globBody(pattern: string): string {
  let source = '';
  for (let i = 0; i < pattern.length; i += 1) {
    const char = pattern[i] ?? '';
    if (char === '*' && pattern[i + 1] === '*') {
      // "**/" matches zero or more directories; a trailing "**" everything below.
      if (pattern[i + 2] === '/') {
        source += '(?:.*/)?';
        i += 2;
      } else {
        source += '.*';
        i += 1;
      }
    } else if (char === '*') source += '[^/]*';
    else if (char === '?') source += '[^/]';
    else source += char.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return source;
}
