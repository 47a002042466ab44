//! Functions on encoded updates: merge, diff, state vector, v1/v2 conversion,
//! compaction and reading a text, all without a Python document.
//!
//! v1 input is validated by our own reader before yrs sees it; yrs calls run under
//! `catch_unwind` as a second guard, so no input can panic through to Python.

use std::panic::{catch_unwind, AssertUnwindSafe};

use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{GetString, ReadTxn, StateVector, Transact, Update};

use crate::error::{DecodeError, Result};
use crate::merge::{merge_v1, EMPTY_UPDATE};
use crate::update_v1::{self, Validate};
use crate::varint::Reader;

fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(DecodeError::new(format!(
            "{what}: yrs could not process the input"
        )))
    })
}

fn yrs_error(what: &str, err: impl std::fmt::Display) -> DecodeError {
    DecodeError::new(format!("{what}: {err}"))
}

pub fn validate_v1(update: &[u8]) -> Result<()> {
    update_v1::decode(update, &mut Validate)
}

pub fn validate_state_vector(state_vector: &[u8]) -> Result<()> {
    let mut reader = Reader::new(state_vector);
    let count = reader.read_var_u32()?;
    for _ in 0..count {
        reader.read_var_u64()?;
        reader.read_var_u32()?;
    }
    Ok(())
}

/// Merge v1 updates. Like the fallback: no update gives the empty update, one is
/// returned unchanged.
pub fn merge_updates<B: AsRef<[u8]>>(updates: &[B]) -> Result<Vec<u8>> {
    match updates {
        [] => Ok(EMPTY_UPDATE.to_vec()),
        [one] => Ok(one.as_ref().to_vec()),
        _ => merge_v1(updates),
    }
}

/// The part of `update` that a peer at `state_vector` lacks (yrs' own diff: same bytes as pycrdt).
pub fn diff_update(update: &[u8], state_vector: &[u8]) -> Result<Vec<u8>> {
    validate_v1(update)?;
    validate_state_vector(state_vector)?;
    guarded("diff_update", || {
        yrs::diff_updates_v1(update, state_vector).map_err(|e| yrs_error("diff_update", e))
    })
}

pub fn state_vector(update: &[u8]) -> Result<Vec<u8>> {
    validate_v1(update)?;
    guarded("state_vector", || {
        yrs::encode_state_vector_from_update_v1(update).map_err(|e| yrs_error("state_vector", e))
    })
}

fn decode_v1(update: &[u8]) -> Result<Update> {
    validate_v1(update)?;
    guarded("decode", || {
        Update::decode_v1(update).map_err(|e| yrs_error("decode", e))
    })
}

/// The plain text of the root `Y.Text` called `name` (empty if there is none).
pub fn text_of(update: &[u8], name: &str) -> Result<String> {
    let decoded = decode_v1(update)?;
    guarded("text_of", || {
        let doc = yrs::Doc::new();
        let text = doc.get_or_insert_text(name);
        let mut txn = doc.transact_mut();
        txn.apply_update(decoded)
            .map_err(|e| yrs_error("text_of", e))?;
        Ok(text.get_string(&txn))
    })
}

/// Snapshot plus log tail as one update: the smaller of their linear merge and the
/// encoding of the document they make (deleted content collected, items squashed).
/// If some structs or deletes cannot be integrated yet (missing dependencies), the
/// merge is returned so that nothing is lost.
pub fn compact<B: AsRef<[u8]>>(snapshot: &[u8], tail: &[B]) -> Result<Vec<u8>> {
    let mut all: Vec<&[u8]> = Vec::with_capacity(tail.len() + 1);
    all.push(snapshot);
    all.extend(tail.iter().map(AsRef::as_ref));
    let merged = merge_v1(&all)?;
    let decoded = decode_v1(&merged)?;
    guarded("compact", || {
        let doc = yrs::Doc::new();
        let mut txn = doc.transact_mut();
        txn.apply_update(decoded)
            .map_err(|e| yrs_error("compact", e))?;
        if txn.has_missing_updates() {
            return Ok(merged);
        }
        let encoded = txn.encode_diff_v1(&StateVector::default());
        Ok(if encoded.len() < merged.len() {
            encoded
        } else {
            merged
        })
    })
}

pub fn update_v1_to_v2(update: &[u8]) -> Result<Vec<u8>> {
    let decoded = decode_v1(update)?;
    guarded("update_v1_to_v2", || Ok(decoded.encode_v2()))
}

pub fn update_v2_to_v1(update: &[u8]) -> Result<Vec<u8>> {
    let v1 = guarded("update_v2_to_v1", || {
        Update::decode_v2(update)
            .map(|u| u.encode_v1())
            .map_err(|e| yrs_error("update_v2_to_v1", e))
    })?;
    // yrs' v2 reader is not ours: check what it produced before anything else uses it.
    validate_v1(&v1)?;
    Ok(v1)
}

/// Merge v2 updates: each is converted to v1, merged linearly, and the result converted back.
pub fn merge_updates_v2<B: AsRef<[u8]>>(updates: &[B]) -> Result<Vec<u8>> {
    match updates {
        [] => update_v1_to_v2(EMPTY_UPDATE),
        [one] => Ok(one.as_ref().to_vec()),
        _ => {
            let v1: Vec<Vec<u8>> = updates
                .iter()
                .map(|u| update_v2_to_v1(u.as_ref()))
                .collect::<Result<_>>()?;
            update_v1_to_v2(&merge_v1(&v1)?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{Doc, Options, Text, WriteTxn};

    fn typed(client: u64, edits: &[(u32, &str)]) -> Vec<Vec<u8>> {
        let doc = Doc::with_options(Options::with_client_id(yrs::block::ClientID::new(client)));
        let text = doc.get_or_insert_text("t");
        edits
            .iter()
            .map(|(at, s)| {
                let mut txn = doc.transact_mut();
                text.insert(&mut txn, *at, s);
                txn.encode_update_v1()
            })
            .collect()
    }

    #[test]
    fn merged_typing_reads_back() {
        let updates = typed(42, &[(0, "h"), (1, "e"), (2, "y"), (0, ">")]);
        let merged = merge_updates(&updates).unwrap();
        assert_eq!(text_of(&merged, "t").unwrap(), ">hey");
        assert_eq!(
            StateVector::decode_v1(&state_vector(&merged).unwrap()).unwrap(),
            StateVector::decode_v1(&yrs::encode_state_vector_from_update_v1(&merged).unwrap())
                .unwrap()
        );
    }

    #[test]
    fn compact_and_v2_round_trip() {
        let updates = typed(7, &[(0, "abc"), (3, "def")]);
        let compacted = compact(&updates[0], &updates[1..]).unwrap();
        assert_eq!(text_of(&compacted, "t").unwrap(), "abcdef");
        let v2 = update_v1_to_v2(&compacted).unwrap();
        let back = update_v2_to_v1(&v2).unwrap();
        assert_eq!(text_of(&back, "t").unwrap(), "abcdef");
        let v2s: Vec<Vec<u8>> = updates
            .iter()
            .map(|u| update_v1_to_v2(u).unwrap())
            .collect();
        let merged = update_v2_to_v1(&merge_updates_v2(&v2s).unwrap()).unwrap();
        assert_eq!(text_of(&merged, "t").unwrap(), "abcdef");
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(text_of(b"\x01", "t").is_err());
        assert!(diff_update(b"\x00\x00", b"\x05").is_err());
        assert!(update_v2_to_v1(b"\xff\xff").is_err());
        assert!(state_vector(b"").is_err());
    }

    #[test]
    fn missing_dependencies_survive_compaction() {
        let updates = typed(9, &[(0, "a"), (1, "b"), (2, "c")]);
        let compacted = compact(&updates[0], &updates[2..]).unwrap();
        let full = merge_updates(&[compacted.as_slice(), updates[1].as_slice()]).unwrap();
        assert_eq!(text_of(&full, "t").unwrap(), "abc");
    }

    #[test]
    fn text_of_missing_root_is_empty() {
        let doc = Doc::new();
        let mut txn = doc.transact_mut();
        txn.get_or_insert_map("m");
        assert_eq!(text_of(&txn.encode_update_v1(), "t").unwrap(), "");
    }
}

#[cfg(feature = "python")]
pub mod py {
    use pyo3::prelude::*;
    use pyo3::types::PyBytes;

    use crate::pyglue::{bytes_items, slices};

    /// Run `f` on the byte slices of `updates` with the GIL released.
    fn on_slices<'py>(
        py: Python<'py>,
        updates: &Bound<'py, PyAny>,
        f: impl FnOnce(&[&[u8]]) -> crate::error::Result<Vec<u8>> + Send,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let items = bytes_items(updates)?;
        let slices = slices(&items);
        let out = py.detach(|| f(&slices))?;
        Ok(PyBytes::new(py, &out))
    }

    #[pyfunction]
    pub fn merge_updates<'py>(
        py: Python<'py>,
        updates: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        on_slices(py, updates, |s| super::merge_updates(s))
    }

    #[pyfunction]
    pub fn merge_updates_v2<'py>(
        py: Python<'py>,
        updates: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        on_slices(py, updates, |s| super::merge_updates_v2(s))
    }

    #[pyfunction]
    pub fn compact<'py>(
        py: Python<'py>,
        snapshot: &[u8],
        tail: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        on_slices(py, tail, |s| super::compact(snapshot, s))
    }

    #[pyfunction]
    pub fn diff_update<'py>(
        py: Python<'py>,
        update: &[u8],
        state_vector: &[u8],
    ) -> PyResult<Bound<'py, PyBytes>> {
        let out = py.detach(|| super::diff_update(update, state_vector))?;
        Ok(PyBytes::new(py, &out))
    }

    #[pyfunction]
    pub fn state_vector<'py>(py: Python<'py>, update: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let out = py.detach(|| super::state_vector(update))?;
        Ok(PyBytes::new(py, &out))
    }

    #[pyfunction]
    pub fn text_of(py: Python<'_>, update: &[u8], name: &str) -> PyResult<String> {
        Ok(py.detach(|| super::text_of(update, name))?)
    }

    #[pyfunction]
    pub fn update_v1_to_v2<'py>(py: Python<'py>, update: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let out = py.detach(|| super::update_v1_to_v2(update))?;
        Ok(PyBytes::new(py, &out))
    }

    #[pyfunction]
    pub fn update_v2_to_v1<'py>(py: Python<'py>, update: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let out = py.detach(|| super::update_v2_to_v1(update))?;
        Ok(PyBytes::new(py, &out))
    }
}
