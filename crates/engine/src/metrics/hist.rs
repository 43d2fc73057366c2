//! [`Latency`]: the HDR histogram every step keeps, in µs. It is the unit of exactness of the
//! metrics pipeline: task accumulators, tick deltas, process totals and worker snapshots all hold
//! `Latency` values and combine them with [`Latency::merge`], which adds buckets — so a
//! percentile computed on the master equals the one a single process would have computed.
//!
//! Invariants:
//! - 3 significant digits, 1 µs resolution; values above [`MAX_US`] (1 hour) are clamped to it,
//!   never an error or a panic. Memory is therefore bounded (≈190 KiB at worst) for any run.
//! - An empty `Latency` allocates nothing; the histogram appears at the first record and grows
//!   (auto-resize) only up to the largest value seen, so many steps × many shards stay cheap.
//! - Serde form: hdrhistogram's V2 encoding (uncompressed), as base64 text in human-readable
//!   formats (JSON) and raw bytes otherwise; the empty histogram is the empty string/bytes.
//!   Decoding rejects headers this module would never write (another cookie or resolution, a
//!   range above [`MAX_ACCEPTED_HIGH`], a payload length other than the bytes present), so a peer
//!   cannot make us allocate an arbitrary histogram: a decoded histogram's counts are bounded by
//!   [`MAX_DECODED_COUNTS`] whatever the input.

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer as HdrDeserializer, Serializer as _, V2Serializer};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Largest recordable value: one hour in µs. Larger values are clamped to it.
pub const MAX_US: u64 = 3_600_000_000;

const SIGFIG: u8 = 3;

/// The V2 (uncompressed) cookie hdrhistogram writes, and the header layout that follows it.
const V2_COOKIE: u32 = 0x1c84_9313;
const V2_HEADER_LEN: usize = 40;
/// Headers claiming a larger highest trackable value are rejected on decode (our own histograms
/// stop growing just above `MAX_US`, well under 2^33).
const MAX_ACCEPTED_HIGH: u64 = 1 << 36;
/// The most counts (buckets) a decoded histogram can hold: the size of a 3-digit histogram
/// tracking up to [`MAX_ACCEPTED_HIGH`] (≈ 27k counts, ≈ 216 KiB).
pub const MAX_DECODED_COUNTS: usize = 28 * 1024;

/// A lazily allocated µs latency histogram. See the module docs.
#[derive(Clone, Default)]
pub struct Latency {
    hist: Option<Box<Histogram<u64>>>,
}

impl Latency {
    /// An empty histogram (no allocation).
    pub fn new() -> Self {
        Self::default()
    }

    fn hist_mut(&mut self) -> &mut Histogram<u64> {
        self.hist.get_or_insert_with(|| {
            // `Histogram::new` is auto-resizing with a lowest discernible value of 1 and only
            // fails for sigfig > 5.
            Box::new(Histogram::new(SIGFIG).expect("3 significant digits is a valid histogram"))
        })
    }

    /// Records one value in µs, clamping it to [`MAX_US`].
    pub fn record(&mut self, us: u64) {
        self.record_n(us, 1);
    }

    /// Records `count` occurrences of a value in µs, clamping it to [`MAX_US`].
    pub fn record_n(&mut self, us: u64, count: u64) {
        if count == 0 {
            return;
        }
        let hist = self.hist_mut();
        let us = us.min(MAX_US);
        if hist.record_n(us, count).is_err() {
            // Only reachable if resizing failed (usize too small): keep the sample at the top
            // of the current range rather than losing it.
            hist.saturating_record_n(us, count);
        }
    }

    /// Adds every bucket of `other` to `self` (exact: merging then querying equals recording
    /// everything into one histogram).
    pub fn merge(&mut self, other: &Latency) {
        let Some(src) = other.hist.as_deref() else {
            return;
        };
        if src.is_empty() {
            return;
        }
        if self.hist.is_none() {
            self.hist = Some(Box::new(src.clone()));
            return;
        }
        let dst = self.hist_mut();
        if dst.add(src).is_err() {
            // Unreachable on 64-bit targets (auto-resize always succeeds up to our header
            // bound); fall back to re-recording bucket by bucket, clamped.
            for v in src.iter_recorded() {
                dst.saturating_record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
    }

    /// Number of recorded values.
    pub fn len(&self) -> u64 {
        self.hist.as_deref().map_or(0, Histogram::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counts (buckets) allocated: the memory this histogram holds is 8 bytes per count.
    pub fn allocated_counts(&self) -> usize {
        self.hist.as_deref().map_or(0, Histogram::distinct_values)
    }

    /// hdrhistogram's V2 (uncompressed) bytes, as the serde form carries them (empty when
    /// nothing was recorded).
    pub fn encode_v2(&self) -> Result<Vec<u8>, String> {
        self.to_v2_bytes()
    }

    /// Decodes hdrhistogram's V2 (uncompressed) bytes, as the serde form carries them, with the
    /// header checks of the module docs (for peers' data and fuzzing).
    pub fn decode_v2(bytes: &[u8]) -> Result<Self, String> {
        Self::from_v2_bytes(bytes)
    }

    /// Value at quantile `q` in `0.0..=1.0` (upper bound of its bucket, within 0.1 %); 0 when
    /// empty.
    pub fn value_at_quantile(&self, q: f64) -> u64 {
        match self.hist.as_deref() {
            Some(h) if !h.is_empty() => h.value_at_quantile(q),
            _ => 0,
        }
    }

    /// Smallest recorded value (lower bound of its bucket); 0 when empty.
    pub fn min(&self) -> u64 {
        match self.hist.as_deref() {
            Some(h) if !h.is_empty() => h.min(),
            _ => 0,
        }
    }

    /// Largest recorded value (upper bound of its bucket, at most [`MAX_US`] for locally
    /// recorded data); 0 when empty.
    pub fn max(&self) -> u64 {
        match self.hist.as_deref() {
            Some(h) if !h.is_empty() => h.max(),
            _ => 0,
        }
    }

    /// Mean in µs (from bucket midpoints); 0.0 when empty.
    pub fn mean(&self) -> f64 {
        self.hist.as_deref().map_or(0.0, Histogram::mean)
    }

    /// Standard deviation in µs (from bucket midpoints); 0.0 when empty.
    pub fn stdev(&self) -> f64 {
        self.hist.as_deref().map_or(0.0, Histogram::stdev)
    }

    /// Recorded buckets as `(highest value in bucket, count)`, ascending. Sinks use this to
    /// re-bucket (e.g. Prometheus `le` buckets); tests use it to compare histograms exactly.
    pub fn buckets(&self) -> Vec<(u64, u64)> {
        self.hist.as_deref().map_or_else(Vec::new, |h| {
            h.iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect()
        })
    }

    /// Number of recorded values ≤ `us`, at bucket resolution (for cumulative `le` buckets).
    pub fn count_le(&self, us: u64) -> u64 {
        match self.hist.as_deref() {
            Some(h) if !h.is_empty() => h.count_between(0, us),
            _ => 0,
        }
    }

    fn to_v2_bytes(&self) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        if let Some(h) = self.hist.as_deref().filter(|h| !h.is_empty()) {
            V2Serializer::new()
                .serialize(h, &mut out)
                .map_err(|e| e.to_string())?;
        }
        Ok(out)
    }

    fn from_v2_bytes(bytes: &[u8]) -> Result<Self, String> {
        if bytes.is_empty() {
            return Ok(Latency::default());
        }
        check_v2_header(bytes)?;
        let mut hist: Histogram<u64> = HdrDeserializer::new()
            .deserialize(&mut &bytes[..])
            .map_err(|e| format!("invalid histogram: {e:?}"))?;
        hist.auto(true);
        Ok(Latency {
            hist: Some(Box::new(hist)),
        })
    }
}

/// Rejects anything but an uncompressed V2 histogram with our resolution and a sane range,
/// before hdrhistogram allocates the counts array the header asks for.
fn check_v2_header(bytes: &[u8]) -> Result<(), String> {
    let header = bytes
        .get(..V2_HEADER_LEN)
        .ok_or("histogram shorter than its header")?;
    let u32_at = |i: usize| {
        let mut b = [0u8; 4];
        b.copy_from_slice(&header[i..i + 4]);
        u32::from_be_bytes(b)
    };
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&header[i..i + 8]);
        u64::from_be_bytes(b)
    };
    if u32_at(0) != V2_COOKIE {
        return Err("not an uncompressed V2 histogram".into());
    }
    // hdrhistogram sizes its payload buffer from this field before reading: a header
    // claiming more than the bytes that follow must not reach it (a 40-byte header could
    // otherwise ask for 4 GiB).
    let payload = u32_at(4) as usize;
    if payload != bytes.len() - V2_HEADER_LEN {
        return Err(format!(
            "histogram payload length {payload} does not match the {} bytes that follow its header",
            bytes.len() - V2_HEADER_LEN
        ));
    }
    check_v2_payload(&bytes[V2_HEADER_LEN..])?;
    let (sigfig, low, high) = (u32_at(12), u64_at(16), u64_at(24));
    if sigfig != u32::from(SIGFIG) || low != 1 || !(2..=MAX_ACCEPTED_HIGH).contains(&high) {
        return Err(format!(
            "unexpected histogram shape (sigfig {sigfig}, low {low}, high {high})"
        ));
    }
    Ok(())
}

/// Largest total count accepted in a decoded histogram (far above any run, far below
/// where sums of counts could overflow).
const MAX_DECODED_TOTAL: u64 = 1 << 62;

/// Walks the V2 payload (zig-zag LEB128 numbers: a count, or minus a run of zeros) and
/// rejects what hdrhistogram's decoder would overflow on (`-i64::MIN`, a total past
/// [`MAX_DECODED_TOTAL`]) or a number cut short.
fn check_v2_payload(payload: &[u8]) -> Result<(), String> {
    let mut at = 0;
    let mut total: u64 = 0;
    while at < payload.len() {
        // LEB128-64b9B: up to 8 bytes of 7 bits, then a 9th byte of 8 bits.
        let mut value: u64 = 0;
        let mut i = 0;
        loop {
            let b = *payload
                .get(at + i)
                .ok_or("histogram payload ends inside a number")?;
            if i == 8 {
                value |= u64::from(b) << 56;
                break;
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                break;
            }
            i += 1;
        }
        at += i + 1;
        let n = ((value >> 1) as i64) ^ -((value & 1) as i64);
        if n == i64::MIN {
            return Err("histogram payload holds an impossible run of zeros".into());
        }
        if n > 0 {
            total = total
                .checked_add(n as u64)
                .filter(|&t| t <= MAX_DECODED_TOTAL)
                .ok_or("histogram counts are impossibly large")?;
        }
    }
    Ok(())
}

impl PartialEq for Latency {
    /// Equal when the recorded buckets are equal (the allocated range may differ).
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.buckets() == other.buckets()
    }
}

impl fmt::Debug for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Latency")
            .field("len", &self.len())
            .field("min", &self.min())
            .field("p50", &self.value_at_quantile(0.5))
            .field("max", &self.max())
            .finish()
    }
}

impl Serialize for Latency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let bytes = self.to_v2_bytes().map_err(serde::ser::Error::custom)?;
        if serializer.is_human_readable() {
            serializer.serialize_str(&base64::encode(&bytes))
        } else {
            serializer.serialize_bytes(&bytes)
        }
    }
}

impl<'de> Deserialize<'de> for Latency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Latency;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a V2 histogram as base64 text or bytes")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Latency, E> {
                let bytes = base64::decode(s).map_err(E::custom)?;
                Latency::from_v2_bytes(&bytes).map_err(E::custom)
            }
            fn visit_bytes<E: de::Error>(self, b: &[u8]) -> Result<Latency, E> {
                Latency::from_v2_bytes(b).map_err(E::custom)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Latency, A::Error> {
                let mut bytes = Vec::new();
                while let Some(b) = seq.next_element::<u8>()? {
                    bytes.push(b);
                }
                Latency::from_v2_bytes(&bytes).map_err(de::Error::custom)
            }
        }
        if deserializer.is_human_readable() {
            deserializer.deserialize_str(V)
        } else {
            deserializer.deserialize_bytes(V)
        }
    }
}

/// Standard base64 (RFC 4648, padded). Small enough to keep here rather than add a dependency
/// for one field.
mod base64 {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    fn sextet(c: u8) -> Result<u32, String> {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(format!("invalid base64 character {:?}", char::from(c))),
        };
        Ok(u32::from(v))
    }

    pub fn decode(text: &str) -> Result<Vec<u8>, String> {
        let bytes = text.as_bytes();
        if bytes.len() % 4 != 0 {
            return Err("base64 length is not a multiple of 4".into());
        }
        let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
        let groups = bytes.len() / 4;
        for (g, chunk) in bytes.chunks(4).enumerate() {
            let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
            if pad > 2 || (pad > 0 && g + 1 != groups) {
                return Err("misplaced base64 padding".into());
            }
            let mut n = 0u32;
            for &c in &chunk[..4 - pad] {
                n = (n << 6) | sextet(c)?;
            }
            n <<= 6 * pad as u32;
            let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            out.extend_from_slice(&decoded[..3 - pad]);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random sequence (xorshift) for reproducible distributions.
    fn xorshift(seed: u64) -> impl Iterator<Item = u64> {
        let mut x = seed;
        std::iter::repeat_with(move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        })
    }

    #[test]
    fn empty_latency_allocates_nothing_and_reports_zeroes() {
        let l = Latency::new();
        assert!(l.hist.is_none());
        assert!(l.is_empty());
        assert_eq!(
            (l.min(), l.max(), l.value_at_quantile(0.99), l.mean()),
            (0, 0, 0, 0.0)
        );
        let mut m = Latency::new();
        m.merge(&l);
        assert!(m.hist.is_none());
    }

    #[test]
    fn values_above_one_hour_are_clamped_not_rejected() {
        let mut l = Latency::new();
        l.record(u64::MAX);
        l.record(MAX_US * 10);
        l.record(5);
        assert_eq!(l.len(), 3);
        assert!(l.max() >= MAX_US && l.max() <= MAX_US + MAX_US / 1000);
        assert_eq!(l.value_at_quantile(1.0), l.max());
        assert_eq!(l.min(), 5);
    }

    #[test]
    fn zero_is_recordable() {
        let mut l = Latency::new();
        l.record(0);
        l.record(0);
        assert_eq!((l.len(), l.min(), l.max()), (2, 0, 0));
    }

    #[test]
    fn merging_two_histograms_equals_recording_into_one() {
        let (mut a, mut b, mut all) = (Latency::new(), Latency::new(), Latency::new());
        for (i, v) in xorshift(7).take(20_000).enumerate() {
            let us = v % 5_000_000;
            if i % 3 == 0 { &mut a } else { &mut b }.record(us);
            all.record(us);
        }
        let mut merged = a.clone();
        merged.merge(&b);
        assert_eq!(merged.buckets(), all.buckets());
        assert_eq!(merged, all);
        for q in [0.0, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            assert_eq!(
                merged.value_at_quantile(q),
                all.value_at_quantile(q),
                "q={q}"
            );
        }
        assert_eq!((merged.min(), merged.max()), (all.min(), all.max()));
    }

    #[test]
    fn merge_into_histogram_with_smaller_range_grows_it() {
        let (mut small, mut big) = (Latency::new(), Latency::new());
        small.record(3);
        big.record(2_000_000_000);
        small.merge(&big);
        assert_eq!(small.len(), 2);
        assert_eq!(small.max(), big.max());
        assert_eq!(small.min(), 3);
    }

    fn assert_quantiles_within_0_1_percent(mut values: Vec<u64>) {
        let mut l = Latency::new();
        for &v in &values {
            l.record(v);
        }
        values.sort_unstable();
        let n = values.len();
        for q in [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999] {
            let rank = ((q * n as f64).ceil() as usize).max(1);
            let exact = values[rank - 1] as f64;
            let got = l.value_at_quantile(q) as f64;
            let rel = (got - exact).abs() / exact;
            assert!(rel <= 0.001, "q={q}: exact {exact}, got {got}, rel {rel}");
        }
    }

    #[test]
    fn percentiles_are_within_0_1_percent_for_a_uniform_distribution() {
        assert_quantiles_within_0_1_percent((1_000..=1_000_000).step_by(7).collect());
    }

    #[test]
    fn percentiles_are_within_0_1_percent_for_a_long_tailed_distribution() {
        // Exponential with mean 50 ms, from a deterministic uniform source.
        let values = xorshift(42)
            .take(100_000)
            .map(|x| {
                let u = (x >> 11) as f64 / (1u64 << 53) as f64;
                (-(1.0 - u).ln() * 50_000.0) as u64 + 1_000
            })
            .collect();
        assert_quantiles_within_0_1_percent(values);
    }

    #[test]
    fn serde_round_trip_preserves_buckets_in_json_and_bytes() {
        let mut l = Latency::new();
        for v in xorshift(3).take(5_000) {
            l.record(v % 10_000_000);
        }
        let json = serde_json::to_string(&l).expect("serialize");
        assert!(json.starts_with('"'), "compact base64 string: {json:.40}");
        let back: Latency = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back.buckets(), l.buckets());
        assert_eq!(back.value_at_quantile(0.99), l.value_at_quantile(0.99));

        // After a round trip the histogram still grows and merges.
        let mut grown = back.clone();
        grown.record(MAX_US);
        assert_eq!(grown.len(), l.len() + 1);
        assert!(grown.max() >= MAX_US);

        let empty: Latency = serde_json::from_str("\"\"").expect("empty");
        assert!(empty.is_empty());
        assert_eq!(serde_json::to_string(&Latency::new()).expect("ser"), "\"\"");
    }

    #[test]
    fn decoding_rejects_foreign_or_oversized_histograms() {
        assert!(serde_json::from_str::<Latency>("\"AAAA\"").is_err());
        assert!(serde_json::from_str::<Latency>("\"not base64!\"").is_err());
        let mut l = Latency::new();
        l.record(10);
        let mut bytes = l.to_v2_bytes().expect("v2");
        bytes[24..32].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(Latency::from_v2_bytes(&bytes).is_err());
        let mut bytes = l.to_v2_bytes().expect("v2");
        bytes[12..16].copy_from_slice(&5u32.to_be_bytes());
        assert!(Latency::from_v2_bytes(&bytes).is_err());
    }

    #[test]
    fn a_header_claiming_a_huge_payload_is_refused_before_allocating() {
        let mut l = Latency::new();
        l.record(10);
        let good = l.to_v2_bytes().expect("v2");
        for claim in [1u32 << 30, u32::MAX, good.len() as u32] {
            let mut bytes = good.clone();
            bytes[4..8].copy_from_slice(&claim.to_be_bytes());
            let err = Latency::from_v2_bytes(&bytes).expect_err("refused");
            assert!(err.contains("payload length"), "{err}");
        }
        // A bare 40-byte header claiming 1 GiB.
        let mut header = good[..V2_HEADER_LEN].to_vec();
        header[4..8].copy_from_slice(&(1u32 << 30).to_be_bytes());
        assert!(Latency::from_v2_bytes(&header).is_err());
    }

    #[test]
    fn payload_numbers_that_would_overflow_the_decoder_are_refused() {
        let mut l = Latency::new();
        l.record(10);
        let good = l.to_v2_bytes().expect("v2");
        let with_payload = |payload: &[u8]| {
            let mut b = good[..V2_HEADER_LEN].to_vec();
            b[4..8].copy_from_slice(&(payload.len() as u32).to_be_bytes());
            b.extend_from_slice(payload);
            b
        };
        // zig-zag of u64::MAX is i64::MIN: negating it overflows.
        assert!(Latency::from_v2_bytes(&with_payload(&[0xff; 9])).is_err());
        // A number cut short.
        assert!(Latency::from_v2_bytes(&with_payload(&[0x80])).is_err());
        // Two counts summing past the bound.
        let big = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
        let mut twice = big.to_vec();
        twice.extend_from_slice(&big);
        assert!(Latency::from_v2_bytes(&with_payload(&twice)).is_err());
        // The real payload passes the check.
        assert!(check_v2_payload(&good[V2_HEADER_LEN..]).is_ok());
    }

    #[test]
    fn the_widest_accepted_header_stays_within_the_decoded_bound() {
        let mut l = Latency::new();
        l.record(10);
        let mut bytes = l.to_v2_bytes().expect("v2");
        bytes[24..32].copy_from_slice(&MAX_ACCEPTED_HIGH.to_be_bytes());
        let wide = Latency::from_v2_bytes(&bytes).expect("accepted");
        assert_eq!(wide.len(), 1);
        assert!(wide.allocated_counts() <= MAX_DECODED_COUNTS);
        assert!(wide.allocated_counts() > MAX_DECODED_COUNTS / 2);
        let mut full = Latency::new();
        full.record(MAX_US);
        assert!(full.allocated_counts() <= MAX_DECODED_COUNTS);
    }

    #[test]
    fn base64_round_trips_every_length() {
        let data: Vec<u8> = (0..=255u8).collect();
        for len in 0..20 {
            let enc = base64::encode(&data[..len]);
            assert_eq!(base64::decode(&enc).expect("decode"), &data[..len]);
        }
        assert_eq!(base64::encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64::encode(b"fo"), "Zm8=");
        assert!(base64::decode("Zm=8").is_err());
    }

    #[test]
    fn count_le_counts_cumulatively() {
        let mut l = Latency::new();
        for v in [100, 200, 300, 5_000] {
            l.record(v);
        }
        assert_eq!(l.count_le(99), 0);
        assert_eq!(l.count_le(300), 3);
        assert_eq!(l.count_le(MAX_US), 4);
    }
}
