#!/usr/bin/env node
// Build the join-storm document: a sequential editing trace replayed keystroke by
// keystroke into one Y.Doc, the replay repeated (each copy appended after the
// previous one in the text "t") until the encoded state reaches --target-bytes.
//
// Writes OUT.bin (the state as Yjs v1 updates, split into chunks of at most
// --chunk-bytes so servers with a message size limit can take it) and OUT.json
// (chunk lengths, state vector, sizes). The join-storm load generator seeds a
// server with these chunks.
//
//   node build_doc.mjs --trace automerge-paper.json.gz --target-bytes 5000000 --out /tmp/doc-5mb

import fs from 'node:fs'
import { parseArgs } from 'node:util'
import zlib from 'node:zlib'
import * as Y from 'yjs'

const { values: opts } = parseArgs({
  options: {
    trace: { type: 'string' },
    'target-bytes': { type: 'string' },
    'chunk-bytes': { type: 'string', default: String(4 * 1024 * 1024) },
    out: { type: 'string' }
  }
})
if (!opts.trace || !opts['target-bytes'] || !opts.out) {
  process.stderr.write('usage: node build_doc.mjs --trace TRACE.json.gz --target-bytes N --out PREFIX [--chunk-bytes N]\n')
  process.exit(2)
}
const target = Number(opts['target-bytes'])
const chunkLimit = Number(opts['chunk-bytes'])
const trace = JSON.parse(zlib.gunzipSync(fs.readFileSync(opts.trace)))
if (trace.kind === 'concurrent') throw new Error('build_doc.mjs replays sequential traces only')

const doc = new Y.Doc()
const text = doc.getText('t')
const chunks = []
let chunkStart = Y.encodeStateVector(doc)
let chunkBytes = 0
let total = 0
let copies = 0
const started = Date.now()
// Trace positions count code points and Y.Text counts UTF-16 units: the replay
// uses positions as they are and checks the first copy against endContent, so a
// trace with characters outside the BMP is refused rather than replayed wrongly.
while (total < target) {
  const base = text.length
  if (trace.startContent) text.insert(base, trace.startContent)
  for (const txn of trace.txns) {
    for (const [pos, del, ins] of txn.patches) {
      doc.transact(() => {
        if (del) text.delete(base + pos, del)
        if (ins) text.insert(base + pos, ins)
      })
    }
  }
  if (copies === 0 && text.toString() !== trace.endContent) throw new Error('replay does not reproduce endContent')
  copies++
  const diff = Y.encodeStateAsUpdate(doc, chunkStart)
  total = chunkBytes + diff.length
  if (diff.length >= chunkLimit / 2 || total >= target) {
    chunks.push(diff)
    chunkBytes += diff.length
    chunkStart = Y.encodeStateVector(doc)
  }
  process.stderr.write(`copy ${copies}: ${total} bytes, ${((Date.now() - started) / 1000).toFixed(0)} s\n`)
}
fs.writeFileSync(`${opts.out}.bin`, Buffer.concat(chunks))
fs.writeFileSync(`${opts.out}.json`, JSON.stringify({
  trace: opts.trace.split('/').pop(),
  copies,
  chars: text.length,
  state_bytes: Y.encodeStateAsUpdate(doc).length,
  chunk_bytes: chunkBytes,
  chunks: chunks.map(c => c.length),
  state_vector_b64: Buffer.from(Y.encodeStateVector(doc)).toString('base64')
}) + '\n')
