import assert from 'node:assert/strict';
import { test } from 'node:test';
import { globToRegExp, isReadOnlyToken, roleFor } from '../../src/tokenGrants';

function token(claims: object): string {
  const part = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}.signature`;
}

test('the role for a document is the strongest matching grant, as on the hub', () => {
  const mixed = token({
    sub: 'ada',
    grants: [
      { doc: 'nova-session/abc/*', role: 'read' },
      { doc: 'nova-session/abc/notes.md', role: 'write' },
    ],
  });
  assert.equal(roleFor(mixed, 'nova-session/abc/src/lib.py'), 'read');
  assert.equal(roleFor(mixed, 'nova-session/abc/notes.md'), 'write');
  assert.equal(roleFor(mixed, 'other'), undefined);
  assert.equal(isReadOnlyToken(mixed, 'nova-session/abc/src/lib.py'), true);
  assert.equal(isReadOnlyToken(mixed, 'nova-session/abc/notes.md'), false);
});

test('no token, or a token that is not a JWT with grants, leaves the decision to the hub', () => {
  assert.equal(isReadOnlyToken('', 'doc'), false);
  assert.equal(isReadOnlyToken('opaque-token', 'doc'), false);
  assert.equal(roleFor('a.!!!.c', 'doc'), undefined);
  assert.equal(roleFor(token({ sub: 'x' }), 'doc'), undefined);
});

test('globs follow fnmatchcase: * crosses slashes, [..] and [!..] classes, dots are literal', () => {
  assert.ok(globToRegExp('doc-*').test('doc-1/a/b'));
  assert.ok(!globToRegExp('doc-?').test('doc-12'));
  assert.ok(globToRegExp('a[0-9].md').test('a7.md'));
  assert.ok(!globToRegExp('a[!0-9].md').test('a7.md'));
  assert.ok(!globToRegExp('a.md').test('aXmd'));
  assert.ok(!globToRegExp('Doc').test('doc'));
});
