//! A linear merge of v1 updates.
//!
//! yrs and yjs merge by re-sorting every input at every step, which is quadratic
//! in the number of updates. Here every update is decoded once into per-client
//! struct lists (borrowing from the input), each list is sorted by clock once,
//! duplicates and overlaps are dropped, gaps become Skip structs, and adjacent
//! items that Yjs itself would squash in a document are joined: same client,
//! consecutive clocks, the later one's origin is the earlier one's last character,
//! same right origin, both string or both deleted content. Delete sets are unioned.
//! Clients are written in descending order, as Yjs does.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::error::Result;
use crate::update_v1::{
    self, multi_tail, split_utf16, Block, Content, Id, Item, Kind, Sink, Writer, HAS_ORIGIN,
    HAS_RIGHT_ORIGIN, INFO_GC, INFO_SKIP,
};

/// The encoding of an update with no structs and no deletes.
pub const EMPTY_UPDATE: &[u8] = &[0, 0];

const PARENT_SUB_FLAG: u8 = 0x20;

/// Per-client struct lists and delete ranges gathered from many updates.
#[derive(Default)]
pub struct Collected<'a> {
    index: HashMap<u64, usize>,
    clients: Vec<(u64, Vec<Block<'a>>)>,
    last: Option<(u64, usize)>,
    deletes: HashMap<u64, Vec<(u32, u32)>>,
    input_bytes: usize,
}

impl<'a> Collected<'a> {
    pub fn add(&mut self, update: &'a [u8]) -> Result<()> {
        self.input_bytes += update.len();
        update_v1::decode(update, self)
    }

    fn slot(&mut self, client: u64) -> usize {
        if let Some((last_client, slot)) = self.last {
            if last_client == client {
                return slot;
            }
        }
        let next = self.clients.len();
        let slot = *self.index.entry(client).or_insert(next);
        if slot == next {
            self.clients.push((client, Vec::new()));
        }
        self.last = Some((client, slot));
        slot
    }

    /// Encode everything collected as one v1 update.
    pub fn encode(mut self) -> Result<Vec<u8>> {
        let mut out = Writer::with_capacity(self.input_bytes / 4 + 16);
        self.clients.retain(|(_, blocks)| !blocks.is_empty());
        self.clients
            .sort_unstable_by_key(|c| std::cmp::Reverse(c.0));
        out.var(self.clients.len() as u64);
        let mut body = Writer::with_capacity(1024);
        for (client, blocks) in &mut self.clients {
            write_client(&mut out, &mut body, *client, blocks)?;
        }
        write_delete_set(&mut out, self.deletes);
        Ok(out.into_vec())
    }
}

impl<'a> Sink<'a> for Collected<'a> {
    fn block(&mut self, client: u64, block: Block<'a>) {
        // Skips only say "not in this update"; gaps are re-derived from clocks.
        if block.kind != Kind::Skip {
            let slot = self.slot(client);
            self.clients[slot].1.push(block);
        }
    }

    fn delete(&mut self, client: u64, clock: u32, len: u32) {
        self.deletes.entry(client).or_default().push((clock, len));
    }
}

/// Merge v1 updates into one v1 update.
pub fn merge_v1<B: AsRef<[u8]>>(updates: &[B]) -> Result<Vec<u8>> {
    let mut collected = Collected::default();
    for update in updates {
        collected.add(update.as_ref())?;
    }
    collected.encode()
}

/// Content of the struct being built; may own a joined string.
enum PendingContent<'a> {
    Deleted,
    String(Cow<'a, str>),
    Multi { content_ref: u8, elements: &'a [u8] },
    Single { raw: &'a [u8] },
}

enum Pending<'a> {
    Gc {
        len: u32,
    },
    Item {
        info: u8,
        origin: Option<Id>,
        right_origin: Option<Id>,
        parent: &'a [u8],
        content: PendingContent<'a>,
        len: u32,
    },
}

impl<'a> Pending<'a> {
    /// The part of `block` from `offset` (in clock units) on.
    fn from_block(client: u64, block: &Block<'a>, offset: u32) -> Result<Self> {
        let len = block.len - offset;
        match &block.kind {
            Kind::Gc | Kind::Skip => Ok(Pending::Gc { len }),
            Kind::Item(item) => {
                let Item {
                    info,
                    origin,
                    right_origin,
                    parent,
                    content,
                } = item;
                let mut content = match content {
                    Content::Deleted => PendingContent::Deleted,
                    Content::String(s) => PendingContent::String(Cow::Borrowed(s)),
                    Content::Multi {
                        content_ref,
                        elements,
                    } => PendingContent::Multi {
                        content_ref: *content_ref,
                        elements,
                    },
                    Content::Single { raw, .. } => PendingContent::Single { raw },
                };
                if offset == 0 {
                    return Ok(Pending::Item {
                        info: *info,
                        origin: *origin,
                        right_origin: *right_origin,
                        parent,
                        content,
                        len,
                    });
                }
                content = match content {
                    PendingContent::String(Cow::Borrowed(s)) => {
                        let (_, right) = split_utf16(s, offset as usize);
                        PendingContent::String(right)
                    }
                    PendingContent::Multi {
                        content_ref,
                        elements,
                    } => PendingContent::Multi {
                        content_ref,
                        elements: multi_tail(content_ref, elements, offset)?,
                    },
                    other => other,
                };
                Ok(Pending::Item {
                    info: *info | HAS_ORIGIN,
                    origin: Some(Id {
                        client,
                        clock: block.clock + offset - 1,
                    }),
                    right_origin: *right_origin,
                    parent: &[],
                    content,
                    len,
                })
            }
        }
    }

    /// Join `next` (which starts where `self` ends, at clock `end`) if Yjs would squash them.
    /// Gives `next` back when it cannot be joined.
    fn try_extend(&mut self, client: u64, end: u32, next: Pending<'a>) -> Option<Pending<'a>> {
        match (self, next) {
            (Pending::Gc { len }, Pending::Gc { len: more }) => {
                *len += more;
                None
            }
            (
                Pending::Item {
                    right_origin,
                    content,
                    len,
                    ..
                },
                next @ Pending::Item { .. },
            ) => {
                let Pending::Item {
                    origin: next_origin,
                    right_origin: next_right_origin,
                    content: next_content,
                    len: more,
                    ..
                } = &next
                else {
                    return Some(next);
                };
                let chained = *next_origin
                    == Some(Id {
                        client,
                        clock: end - 1,
                    })
                    && *next_right_origin == *right_origin;
                if !chained {
                    return Some(next);
                }
                match (content, next_content) {
                    (PendingContent::Deleted, PendingContent::Deleted) => {}
                    (PendingContent::String(s), PendingContent::String(more_text)) => {
                        s.to_mut().push_str(more_text);
                    }
                    _ => return Some(next),
                }
                *len += *more;
                None
            }
            (_, next) => Some(next),
        }
    }

    fn write(&self, w: &mut Writer) {
        match self {
            Pending::Gc { len } => {
                w.byte(INFO_GC);
                w.var(u64::from(*len));
            }
            Pending::Item {
                info,
                origin,
                right_origin,
                parent,
                content,
                len,
            } => {
                let mut flags = *info & (PARENT_SUB_FLAG | update_v1::CONTENT_MASK);
                if origin.is_some() {
                    flags |= HAS_ORIGIN;
                }
                if right_origin.is_some() {
                    flags |= HAS_RIGHT_ORIGIN;
                }
                w.byte(flags);
                if let Some(id) = origin {
                    w.id(*id);
                }
                if let Some(id) = right_origin {
                    w.id(*id);
                }
                if origin.is_none() && right_origin.is_none() {
                    w.bytes(parent);
                }
                match content {
                    PendingContent::Deleted => w.var(u64::from(*len)),
                    PendingContent::String(s) => {
                        w.var(s.len() as u64);
                        w.bytes(s.as_bytes());
                    }
                    PendingContent::Multi { elements, .. } => {
                        w.var(u64::from(*len));
                        w.bytes(elements);
                    }
                    PendingContent::Single { raw } => w.bytes(raw),
                }
            }
        }
    }
}

fn write_client(
    out: &mut Writer,
    body: &mut Writer,
    client: u64,
    blocks: &mut [Block<'_>],
) -> Result<()> {
    // Inputs are mostly already in clock order, which the sort detects in linear time.
    // Longest first on equal clocks, so fewer structs need slicing.
    blocks.sort_by(|a, b| a.clock.cmp(&b.clock).then(b.len.cmp(&a.len)));
    let first_clock = blocks.first().map_or(0, |b| b.clock);
    let mut count: u64 = 0;
    let mut pending: Option<Pending<'_>> = None;
    let mut end = first_clock;
    body.clear();
    for block in blocks.iter() {
        let block_end = block.clock + block.len;
        let Some(current) = pending.as_mut() else {
            pending = Some(Pending::from_block(client, block, 0)?);
            end = block_end;
            continue;
        };
        if block_end <= end {
            continue; // already written
        }
        if block.clock > end {
            current.write(body);
            body.byte(INFO_SKIP);
            body.var(u64::from(block.clock - end));
            count += 2;
            pending = Some(Pending::from_block(client, block, 0)?);
        } else {
            let next = Pending::from_block(client, block, end - block.clock)?;
            if let Some(next) = current.try_extend(client, end, next) {
                current.write(body);
                count += 1;
                pending = Some(next);
            }
        }
        end = block_end;
    }
    if let Some(last) = pending {
        last.write(body);
        count += 1;
    }
    out.var(count);
    out.var(client);
    out.var(u64::from(first_clock));
    out.append(body);
    Ok(())
}

fn write_delete_set(out: &mut Writer, deletes: HashMap<u64, Vec<(u32, u32)>>) {
    let mut clients: Vec<(u64, Vec<(u32, u32)>)> = deletes.into_iter().collect();
    clients.sort_unstable_by_key(|c| std::cmp::Reverse(c.0));
    out.var(clients.len() as u64);
    for (client, mut ranges) in clients {
        ranges.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
        for (clock, len) in ranges {
            let range_end = clock + len;
            if let Some(last) = merged.last_mut() {
                let last_end = last.0 + last.1;
                if clock <= last_end {
                    last.1 = last_end.max(range_end) - last.0;
                    continue;
                }
            }
            merged.push((clock, len));
        }
        out.var(client);
        out.var(merged.len() as u64);
        for (clock, len) in merged {
            out.var(u64::from(clock));
            out.var(u64::from(len));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // "ab" by client 7 into root text "t": one insert of "a", then "b" after it.
    const A: &[u8] = &[1, 1, 7, 0, 4, 1, 1, b't', 1, b'a', 0];
    const B: &[u8] = &[1, 1, 7, 1, 0x84, 7, 0, 1, b'b', 0];

    #[test]
    fn joins_a_typing_run() {
        let merged = merge_v1(&[A, B]).unwrap();
        assert_eq!(merged, [1, 1, 7, 0, 4, 1, 1, b't', 2, b'a', b'b', 0]);
    }

    #[test]
    fn order_and_duplicates_do_not_matter() {
        let expected = merge_v1(&[A, B]).unwrap();
        assert_eq!(merge_v1(&[B, A, B, A]).unwrap(), expected);
    }

    #[test]
    fn a_gap_becomes_a_skip() {
        let merged = merge_v1(&[A, &[1, 1, 7, 5, 0x84, 7, 4, 1, b'x', 0][..]]).unwrap();
        assert_eq!(
            merged,
            [1, 3, 7, 0, 4, 1, 1, b't', 1, b'a', 10, 4, 0x84, 7, 4, 1, b'x', 0]
        );
    }

    #[test]
    fn overlapping_structs_are_sliced() {
        let ab = merge_v1(&[A, B]).unwrap();
        // "ab" again plus "c" typed after "b": overlaps the first struct by two.
        let abc: &[u8] = &[1, 1, 7, 0, 4, 1, 1, b't', 3, b'a', b'b', b'c', 0];
        let merged = merge_v1(&[&ab[..], abc]).unwrap();
        assert_eq!(merged, [1, 1, 7, 0, 4, 1, 1, b't', 3, b'a', b'b', b'c', 0]);
    }

    #[test]
    fn delete_sets_are_unioned() {
        let d1: &[u8] = &[0, 1, 7, 2, 0, 1, 4, 2];
        let d2: &[u8] = &[0, 1, 7, 1, 1, 3];
        assert_eq!(merge_v1(&[d1, d2]).unwrap(), [0, 1, 7, 1, 0, 6]);
    }

    #[test]
    fn empty_input() {
        assert_eq!(merge_v1::<&[u8]>(&[]).unwrap(), EMPTY_UPDATE);
    }
}
