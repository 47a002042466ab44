//! Native hot paths for Nova Collab, built by maturin into the private Python
//! module `_crdt_core_native`. This file only registers; each concern has its file.

pub mod awareness;
pub mod error;
pub mod framing;
pub mod merge;
#[cfg(feature = "python")]
mod pyglue;
pub mod update_v1;
pub mod updates;
pub mod varint;

#[cfg(feature = "python")]
#[pyo3::pymodule]
mod _crdt_core_native {
    #[pymodule_export]
    use crate::framing::py::{
        decode_var_uint, encode_var_uint, frame_auth_denied, frame_awareness, frame_messages,
        frame_query_awareness, frame_sync_step1, frame_sync_step2, frame_update, parse_message,
        parse_messages,
    };

    #[pymodule_export]
    use crate::awareness::py::{coalesce_awareness, decode_awareness, encode_awareness};

    #[pymodule_export]
    use crate::updates::py::{
        compact, diff_update, merge_updates, merge_updates_v2, state_vector, text_of,
        update_v1_to_v2, update_v2_to_v1,
    };
}
