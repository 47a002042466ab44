//! The one error type of the crate: bytes that are not what they claim to be.

use std::fmt;

/// Malformed input. The Python layer turns it into `ValueError` (the facade's `ProtocolError`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    message: String,
}

impl DecodeError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DecodeError {}

pub type Result<T> = std::result::Result<T, DecodeError>;

/// Raised as the facade's `crdt_core.ProtocolError` (a `ValueError`), or as a plain
/// `ValueError` if the facade cannot be imported.
#[cfg(feature = "python")]
impl From<DecodeError> for pyo3::PyErr {
    fn from(err: DecodeError) -> Self {
        pyo3::Python::attach(|py| match crate::pyglue::facade_types(py) {
            Ok(types) => pyo3::PyErr::from_type(types.protocol_error.bind(py).clone(), err.message),
            Err(_) => pyo3::exceptions::PyValueError::new_err(err.message),
        })
    }
}
