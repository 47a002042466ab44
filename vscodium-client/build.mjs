// Bundles the extension (dist/extension.js), or with --tests the tests, with the fake
// vscode module in place of the real one (dist-test/). --production minifies.
import { build } from 'esbuild';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const production = process.argv.includes('--production');
const tests = process.argv.includes('--tests');

// ws loads these optional native helpers when present; without them it uses plain JS.
const optionalNative = ['bufferutil', 'utf-8-validate'];

if (!tests) {
await build({
  absWorkingDir: here,
  entryPoints: ['src/extension.ts'],
  outfile: 'dist/extension.js',
  bundle: true,
  platform: 'node',
  target: 'node18',
  format: 'cjs',
  external: ['vscode', ...optionalNative],
  sourcemap: !production,
  minify: production,
  logLevel: 'warning',
});
}

if (tests) {
  const entries = (dir, pattern) =>
    readdirSync(new URL(dir, import.meta.url))
      .filter((name) => pattern.test(name))
      .map((name) => `${dir}/${name}`);
  await build({
    absWorkingDir: here,
    entryPoints: [...entries('test/unit', /\.test\.ts$/), ...entries('test/integration', /\.ts$/)],
    outdir: 'dist-test',
    outbase: 'test',
    outExtension: { '.js': '.cjs' },
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: optionalNative,
    alias: { vscode: './test/fake/vscode.ts' },
    sourcemap: 'inline',
    logLevel: 'warning',
  });
}
