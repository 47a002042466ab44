//! The y-websocket message envelope: parse incoming frames, frame outgoing payloads.
//!
//! Mirrors `crdt_core/_framing.py` byte for byte, errors included.

use crate::error::{DecodeError, Result};
use crate::varint::{write_var_bytes, write_var_u64, Reader};

const MESSAGE_SYNC: u64 = 0;
const MESSAGE_AWARENESS: u64 = 1;
const MESSAGE_AUTH: u64 = 2;
const MESSAGE_QUERY_AWARENESS: u64 = 3;
const SYNC_STEP1: u64 = 0;
const SYNC_STEP2: u64 = 1;
const SYNC_UPDATE: u64 = 2;
const AUTH_PERMISSION_DENIED: u64 = 0;

/// Same numbering as the facade's `MessageKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    SyncStep1 = 0,
    SyncStep2 = 1,
    SyncUpdate = 2,
    Awareness = 3,
    Auth = 4,
    QueryAwareness = 5,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::SyncStep1,
        Kind::SyncStep2,
        Kind::SyncUpdate,
        Kind::Awareness,
        Kind::Auth,
        Kind::QueryAwareness,
    ];

    pub fn from_index(index: u64) -> Result<Self> {
        usize::try_from(index)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
            .ok_or_else(|| DecodeError::new(format!("unknown message kind {index}")))
    }
}

/// Decode one message; the payload borrows from `data`. Trailing bytes are an error.
pub fn parse_message(data: &[u8]) -> Result<(Kind, &[u8])> {
    let mut reader = Reader::new(data);
    let (kind, payload) = match reader.read_var_u64()? {
        MESSAGE_SYNC => {
            let kind = match reader.read_var_u64()? {
                SYNC_STEP1 => Kind::SyncStep1,
                SYNC_STEP2 => Kind::SyncStep2,
                SYNC_UPDATE => Kind::SyncUpdate,
                sub => return Err(DecodeError::new(format!("unknown sync message type {sub}"))),
            };
            (kind, reader.read_var_bytes()?)
        }
        MESSAGE_AWARENESS => (Kind::Awareness, reader.read_var_bytes()?),
        MESSAGE_AUTH => {
            let sub = reader.read_var_u64()?;
            if sub != AUTH_PERMISSION_DENIED {
                return Err(DecodeError::new(format!("unknown auth message type {sub}")));
            }
            let reason = reader.read_var_bytes()?;
            if std::str::from_utf8(reason).is_err() {
                return Err(DecodeError::new("auth reason is not UTF-8"));
            }
            (Kind::Auth, reason)
        }
        MESSAGE_QUERY_AWARENESS => (Kind::QueryAwareness, &data[..0]),
        outer => return Err(DecodeError::new(format!("unknown message type {outer}"))),
    };
    if !reader.is_at_end() {
        return Err(DecodeError::new(format!(
            "{} trailing bytes after message",
            reader.remaining()
        )));
    }
    Ok((kind, payload))
}

/// Append the framed message of `kind` carrying `payload` to `out`.
///
/// An auth payload must be UTF-8 and a query-awareness payload empty, so that
/// `parse_message(frame(kind, payload))` gives back exactly `(kind, payload)`.
pub fn frame_into(out: &mut Vec<u8>, kind: Kind, payload: &[u8]) -> Result<()> {
    match kind {
        Kind::SyncStep1 | Kind::SyncStep2 | Kind::SyncUpdate => {
            write_var_u64(out, MESSAGE_SYNC);
            write_var_u64(out, kind as u64);
            write_var_bytes(out, payload);
        }
        Kind::Awareness => {
            write_var_u64(out, MESSAGE_AWARENESS);
            write_var_bytes(out, payload);
        }
        Kind::Auth => {
            if std::str::from_utf8(payload).is_err() {
                return Err(DecodeError::new("auth reason is not UTF-8"));
            }
            write_var_u64(out, MESSAGE_AUTH);
            write_var_u64(out, AUTH_PERMISSION_DENIED);
            write_var_bytes(out, payload);
        }
        Kind::QueryAwareness => {
            if !payload.is_empty() {
                return Err(DecodeError::new(
                    "a query-awareness message carries no payload",
                ));
            }
            write_var_u64(out, MESSAGE_QUERY_AWARENESS);
        }
    }
    Ok(())
}

pub fn frame(kind: Kind, payload: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(payload.len() + 12);
    frame_into(&mut out, kind, payload)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_kind() {
        for kind in Kind::ALL {
            let payload: &[u8] = match kind {
                Kind::QueryAwareness => b"",
                Kind::Auth => "nope \u{e9}".as_bytes(),
                _ => b"\x01\x02\x03",
            };
            let framed = frame(kind, payload).expect("valid frame");
            assert_eq!(parse_message(&framed), Ok((kind, payload)));
        }
    }

    #[test]
    fn known_bytes() {
        assert_eq!(
            frame(Kind::SyncStep1, b"\x00").unwrap(),
            b"\x00\x00\x01\x00"
        );
        assert_eq!(frame(Kind::Awareness, b"ab").unwrap(), b"\x01\x02ab");
        assert_eq!(frame(Kind::QueryAwareness, b"").unwrap(), b"\x03");
    }

    #[test]
    fn rejects_bad_frames() {
        for bad in [
            &b""[..],
            b"\x00",
            b"\x00\x03\x00",
            b"\x00\x02\x05ab",
            b"\x02\x01\x00",
            b"\x02\x00\x01\xff",
            b"\x03\x00",
            b"\x04",
            b"\x01\x00\x00",
        ] {
            assert!(parse_message(bad).is_err(), "{bad:?}");
        }
    }
}

#[cfg(feature = "python")]
pub mod py {
    use pyo3::exceptions::PyValueError;
    use pyo3::prelude::*;
    use pyo3::types::{PyBytes, PyList};

    use super::{frame, frame_into, parse_message as parse, Kind};
    use crate::error::DecodeError;
    use crate::pyglue::facade_types;
    use crate::varint::{write_var_u128, Reader};

    #[pyfunction]
    pub fn encode_var_uint(py: Python<'_>, value: i128) -> PyResult<Bound<'_, PyBytes>> {
        let value = u128::try_from(value)
            .map_err(|_| PyValueError::new_err("varuint must be non-negative"))?;
        let mut out = Vec::with_capacity(10);
        write_var_u128(&mut out, value);
        Ok(PyBytes::new(py, &out))
    }

    /// Read one varuint at `offset`; return (value, offset after it).
    #[pyfunction]
    #[pyo3(signature = (data, offset = 0))]
    pub fn decode_var_uint(data: &[u8], offset: i64) -> PyResult<(u64, usize)> {
        let offset = usize::try_from(offset).map_err(|_| DecodeError::new("negative offset"))?;
        let mut reader = Reader::at(data, offset);
        let value = reader.read_var_u64()?;
        Ok((value, reader.pos()))
    }

    #[pyfunction]
    pub fn parse_message<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        let (kind, payload) = parse(data)?;
        facade_types(py)?.message(py, kind, payload)
    }

    #[pyfunction]
    pub fn parse_messages<'py>(
        py: Python<'py>,
        frames: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let types = facade_types(py)?;
        let list = PyList::empty(py);
        for frame in frames.try_iter()? {
            let frame = frame?;
            let frame = frame.cast::<PyBytes>()?;
            let (kind, payload) = parse(frame.as_bytes())?;
            list.append(types.message(py, kind, payload)?)?;
        }
        Ok(list)
    }

    fn framed<'py>(py: Python<'py>, kind: Kind, payload: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &frame(kind, payload)?))
    }

    #[pyfunction]
    pub fn frame_sync_step1<'py>(
        py: Python<'py>,
        state_vector: &[u8],
    ) -> PyResult<Bound<'py, PyBytes>> {
        framed(py, Kind::SyncStep1, state_vector)
    }

    #[pyfunction]
    pub fn frame_sync_step2<'py>(py: Python<'py>, update: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        framed(py, Kind::SyncStep2, update)
    }

    #[pyfunction]
    pub fn frame_update<'py>(py: Python<'py>, update: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        framed(py, Kind::SyncUpdate, update)
    }

    #[pyfunction]
    pub fn frame_awareness<'py>(
        py: Python<'py>,
        awareness_update: &[u8],
    ) -> PyResult<Bound<'py, PyBytes>> {
        framed(py, Kind::Awareness, awareness_update)
    }

    #[pyfunction]
    pub fn frame_auth_denied<'py>(py: Python<'py>, reason: &str) -> PyResult<Bound<'py, PyBytes>> {
        framed(py, Kind::Auth, reason.as_bytes())
    }

    #[pyfunction]
    pub fn frame_query_awareness(py: Python<'_>) -> PyResult<Bound<'_, PyBytes>> {
        framed(py, Kind::QueryAwareness, b"")
    }

    /// Frame many `Message`s at once: the inverse of `parse_messages`.
    #[pyfunction]
    pub fn frame_messages<'py>(
        py: Python<'py>,
        messages: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let types = facade_types(py)?;
        let list = PyList::empty(py);
        let mut buf = Vec::with_capacity(256);
        for message in messages.try_iter()? {
            let message = message?;
            let kind: u64 = message.getattr(types.name_kind.bind(py))?.extract()?;
            let payload = message.getattr(types.name_payload.bind(py))?;
            let payload = payload.cast::<PyBytes>()?;
            buf.clear();
            frame_into(&mut buf, Kind::from_index(kind)?, payload.as_bytes())?;
            list.append(PyBytes::new(py, &buf))?;
        }
        Ok(list)
    }
}
