// Bundles the viewer pages into ../static/build/ (served by the hub, never committed).
// `node build.mjs` once; the hub serves whatever is there. Everything is bundled: the
// pages load nothing from outside the hub at run time.
import { build } from 'esbuild'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const outdir = join(here, '..', 'static', 'build')

const started = performance.now()
await rm(outdir, { recursive: true, force: true })
await mkdir(outdir, { recursive: true })
const result = await build({
  absWorkingDir: here,
  entryPoints: {
    viewer: 'src/viewer.ts',
    landing: 'src/landing.ts',
    style: 'src/style.css'
  },
  outdir,
  bundle: true,
  format: 'esm',
  target: ['es2022', 'chrome110', 'firefox110', 'safari16'],
  minify: true,
  sourcemap: 'linked',
  legalComments: 'linked',
  metafile: true,
  logLevel: 'warning'
})
const sizes = Object.entries(result.metafile.outputs)
  .filter(([file]) => !file.endsWith('.map'))
  .map(([file, info]) => `${file.split('/').pop()} ${(info.bytes / 1024).toFixed(0)} KiB`)
// Pre-compressed copies: the hub sends file.gz to browsers that accept gzip.
for (const file of Object.keys(result.metafile.outputs)) {
  if (/\.(js|css)$/.test(file)) {
    const path = join(here, file)
    await writeFile(path + '.gz', gzipSync(await readFile(path), { level: 9 }))
  }
}
await writeFile(join(outdir, 'build.json'), JSON.stringify({ built_at: new Date().toISOString() }) + '\n')
console.log(`frontend: built ${sizes.join(', ')} in ${Math.round(performance.now() - started)} ms`)
