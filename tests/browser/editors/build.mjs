// Bundles src/tiptap.js into dist/tiptap.js (one classic script: the page is opened from a
// file:// URL, where module scripts are not allowed). dist/ is never committed.
import { build } from 'esbuild'

await build({
  entryPoints: ['src/tiptap.js'],
  bundle: true,
  format: 'iife',
  target: 'es2022',
  outfile: 'dist/tiptap.js',
  logLevel: 'warning'
})
