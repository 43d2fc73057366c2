//! Fuzzing what a peer can send the master: `protocol::decode`, `protocol::decode_hello`,
//! snapshot JSON and the V2 histogram bytes inside it. Arbitrary text, mutated real
//! frames and forged histogram headers must never panic, and a decoded histogram never
//! holds more than `MAX_DECODED_COUNTS` counts (the allocation bound: the claimed payload
//! is never allocated beyond the bytes present, the counts array never beyond a fixed
//! size), whatever its header claims.
//!
//! `LOADPLAN_FUZZ_CASES` sets the number of cases (default 256), as in `tests/lang_fuzz.rs`.

use loadplan::dist::protocol::{self, Message};
use loadplan::metrics::{Event, Snapshot};
use loadplan::metrics::{Latency, MAX_DECODED_COUNTS};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

fn cases() -> u32 {
    std::env::var("LOADPLAN_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    })
}

fn sample_snapshot() -> Snapshot {
    let mut s = Snapshot::default();
    for (i, us) in [120u64, 3_000, 45_000, 900_000, 3_600_000_000]
        .iter()
        .enumerate()
    {
        s.record(Event::new((i % 3) as u32, *us).with_status(200));
    }
    s
}

fn sample_frames() -> Vec<String> {
    vec![
        protocol::encode(&Message::Hello {
            secret: "s".into(),
            name: "w".into(),
        }),
        protocol::encode(&Message::Delta {
            assignment: 1,
            snapshot: sample_snapshot(),
        }),
        protocol::encode(&Message::Done {
            assignment: 1,
            elapsed_secs: 2.5,
            interrupted: false,
        }),
        protocol::encode(&Message::Heartbeat {}),
    ]
}

/// Every histogram of a decoded snapshot stays within the bound.
fn assert_bounded(s: &Snapshot) {
    assert!(s.lateness.allocated_counts() <= MAX_DECODED_COUNTS);
    for st in s.steps.values() {
        assert!(st.latency.allocated_counts() <= MAX_DECODED_COUNTS);
        assert!(st.corrected.allocated_counts() <= MAX_DECODED_COUNTS);
    }
}

fn check_frame(text: &str) {
    if let Ok(Message::Delta { snapshot, .. }) = protocol::decode(text) {
        assert_bounded(&snapshot);
    }
    let _ = protocol::decode_hello(text);
    if let Ok(s) = serde_json::from_str::<Snapshot>(text) {
        assert_bounded(&s);
    }
}

#[test]
fn arbitrary_text_never_panics_the_decoders() {
    runner()
        .run(&".{0,400}", |text| {
            check_frame(&text);
            Ok(())
        })
        .expect("no panic on arbitrary text");
}

#[test]
fn mutated_real_frames_never_panic_the_decoders() {
    let frames = sample_frames();
    let n = frames.len();
    let strategy = (
        0..n,
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    );
    runner()
        .run(&strategy, |(which, edits)| {
            let mut bytes = frames[which].clone().into_bytes();
            for (at, b) in edits {
                let i = at.index(bytes.len());
                // Printable ASCII keeps the text valid UTF-8 and mostly valid JSON.
                bytes[i] = 0x20 + b % 0x5f;
            }
            check_frame(&String::from_utf8_lossy(&bytes));
            Ok(())
        })
        .expect("no panic on mutated frames");
}

/// A V2 histogram with every header field and the payload drawn at random, around the
/// values our encoder writes.
fn forged_histogram() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![Just(0x1c84_9313u32), any::<u32>()],
        prop_oneof![Just(None), any::<u32>().prop_map(Some)],
        prop_oneof![Just(0u32), any::<u32>()],
        prop_oneof![Just(3u32), 0u32..8],
        prop_oneof![Just(1u64), any::<u64>()],
        prop_oneof![Just(1u64 << 36), Just(2u64), 2u64..(1 << 37), any::<u64>()],
        prop_oneof![Just(1.0f64), any::<f64>()],
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(
            |(cookie, claim, offset, sigfig, low, high, ratio, payload)| {
                let mut b = Vec::new();
                b.extend_from_slice(&cookie.to_be_bytes());
                let len = claim.unwrap_or(payload.len() as u32);
                b.extend_from_slice(&len.to_be_bytes());
                b.extend_from_slice(&offset.to_be_bytes());
                b.extend_from_slice(&sigfig.to_be_bytes());
                b.extend_from_slice(&low.to_be_bytes());
                b.extend_from_slice(&high.to_be_bytes());
                b.extend_from_slice(&ratio.to_bits().to_be_bytes());
                b.extend_from_slice(&payload);
                b
            },
        )
}

#[test]
fn forged_histogram_headers_never_allocate_beyond_the_bound() {
    runner()
        .run(&forged_histogram(), |bytes| {
            let claimed = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
            match Latency::decode_v2(&bytes) {
                Ok(l) => {
                    // Accepted only when the claim is the bytes present.
                    prop_assert_eq!(claimed, bytes.len() - 40);
                    prop_assert!(l.allocated_counts() <= MAX_DECODED_COUNTS);
                    // A decoded histogram merges and answers without panicking.
                    let mut sum = Latency::new();
                    sum.record(1_000);
                    sum.merge(&l);
                    let _ = (sum.value_at_quantile(0.99), sum.max(), sum.mean());
                }
                Err(e) => prop_assert!(!e.is_empty()),
            }
            Ok(())
        })
        .expect("forged headers are refused or bounded");
}

#[test]
fn mutated_real_histograms_never_panic() {
    let mut l = Latency::new();
    for v in [1u64, 7, 120, 3_000, 45_000, 900_000, 3_600_000_000] {
        l.record_n(v, v % 5 + 1);
    }
    let good = l.encode_v2().expect("encodes");
    assert_eq!(Latency::decode_v2(&good).expect("decodes"), l);
    let strategy = proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6);
    runner()
        .run(&strategy, |edits| {
            let mut bytes = good.clone();
            for (at, b) in edits {
                let i = at.index(bytes.len());
                bytes[i] = b;
            }
            if let Ok(d) = Latency::decode_v2(&bytes) {
                prop_assert!(d.allocated_counts() <= MAX_DECODED_COUNTS);
                let _ = (
                    d.value_at_quantile(0.5),
                    d.min(),
                    d.max(),
                    d.buckets().len(),
                );
            }
            Ok(())
        })
        .expect("mutated histograms are refused or bounded");
}
