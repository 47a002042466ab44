// The byte scanner must find exactly the strings that Yjs' own decoder finds.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import * as Y from 'yjs'
import { scanStrings } from './update_scan.mjs'

const scanned = update => {
  const out = []
  scanStrings(update, s => out.push(s))
  return out
}

const decoded = update =>
  Y.decodeUpdate(update).structs
    .filter(s => s instanceof Y.Item && s.content instanceof Y.ContentString)
    .map(s => s.content.str)

test('writer updates: one insert, one string', () => {
  const doc = new Y.Doc()
  const text = doc.getText('t')
  const updates = []
  doc.on('update', u => updates.push(u))
  for (let seq = 0; seq < 5; seq++) text.insert(text.length, `3.${seq};`)
  assert.deepEqual(updates.map(scanned), [0, 1, 2, 3, 4].map(seq => [`3.${seq};`]))
})

test('mixed content and merged updates match Y.decodeUpdate', () => {
  const docs = [new Y.Doc(), new Y.Doc(), new Y.Doc()]
  const updates = []
  docs.forEach(doc => doc.on('update', u => updates.push(u)))
  let seed = 7
  const rand = n => (seed = (seed * 1103515245 + 12345) % 2147483648) % n
  for (let i = 0; i < 300; i++) {
    const doc = docs[rand(docs.length)]
    const text = doc.getText('t')
    switch (rand(6)) {
      case 0: text.insert(rand(text.length + 1), `x${i};é😀`); break
      case 1: if (text.length > 2) text.delete(rand(text.length - 1), 1); break
      case 2: doc.getMap('m').set(`k${rand(4)}`, { i, list: [1, 'two', null] }); break
      case 3: doc.getArray('a').insert(0, [new Uint8Array([i % 256]), 'in-array']); break
      case 4: text.format(0, Math.min(2, text.length), { bold: true }); break
      default: doc.getXmlFragment('x').insert(0, [new Y.XmlElement('p'), new Y.XmlText('xml')])
    }
    if (rand(4) === 0) {
      const from = docs[rand(docs.length)]
      Y.applyUpdate(doc, Y.encodeStateAsUpdate(from, Y.encodeStateVector(doc)))
    }
  }
  for (const u of updates) assert.deepEqual(scanned(u), decoded(u))
  const merged = Y.mergeUpdates(updates)
  assert.deepEqual(scanned(merged), decoded(merged))
  const state = Y.encodeStateAsUpdate(docs[0])
  assert.deepEqual(scanned(state), decoded(state))
})

test('garbage throws instead of returning strings', () => {
  assert.throws(() => scanStrings(new Uint8Array([1, 1, 5, 0, 31]), () => {}))
})
