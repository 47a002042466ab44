import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ShareFilter } from '../../src/shareFilter';

test('secrets are never shared, at any depth, even if .gitignore re-includes them', () => {
  const filter = new ShareFilter('!.env\n', ['config/credentials.json']);
  for (const path of ['.env', 'app/.env.local', 'certs/server.pem', 'id_rsa', 'keys/id_ed25519.pub', 'config/credentials.json']) {
    assert.ok(filter.excludes(path), path);
  }
  for (const path of ['env.py', 'src/app.py', 'README.md', 'other/config/credentials.json']) {
    assert.ok(!filter.excludes(path), path);
  }
});

test('.gitignore rules: directories, anchoring, globs and negation, as git reads them', () => {
  const filter = new ShareFilter(
    ['# build output', 'build/', '/local.txt', '*.log', '!keep.log', 'docs/**/*.tmp', 'cache?'].join('\n'),
  );
  const excluded = ['build/out.js', 'src/build/x.js', 'local.txt', 'a/b/debug.log', 'docs/x/y/z.tmp', 'docs/a.tmp', 'cache1'];
  const shared = ['build.py', 'src/local.txt', 'keep.log', 'sub/keep.log', 'docs.tmp', 'cache12', 'src/app.py'];
  for (const path of excluded) assert.ok(filter.excludes(path), `should exclude ${path}`);
  for (const path of shared) assert.ok(!filter.excludes(path), `should share ${path}`);
});

test('a file under an ignored directory stays ignored, even when a rule re-includes it', () => {
  const filter = new ShareFilter('logs/\n!logs/important.txt\n');
  assert.ok(filter.excludes('logs/important.txt'));
});
