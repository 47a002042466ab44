// Decode encoded Yjs updates with yjs itself, for the crdt_core differential tests.
//
// stdin: {"roots": {"name": "text" | "map" | "array"}, "cases": {"label": [base64 update, ...]}}
// stdout: {"label": {"applied": content, "merged": content, "merged_sv": {client: clock}}}
// where "applied" applies the updates one by one to a fresh document, "merged" applies
// Y.mergeUpdates(updates), and content is {"roots": {...}, "sv": {client: clock}}.
import * as Y from 'yjs'

const readStdin = async () => {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  return Buffer.concat(chunks).toString('utf8')
}

const svToObject = (sv) => Object.fromEntries([...sv.entries()].map(([c, k]) => [String(c), k]))

const contentOf = (doc, roots) => {
  const out = {}
  for (const [name, kind] of Object.entries(roots)) {
    if (kind === 'text') out[name] = doc.getText(name).toString()
    else if (kind === 'map') out[name] = doc.getMap(name).toJSON()
    else if (kind === 'array') out[name] = doc.getArray(name).toJSON()
    else throw new Error(`unknown root kind ${kind}`)
  }
  return { roots: out, sv: svToObject(Y.decodeStateVector(Y.encodeStateVector(doc))) }
}

const load = (updates, roots) => {
  const doc = new Y.Doc()
  for (const update of updates) Y.applyUpdate(doc, update)
  return contentOf(doc, roots)
}

const input = JSON.parse(await readStdin())
const result = {}
for (const [label, encoded] of Object.entries(input.cases)) {
  const updates = encoded.map((b64) => new Uint8Array(Buffer.from(b64, 'base64')))
  const merged = Y.mergeUpdates(updates)
  result[label] = {
    applied: load(updates, input.roots),
    merged: load([merged], input.roots),
    merged_sv: svToObject(Y.decodeStateVector(Y.encodeStateVectorFromUpdate(merged)))
  }
}
process.stdout.write(JSON.stringify(result))
