//! A zero-copy reader and writer for the lib0 v1 update encoding.
//!
//! Layout: `varuint clients`, per client section `varuint structs, varuint client,
//! varuint first clock` and its structs; then the delete set: `varuint clients`,
//! per client `varuint client, varuint ranges` and `varuint clock, varuint len` pairs.
//! A struct starts with an info byte: 0 = GC, 10 = Skip, else an item whose low five
//! bits name the content and whose top bits flag origin (0x80), right origin (0x40)
//! and parent sub (0x20).
//!
//! The reader validates everything it touches (so that yrs never sees input it could
//! panic on) and hands borrowed slices of the input to a [`Sink`].

use crate::error::{DecodeError, Result};
use crate::varint::{write_var_u64, Reader};

pub const INFO_GC: u8 = 0;
pub const INFO_SKIP: u8 = 10;
pub const HAS_ORIGIN: u8 = 0x80;
pub const HAS_RIGHT_ORIGIN: u8 = 0x40;
pub const CONTENT_MASK: u8 = 0x1F;

pub const CONTENT_DELETED: u8 = 1;
pub const CONTENT_JSON: u8 = 2;
pub const CONTENT_BINARY: u8 = 3;
pub const CONTENT_STRING: u8 = 4;
pub const CONTENT_EMBED: u8 = 5;
pub const CONTENT_FORMAT: u8 = 6;
pub const CONTENT_TYPE: u8 = 7;
pub const CONTENT_ANY: u8 = 8;
pub const CONTENT_DOC: u8 = 9;

const TYPE_REF_XML_ELEMENT: u8 = 3;
const TYPE_REF_XML_HOOK: u8 = 5;
const TYPE_REF_MAX: u8 = 15;

/// Nested `Any` values deeper than this are rejected rather than recursed into.
const MAX_ANY_DEPTH: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id {
    pub client: u64,
    pub clock: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content<'a> {
    /// Deleted content: only a length.
    Deleted,
    String(&'a str),
    /// `Any` or JSON content: `len` encoded elements, the count prefix not included.
    Multi {
        content_ref: u8,
        elements: &'a [u8],
    },
    /// Binary, embed, format, type or sub-document content, one clock unit long, verbatim.
    Single {
        content_ref: u8,
        raw: &'a [u8],
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item<'a> {
    /// The info byte as read (flags and content ref).
    pub info: u8,
    pub origin: Option<Id>,
    pub right_origin: Option<Id>,
    /// Parent info and parent sub verbatim; empty when the item has an origin.
    pub parent: &'a [u8],
    pub content: Content<'a>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind<'a> {
    Gc,
    Skip,
    Item(Item<'a>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block<'a> {
    pub clock: u32,
    pub len: u32,
    pub kind: Kind<'a>,
}

/// Receives what [`decode`] reads, in input order.
pub trait Sink<'a> {
    fn block(&mut self, client: u64, block: Block<'a>);
    fn delete(&mut self, client: u64, clock: u32, len: u32);
}

/// A sink that keeps nothing: [`decode`] then only validates.
pub struct Validate;

impl<'a> Sink<'a> for Validate {
    fn block(&mut self, _client: u64, _block: Block<'a>) {}
    fn delete(&mut self, _client: u64, _clock: u32, _len: u32) {}
}

/// Length of a string in UTF-16 code units, the unit of Yjs clocks.
pub fn utf16_len(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().map(char::len_utf16).sum()
    }
}

fn clock_len(len: usize) -> Result<u32> {
    u32::try_from(len).map_err(|_| DecodeError::new("struct longer than 2^32 clock units"))
}

/// Decode a v1 update, feeding every struct and delete range to `sink`.
/// Bytes after the delete set are ignored, as yrs and yjs do.
pub fn decode<'a>(data: &'a [u8], sink: &mut impl Sink<'a>) -> Result<()> {
    let mut reader = Reader::new(data);
    let sections = reader.read_var_u32()?;
    for _ in 0..sections {
        let structs = reader.read_var_u32()?;
        let client = reader.read_var_u64()?;
        let mut clock = reader.read_var_u32()?;
        for _ in 0..structs {
            let block = read_block(&mut reader, clock)?;
            clock = clock
                .checked_add(block.len)
                .ok_or_else(|| DecodeError::new("clock overflows 32 bits"))?;
            if block.len > 0 {
                sink.block(client, block);
            }
        }
    }
    let clients = reader.read_var_u32()?;
    for _ in 0..clients {
        let client = reader.read_var_u64()?;
        let ranges = reader.read_var_u32()?;
        for _ in 0..ranges {
            let clock = reader.read_var_u32()?;
            let len = reader.read_var_u32()?;
            if clock.checked_add(len).is_none() {
                return Err(DecodeError::new("delete range overflows 32 bits"));
            }
            if len > 0 {
                sink.delete(client, clock, len);
            }
        }
    }
    Ok(())
}

fn read_id(reader: &mut Reader<'_>) -> Result<Id> {
    let client = reader.read_var_u64()?;
    let clock = reader.read_var_u32()?;
    Ok(Id { client, clock })
}

fn read_block<'a>(reader: &mut Reader<'a>, clock: u32) -> Result<Block<'a>> {
    let info = reader.read_u8()?;
    match info {
        INFO_GC => Ok(Block {
            clock,
            len: reader.read_var_u32()?,
            kind: Kind::Gc,
        }),
        INFO_SKIP => Ok(Block {
            clock,
            len: reader.read_var_u32()?,
            kind: Kind::Skip,
        }),
        _ => {
            let origin = if info & HAS_ORIGIN != 0 {
                Some(read_id(reader)?)
            } else {
                None
            };
            let right_origin = if info & HAS_RIGHT_ORIGIN != 0 {
                Some(read_id(reader)?)
            } else {
                None
            };
            let parent_start = reader.pos();
            if origin.is_none() && right_origin.is_none() {
                if reader.read_var_u32()? == 1 {
                    reader.read_var_str()?;
                } else {
                    read_id(reader)?;
                }
                if info & 0x20 != 0 {
                    reader.read_var_str()?;
                }
            }
            let parent = reader.since(parent_start);
            let (len, content) = read_content(reader, info & CONTENT_MASK)?;
            Ok(Block {
                clock,
                len,
                kind: Kind::Item(Item {
                    info,
                    origin,
                    right_origin,
                    parent,
                    content,
                }),
            })
        }
    }
}

fn read_content<'a>(reader: &mut Reader<'a>, content_ref: u8) -> Result<(u32, Content<'a>)> {
    let start = reader.pos();
    match content_ref {
        CONTENT_DELETED => Ok((reader.read_var_u32()?, Content::Deleted)),
        CONTENT_STRING => {
            let s = reader.read_var_str()?;
            Ok((clock_len(utf16_len(s))?, Content::String(s)))
        }
        CONTENT_JSON | CONTENT_ANY => {
            let count = reader.read_var_u32()?;
            let elements_start = reader.pos();
            for _ in 0..count {
                skip_element(reader, content_ref)?;
            }
            Ok((
                count,
                Content::Multi {
                    content_ref,
                    elements: reader.since(elements_start),
                },
            ))
        }
        CONTENT_BINARY => {
            reader.read_var_bytes()?;
            Ok((1, single(reader, content_ref, start)))
        }
        CONTENT_EMBED => {
            reader.read_var_str()?;
            Ok((1, single(reader, content_ref, start)))
        }
        CONTENT_FORMAT => {
            reader.read_var_str()?;
            reader.read_var_str()?;
            Ok((1, single(reader, content_ref, start)))
        }
        CONTENT_TYPE => {
            let type_ref = reader.read_u8()?;
            if type_ref > TYPE_REF_MAX {
                return Err(DecodeError::new(format!("unknown type ref {type_ref}")));
            }
            if type_ref == TYPE_REF_XML_ELEMENT || type_ref == TYPE_REF_XML_HOOK {
                reader.read_var_str()?;
            }
            Ok((1, single(reader, content_ref, start)))
        }
        CONTENT_DOC => {
            reader.read_var_str()?;
            skip_any(reader, 0)?;
            Ok((1, single(reader, content_ref, start)))
        }
        other => Err(DecodeError::new(format!("unknown content type {other}"))),
    }
}

fn single<'a>(reader: &Reader<'a>, content_ref: u8, start: usize) -> Content<'a> {
    Content::Single {
        content_ref,
        raw: reader.since(start),
    }
}

fn skip_element(reader: &mut Reader<'_>, content_ref: u8) -> Result<()> {
    if content_ref == CONTENT_JSON {
        reader.read_var_str().map(|_| ())
    } else {
        skip_any(reader, 0)
    }
}

/// Skip one lib0 `Any` value.
fn skip_any(reader: &mut Reader<'_>, depth: usize) -> Result<()> {
    if depth > MAX_ANY_DEPTH {
        return Err(DecodeError::new("Any value nested too deeply"));
    }
    match reader.read_u8()? {
        // undefined, null, false, true
        127 | 126 | 121 | 120 => Ok(()),
        125 => reader.skip_var_i64(),
        124 => reader.read_bytes(4).map(|_| ()),
        123 | 122 => reader.read_bytes(8).map(|_| ()),
        119 => reader.read_var_str().map(|_| ()),
        118 => {
            let len = reader.read_var_u64()?;
            for _ in 0..len {
                reader.read_var_str()?;
                skip_any(reader, depth + 1)?;
            }
            Ok(())
        }
        117 => {
            let len = reader.read_var_u64()?;
            for _ in 0..len {
                skip_any(reader, depth + 1)?;
            }
            Ok(())
        }
        116 => reader.read_var_bytes().map(|_| ()),
        tag => Err(DecodeError::new(format!("unknown Any tag {tag}"))),
    }
}

/// The elements of `Multi` content after its first `n` (already validated input).
pub fn multi_tail(content_ref: u8, elements: &[u8], n: u32) -> Result<&[u8]> {
    let mut reader = Reader::new(elements);
    for _ in 0..n {
        skip_element(&mut reader, content_ref)?;
    }
    Ok(elements.get(reader.pos()..).unwrap_or_default())
}

/// Split `s` after `units` UTF-16 code units; a surrogate pair cut in half becomes
/// U+FFFD on both sides, as Yjs does.
pub fn split_utf16(
    s: &str,
    units: usize,
) -> (std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>) {
    use std::borrow::Cow;
    if s.is_ascii() {
        let at = units.min(s.len());
        return (Cow::Borrowed(&s[..at]), Cow::Borrowed(&s[at..]));
    }
    let mut seen = 0;
    for (index, ch) in s.char_indices() {
        if seen == units {
            return (Cow::Borrowed(&s[..index]), Cow::Borrowed(&s[index..]));
        }
        let width = ch.len_utf16();
        if seen + width > units {
            // `units` falls inside a surrogate pair
            let after = index + ch.len_utf8();
            let left = format!("{}\u{FFFD}", &s[..index]);
            let right = format!("\u{FFFD}{}", &s[after..]);
            return (Cow::Owned(left), Cow::Owned(right));
        }
        seen += width;
    }
    (Cow::Borrowed(s), Cow::Borrowed(""))
}

/// Writes structs of one client section at a time, then the delete set.
pub struct Writer {
    out: Vec<u8>,
}

impl Writer {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            out: Vec::with_capacity(capacity),
        }
    }

    pub fn var(&mut self, value: u64) {
        write_var_u64(&mut self.out, value);
    }

    pub fn byte(&mut self, value: u8) {
        self.out.push(value);
    }

    pub fn bytes(&mut self, value: &[u8]) {
        self.out.extend_from_slice(value);
    }

    pub fn id(&mut self, id: Id) {
        self.var(id.client);
        self.var(u64::from(id.clock));
    }

    pub fn clear(&mut self) {
        self.out.clear();
    }

    /// Append what `other` holds.
    pub fn append(&mut self, other: &Writer) {
        self.out.extend_from_slice(&other.out);
    }

    pub fn into_vec(self) -> Vec<u8> {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect<'a> {
        blocks: Vec<(u64, Block<'a>)>,
        deletes: Vec<(u64, u32, u32)>,
    }

    impl<'a> Sink<'a> for Collect<'a> {
        fn block(&mut self, client: u64, block: Block<'a>) {
            self.blocks.push((client, block));
        }
        fn delete(&mut self, client: u64, clock: u32, len: u32) {
            self.deletes.push((client, clock, len));
        }
    }

    // One client (7) inserting "abc" into root text "t", then deleting clock 1.
    const ABC: &[u8] = &[
        1, 1, 7, 0, 4, 1, 1, b't', 3, b'a', b'b', b'c', 1, 7, 1, 1, 1,
    ];

    #[test]
    fn decodes_an_insert_and_a_delete() {
        let mut sink = Collect::default();
        decode(ABC, &mut sink).unwrap();
        assert_eq!(sink.blocks.len(), 1);
        let (client, block) = &sink.blocks[0];
        assert_eq!((*client, block.clock, block.len), (7, 0, 3));
        match &block.kind {
            Kind::Item(item) => {
                assert_eq!(item.content, Content::String("abc"));
                assert_eq!(item.parent, &[1, 1, b't']);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(sink.deletes, [(7, 1, 1)]);
    }

    #[test]
    fn every_truncation_is_an_error() {
        for end in 0..ABC.len() {
            assert!(decode(&ABC[..end], &mut Validate).is_err(), "prefix {end}");
        }
    }

    #[test]
    fn utf16_split() {
        assert_eq!(utf16_len("a😀b"), 4);
        let (l, r) = split_utf16("a😀b", 1);
        assert_eq!((l.as_ref(), r.as_ref()), ("a", "😀b"));
        let (l, r) = split_utf16("a😀b", 2);
        assert_eq!((l.as_ref(), r.as_ref()), ("a\u{FFFD}", "\u{FFFD}b"));
        let (l, r) = split_utf16("é", 1);
        assert_eq!((l.as_ref(), r.as_ref()), ("é", ""));
    }

    #[test]
    fn deep_any_is_rejected() {
        let mut update = vec![1, 1, 7, 0, 8, 1, 1, b'a', 1];
        update.extend(std::iter::repeat_n(117u8, 1000).flat_map(|t| [t, 1]));
        update.push(126);
        update.extend([0]);
        assert!(decode(&update, &mut Validate).is_err());
    }
}
