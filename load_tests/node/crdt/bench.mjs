// The yjs side of load_tests/bench_crdt_core.py: one case per process.
//
// usage: node bench.mjs <case> <input file> [<second input file>]
// Input files hold length-prefixed blobs (uint32 little-endian length, then bytes).
// Prints JSON: {"seconds": ..., "peak_rss_bytes": ..., "output_bytes": ..., "items": ...}.
// Peak memory is the rise of the process's peak RSS during the measured call
// (the peak is reset through /proc/self/clear_refs just before it).
import { readFileSync, writeFileSync } from 'node:fs'
import * as Y from 'yjs'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import * as awarenessProtocol from 'y-protocols/awareness'

const unpack = (path) => {
  const buf = readFileSync(path)
  const out = []
  let offset = 0
  while (offset < buf.length) {
    const size = buf.readUInt32LE(offset)
    offset += 4
    out.push(new Uint8Array(buf.buffer, buf.byteOffset + offset, size))
    offset += size
  }
  return out
}

const statusKb = (field) => {
  const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith(field))
  return Number(line.split(/\s+/)[1]) * 1024
}

const measure = (fn) => {
  globalThis.gc?.()
  try { writeFileSync('/proc/self/clear_refs', '5') } catch { /* peak stays the process's */ }
  const before = statusKb('VmRSS:')
  const start = process.hrtime.bigint()
  const result = fn()
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  return { seconds, peak_rss_bytes: Math.max(0, statusKb('VmHWM:') - before), ...result }
}

const parseFrame = (frame) => {
  const decoder = decoding.createDecoder(frame)
  const outer = decoding.readVarUint(decoder)
  if (outer === 0) {
    const sub = decoding.readVarUint(decoder)
    return [sub, decoding.readVarUint8Array(decoder)]
  } else if (outer === 1) {
    return [3, decoding.readVarUint8Array(decoder)]
  } else if (outer === 2) {
    decoding.readVarUint(decoder)
    return [4, decoding.readVarUint8Array(decoder)]
  }
  return [5, new Uint8Array(0)]
}

const frame = ([kind, payload]) => {
  const encoder = encoding.createEncoder()
  if (kind <= 2) {
    encoding.writeVarUint(encoder, 0)
    encoding.writeVarUint(encoder, kind)
    encoding.writeVarUint8Array(encoder, payload)
  } else if (kind === 3) {
    encoding.writeVarUint(encoder, 1)
    encoding.writeVarUint8Array(encoder, payload)
  } else if (kind === 4) {
    encoding.writeVarUint(encoder, 2)
    encoding.writeVarUint(encoder, 0)
    encoding.writeVarUint8Array(encoder, payload)
  } else {
    encoding.writeVarUint(encoder, 3)
  }
  return encoding.toUint8Array(encoder)
}

const [caseName, input, second] = process.argv.slice(2)
const blobs = unpack(input)
let result
if (caseName === 'merge') {
  result = measure(() => ({ output_bytes: Y.mergeUpdates(blobs).length, items: blobs.length }))
} else if (caseName === 'diff') {
  const sv = unpack(second)[0]
  result = measure(() => ({ output_bytes: Y.diffUpdate(blobs[0], sv).length, items: 1 }))
} else if (caseName === 'state_vector') {
  result = measure(() => ({ output_bytes: Y.encodeStateVectorFromUpdate(blobs[0]).length, items: 1 }))
} else if (caseName === 'frames') {
  result = measure(() => {
    let size = 0
    for (const f of blobs) size += frame(parseFrame(f)).length
    return { output_bytes: size, items: blobs.length }
  })
} else if (caseName === 'awareness') {
  const doc = new Y.Doc()
  const awareness = new awarenessProtocol.Awareness(doc)
  awareness.setLocalState(null)
  result = measure(() => {
    for (const update of blobs) awarenessProtocol.applyAwarenessUpdate(awareness, update, 'bench')
    const clients = [...awareness.meta.keys()]
    return { output_bytes: awarenessProtocol.encodeAwarenessUpdate(awareness, clients).length, items: blobs.length }
  })
  awareness.destroy()
} else {
  throw new Error(`unknown case ${caseName}`)
}
process.stdout.write(JSON.stringify(result) + '\n')
