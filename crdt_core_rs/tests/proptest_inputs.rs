//! Property tests over every parser and the merge/diff entry points.
//!
//! `cargo test` runs a quick pass; a longer bounded fuzzing run is
//! `PROPTEST_CASES=20000 cargo test --release --test proptest_inputs` (see README.md).
//! A failing case is saved in `tests/proptest_inputs.regressions` and replayed on every run.

use _crdt_core_native::{awareness, framing, merge, update_v1, updates};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use yrs::block::ClientID;
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, OffsetKind, Options, ReadTxn, Text, Transact};

/// A few clients editing one text concurrently: (client, position fraction, insert, delete).
/// (Astral characters and surrogate splits are covered by the Python differential tests.)
type Edit = (usize, f64, String, u32);

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec((0usize..3, 0.0f64..1.0, "[abé€ ]{0,4}", 0u32..3), 1..25)
}

/// Replays `edits` with periodic syncs; returns every update and the final merged text.
fn replay(edits: &[Edit]) -> (Vec<Vec<u8>>, String) {
    let docs: Vec<Doc> = (0..3)
        .map(|i| {
            let mut options = Options::with_client_id(ClientID::new(100 + i as u64));
            // Indexes in UTF-16 units, and only BMP characters above: no split characters.
            options.offset_kind = OffsetKind::Utf16;
            Doc::with_options(options)
        })
        .collect();
    let mut all = Vec::new();
    for (step, (client, at, insert, delete)) in edits.iter().enumerate() {
        let doc = &docs[*client];
        let text = doc.get_or_insert_text("t");
        let mut txn = doc.transact_mut();
        let len = text.len(&txn);
        let index = ((*at * f64::from(len)) as u32).min(len);
        let delete = (*delete).min(len - index);
        if delete > 0 {
            text.remove_range(&mut txn, index, delete);
        }
        if !insert.is_empty() {
            text.insert(&mut txn, index, insert);
        }
        let update = txn.encode_update_v1();
        drop(txn);
        all.push(update);
        if step % 4 == 3 {
            for other in &docs {
                if !std::ptr::eq(other, doc) {
                    let sv = other.transact().state_vector();
                    let diff = doc.transact().encode_diff_v1(&sv);
                    let parsed = yrs::Update::decode_v1(&diff).expect("own diff decodes");
                    other
                        .transact_mut()
                        .apply_update(parsed)
                        .expect("own diff applies");
                }
            }
        }
    }
    let full = Doc::new();
    let text = full.get_or_insert_text("t");
    for update in &all {
        let parsed = yrs::Update::decode_v1(update).expect("own update decodes");
        full.transact_mut()
            .apply_update(parsed)
            .expect("own update applies");
    }
    let content = text.get_string(&full.transact());
    (all, content)
}

proptest! {
    // Failing cases are kept in tests/proptest_inputs.regressions and replayed first.
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn frames_parse_or_fail_cleanly(data in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Ok((kind, payload)) = framing::parse_message(&data) {
            prop_assert_eq!(framing::frame(kind, payload).expect("parsed frames re-frame"), data);
        }
    }

    #[test]
    fn awareness_parses_or_fails_cleanly(data in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(entries) = awareness::decode(&data) {
            let again = awareness::encode(&entries);
            prop_assert_eq!(awareness::decode(&again).expect("re-encoded decodes"), entries);
        }
        let _ = awareness::coalesce(&[data.as_slice(), data.as_slice()]);
    }

    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..96)) {
        let _ = update_v1::decode(&data, &mut update_v1::Validate);
        let _ = merge::merge_v1(&[data.as_slice(), data.as_slice()]);
        let _ = updates::state_vector(&data);
        let _ = updates::diff_update(&data, &data);
        let _ = updates::text_of(&data, "t");
        let _ = updates::compact(&data, &[data.as_slice()]);
        let _ = updates::update_v2_to_v1(&data);
    }

    #[test]
    fn merge_equals_applying_one_by_one(edits in edits(), seed in any::<u64>()) {
        let (all, expected) = replay(&edits);
        let merged = updates::merge_updates(&all).expect("valid updates merge");
        prop_assert_eq!(updates::text_of(&merged, "t").expect("merge decodes"), expected.clone());
        // any order, with duplicates
        let mut shuffled = all.clone();
        let n = shuffled.len();
        for i in 0..n {
            let j = (seed.wrapping_mul(6364136223846793005).wrapping_add(i as u64) % n as u64) as usize;
            shuffled.swap(i, j);
        }
        shuffled.push(merged.clone());
        let again = updates::merge_updates(&shuffled).expect("valid updates merge");
        prop_assert_eq!(updates::text_of(&again, "t").expect("merge decodes"), expected.clone());
        let compacted = updates::compact(&all[0], &all[1..]).expect("valid updates compact");
        prop_assert_eq!(updates::text_of(&compacted, "t").expect("compaction decodes"), expected);
    }

    #[test]
    fn mutated_updates_never_panic(edits in edits(), at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let (all, _) = replay(&edits);
        let mut merged = updates::merge_updates(&all).expect("valid updates merge");
        let i = at.index(merged.len());
        merged[i] = byte;
        merged.truncate(cut.index(merged.len() + 1));
        let _ = updates::merge_updates(&[merged.as_slice(), all[0].as_slice()]);
        let _ = updates::text_of(&merged, "t");
        let _ = updates::diff_update(&merged, &[1, 100, 1]);
        let _ = updates::compact(&merged, &all);
        if let Ok(v2) = updates::update_v1_to_v2(&merged) {
            let _ = updates::update_v2_to_v1(&v2);
        }
    }
}
