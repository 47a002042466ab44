// Cheap reader for Yjs v1 updates: returns the strings of every ContentString
// item without building a Y.Doc. The load generator uses it so that hundreds of
// receiving clients in one process can time each delivery without Y.applyUpdate.
//
// Layout walked here (yjs 13, update format v1):
//   varUint clients; per client: varUint structs, varUint client, varUint clock,
//   then per struct one info byte and its fields; the delete set follows and is
//   not needed.

import * as decoding from 'lib0/decoding'

const BITS5 = 0x1f
const HAS_ORIGIN = 0x80
const HAS_RIGHT_ORIGIN = 0x40
const HAS_PARENT_SUB = 0x20

const REF_GC = 0
const REF_DELETED = 1
const REF_JSON = 2
const REF_BINARY = 3
const REF_STRING = 4
const REF_EMBED = 5
const REF_FORMAT = 6
const REF_TYPE = 7
const REF_ANY = 8
const REF_DOC = 9
const REF_SKIP = 10

const TYPE_XML_ELEMENT = 3
const TYPE_XML_HOOK = 5

/**
 * Skip one item's content, or return its string when it is a ContentString.
 * @param {decoding.Decoder} d
 * @param {number} ref
 * @returns {string | null}
 */
const readContent = (d, ref) => {
  switch (ref) {
    case REF_DELETED:
      decoding.readVarUint(d)
      return null
    case REF_JSON: {
      const n = decoding.readVarUint(d)
      for (let i = 0; i < n; i++) decoding.readVarString(d)
      return null
    }
    case REF_BINARY:
      decoding.readVarUint8Array(d)
      return null
    case REF_STRING:
      return decoding.readVarString(d)
    case REF_EMBED:
      decoding.readVarString(d)
      return null
    case REF_FORMAT:
      decoding.readVarString(d)
      decoding.readVarString(d)
      return null
    case REF_TYPE: {
      const typeRef = decoding.readVarUint(d)
      if (typeRef === TYPE_XML_ELEMENT || typeRef === TYPE_XML_HOOK) decoding.readVarString(d)
      return null
    }
    case REF_ANY: {
      const n = decoding.readVarUint(d)
      for (let i = 0; i < n; i++) decoding.readAny(d)
      return null
    }
    case REF_DOC:
      decoding.readVarString(d)
      decoding.readAny(d)
      return null
    default:
      throw new Error(`unknown content ref ${ref}`)
  }
}

/**
 * Call `onString` for each ContentString in a v1 update, in encoding order.
 * Throws on bytes that are not a v1 update.
 * @param {Uint8Array} update
 * @param {(s: string) => void} onString
 */
export const scanStrings = (update, onString) => {
  const d = decoding.createDecoder(update)
  const clients = decoding.readVarUint(d)
  for (let c = 0; c < clients; c++) {
    const structs = decoding.readVarUint(d)
    decoding.readVarUint(d) // client id
    decoding.readVarUint(d) // first clock
    for (let s = 0; s < structs; s++) {
      const info = decoding.readUint8(d)
      const ref = info & BITS5
      if (ref === REF_GC || ref === REF_SKIP) {
        decoding.readVarUint(d)
        continue
      }
      if (info & HAS_ORIGIN) {
        decoding.readVarUint(d)
        decoding.readVarUint(d)
      }
      if (info & HAS_RIGHT_ORIGIN) {
        decoding.readVarUint(d)
        decoding.readVarUint(d)
      }
      if ((info & (HAS_ORIGIN | HAS_RIGHT_ORIGIN)) === 0) {
        if (decoding.readVarUint(d) === 1) {
          decoding.readVarString(d) // parent is a root type, by name
        } else {
          decoding.readVarUint(d) // parent is an item, by id
          decoding.readVarUint(d)
        }
        if (info & HAS_PARENT_SUB) decoding.readVarString(d)
      }
      const str = readContent(d, ref)
      if (str !== null) onString(str)
    }
  }
}
