//! Shared Python glue: the facade's value types, built without running their
//! (frozen dataclass) `__init__`, and zero-copy access to sequences of `bytes`.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyString, PyType};

use crate::framing::Kind;

/// The facade's `Message`, `MessageKind` members and `AwarenessEntry`, looked up once.
pub struct FacadeTypes {
    object_new: Py<PyAny>,
    pub message: Py<PyAny>,
    pub kinds: Vec<Py<PyAny>>,
    pub awareness_entry: Py<PyAny>,
    pub protocol_error: Py<PyType>,
    pub name_kind: Py<PyString>,
    pub name_payload: Py<PyString>,
    pub name_client_id: Py<PyString>,
    pub name_clock: Py<PyString>,
    pub name_state: Py<PyString>,
}

static TYPES: PyOnceLock<FacadeTypes> = PyOnceLock::new();

pub fn facade_types(py: Python<'_>) -> PyResult<&FacadeTypes> {
    TYPES.get_or_try_init(py, || {
        let module = py.import("crdt_core._types")?;
        let kind_enum = module.getattr("MessageKind")?;
        let kinds = Kind::ALL
            .iter()
            .map(|kind| kind_enum.call1((*kind as u8,)).map(Bound::unbind))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(FacadeTypes {
            object_new: py
                .import("builtins")?
                .getattr("object")?
                .getattr("__new__")?
                .unbind(),
            message: module.getattr("Message")?.unbind(),
            kinds,
            awareness_entry: module.getattr("AwarenessEntry")?.unbind(),
            protocol_error: module
                .getattr("ProtocolError")?
                .cast_into::<PyType>()?
                .unbind(),
            name_kind: PyString::intern(py, "kind").unbind(),
            name_payload: PyString::intern(py, "payload").unbind(),
            name_client_id: PyString::intern(py, "client_id").unbind(),
            name_clock: PyString::intern(py, "clock").unbind(),
            name_state: PyString::intern(py, "state").unbind(),
        })
    })
}

impl FacadeTypes {
    /// A new instance of the slotted class `cls` with `fields` set directly.
    pub fn build<'py>(
        &self,
        py: Python<'py>,
        cls: &Py<PyAny>,
        fields: &[(&Py<PyString>, Bound<'py, PyAny>)],
    ) -> PyResult<Bound<'py, PyAny>> {
        let obj = self.object_new.bind(py).call1((cls.bind(py),))?;
        for (name, value) in fields {
            // SAFETY: all three pointers are live, owned references held for the call;
            // generic setattr bypasses the frozen dataclass's `__setattr__` exactly as
            // its generated `__init__` does with `object.__setattr__`.
            let rc = unsafe {
                pyo3::ffi::PyObject_GenericSetAttr(obj.as_ptr(), name.as_ptr(), value.as_ptr())
            };
            if rc != 0 {
                return Err(PyErr::fetch(py));
            }
        }
        Ok(obj)
    }

    pub fn message<'py>(
        &self,
        py: Python<'py>,
        kind: Kind,
        payload: &[u8],
    ) -> PyResult<Bound<'py, PyAny>> {
        let kind_obj = self.kinds[kind as usize].bind(py).clone();
        let payload = PyBytes::new(py, payload).into_any();
        self.build(
            py,
            &self.message,
            &[(&self.name_kind, kind_obj), (&self.name_payload, payload)],
        )
    }
}

/// The `bytes` objects of a list or tuple (or any iterable), kept alive by the caller
/// while slices of them are used without the GIL.
pub fn bytes_items<'py>(seq: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyBytes>>> {
    let mut out = Vec::with_capacity(seq.len().unwrap_or(0));
    for item in seq.try_iter()? {
        let item = item?;
        out.push(item.cast_into::<PyBytes>()?);
    }
    Ok(out)
}

pub fn slices<'a>(items: &'a [Bound<'_, PyBytes>]) -> Vec<&'a [u8]> {
    items.iter().map(|b| b.as_bytes()).collect()
}
