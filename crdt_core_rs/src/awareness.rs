//! y-protocols awareness updates: decode, encode and coalesce many into one.
//!
//! An awareness update is `varuint count` then, per entry, `varuint client`,
//! `varuint clock` and a length-prefixed UTF-8 JSON state (`"null"` = the client left).

use std::collections::HashMap;

use crate::error::{DecodeError, Result};
use crate::varint::{write_var_bytes, write_var_u64, Reader};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    pub client: u64,
    pub clock: u64,
    pub state: &'a str,
}

/// The smallest possible entry is 3 bytes; use it to bound pre-allocation.
const MIN_ENTRY_BYTES: usize = 3;

pub fn decode(update: &[u8]) -> Result<Vec<Entry<'_>>> {
    let mut reader = Reader::new(update);
    let count = reader.read_var_u64()?;
    let capacity = usize::try_from(count)
        .unwrap_or(usize::MAX)
        .min(reader.remaining() / MIN_ENTRY_BYTES);
    let mut entries = Vec::with_capacity(capacity);
    for _ in 0..count {
        entries.push(read_entry(&mut reader)?);
    }
    if !reader.is_at_end() {
        return Err(DecodeError::new(format!(
            "{} trailing bytes after awareness update",
            reader.remaining()
        )));
    }
    Ok(entries)
}

fn read_entry<'a>(reader: &mut Reader<'a>) -> Result<Entry<'a>> {
    let client = reader.read_var_u64()?;
    let clock = reader.read_var_u64()?;
    let state = std::str::from_utf8(reader.read_var_bytes()?)
        .map_err(|_| DecodeError::new("awareness state is not UTF-8"))?;
    Ok(Entry {
        client,
        clock,
        state,
    })
}

pub fn encode(entries: &[Entry<'_>]) -> Vec<u8> {
    let size: usize = entries.iter().map(|e| e.state.len() + 24).sum();
    let mut out = Vec::with_capacity(size + 10);
    write_var_u64(&mut out, entries.len() as u64);
    for entry in entries {
        write_var_u64(&mut out, entry.client);
        write_var_u64(&mut out, entry.clock);
        write_var_bytes(&mut out, entry.state.as_bytes());
    }
    out
}

/// Merge awareness updates: per client the highest clock wins, a later update
/// winning a tie. Clients keep the order in which they first appeared.
pub fn coalesce<B: AsRef<[u8]>>(updates: &[B]) -> Result<Vec<u8>> {
    let mut newest: Vec<Entry<'_>> = Vec::new();
    let mut slot: HashMap<u64, usize> = HashMap::new();
    for update in updates {
        for entry in decode(update.as_ref())? {
            match slot.get(&entry.client) {
                Some(&index) => {
                    if entry.clock >= newest[index].clock {
                        newest[index] = entry;
                    }
                }
                None => {
                    slot.insert(entry.client, newest.len());
                    newest.push(entry);
                }
            }
        }
    }
    Ok(encode(&newest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(client: u64, clock: u64, state: &str) -> Entry<'_> {
        Entry {
            client,
            clock,
            state,
        }
    }

    #[test]
    fn round_trip() {
        let entries = [entry(1, 2, "{\"a\":1}"), entry(u64::MAX >> 1, 0, "null")];
        let bytes = encode(&entries);
        assert_eq!(decode(&bytes).unwrap(), entries);
    }

    #[test]
    fn newest_clock_wins_and_ties_go_to_later() {
        let a = encode(&[entry(1, 5, "\"a5\""), entry(2, 1, "\"b1\"")]);
        let b = encode(&[entry(1, 4, "\"a4\""), entry(3, 1, "\"c1\"")]);
        let c = encode(&[entry(2, 1, "null")]);
        let merged = coalesce(&[a, b, c]).unwrap();
        assert_eq!(
            decode(&merged).unwrap(),
            [
                entry(1, 5, "\"a5\""),
                entry(2, 1, "null"),
                entry(3, 1, "\"c1\"")
            ]
        );
    }

    #[test]
    fn rejects_bad_updates() {
        assert!(decode(b"").is_err());
        assert!(decode(b"\x01\x01\x01").is_err());
        assert!(decode(b"\x01\x01\x01\x01\xff").is_err());
        assert!(decode(b"\x00\x00").is_err());
        assert!(decode(b"\xff\xff\xff\xff\x0f").is_err());
        assert!(coalesce(&[&b"\x00"[..], b"\x02"]).is_err());
    }
}

#[cfg(feature = "python")]
pub mod py {
    use pyo3::exceptions::PyValueError;
    use pyo3::prelude::*;
    use pyo3::types::{PyBytes, PyInt, PyList, PyString};

    use super::{coalesce, decode};
    use crate::pyglue::{bytes_items, facade_types, slices};
    use crate::varint::{write_var_bytes, write_var_u128};

    #[pyfunction]
    pub fn decode_awareness<'py>(py: Python<'py>, update: &[u8]) -> PyResult<Bound<'py, PyList>> {
        let types = facade_types(py)?;
        let list = PyList::empty(py);
        for entry in decode(update)? {
            let obj = types.build(
                py,
                &types.awareness_entry,
                &[
                    (
                        &types.name_client_id,
                        PyInt::new(py, entry.client).into_any(),
                    ),
                    (&types.name_clock, PyInt::new(py, entry.clock).into_any()),
                    (&types.name_state, PyString::new(py, entry.state).into_any()),
                ],
            )?;
            list.append(obj)?;
        }
        Ok(list)
    }

    fn non_negative(value: i128) -> PyResult<u128> {
        u128::try_from(value).map_err(|_| PyValueError::new_err("varuint must be non-negative"))
    }

    #[pyfunction]
    pub fn encode_awareness<'py>(
        py: Python<'py>,
        entries: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let types = facade_types(py)?;
        let mut body = Vec::with_capacity(64);
        let mut count: u128 = 0;
        for entry in entries.try_iter()? {
            let entry = entry?;
            let client: i128 = entry.getattr(types.name_client_id.bind(py))?.extract()?;
            let clock: i128 = entry.getattr(types.name_clock.bind(py))?.extract()?;
            let state = entry.getattr(types.name_state.bind(py))?;
            let state = state.cast::<PyString>()?;
            write_var_u128(&mut body, non_negative(client)?);
            write_var_u128(&mut body, non_negative(clock)?);
            write_var_bytes(&mut body, state.to_str()?.as_bytes());
            count += 1;
        }
        let mut out = Vec::with_capacity(body.len() + 5);
        write_var_u128(&mut out, count);
        out.extend_from_slice(&body);
        Ok(PyBytes::new(py, &out))
    }

    #[pyfunction]
    pub fn coalesce_awareness<'py>(
        py: Python<'py>,
        updates: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let items = bytes_items(updates)?;
        let slices = slices(&items);
        let merged = coalesce(&slices)?;
        Ok(PyBytes::new(py, &merged))
    }
}
