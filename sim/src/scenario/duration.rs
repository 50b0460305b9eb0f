//! Durations in scenario files: strings with units ("300ms", "2s", "1m 30s"), parsed with
//! humantime and held as whole milliseconds, the unit of broker-core's clocks.

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeTuple, Serializer};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What every duration error says it expected.
pub const DURATION_EXPECTED: &str = "a number with a unit such as 300ms, 2s, 1m";

/// A non-negative span of time in whole milliseconds. Written `"2s"` in a scenario file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Millis(pub u64);

impl Millis {
    pub const ZERO: Millis = Millis(0);

    pub fn from_secs(secs: u64) -> Millis {
        Millis(secs.saturating_mul(1000))
    }

    pub fn as_ms(self) -> u64 {
        self.0
    }

    pub fn as_duration(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0)
    }
}

/// Parses `"2s"`, `"300ms"`, `"1m 30s"`, or `"0"`. Sub-millisecond remainders are refused
/// rather than rounded, so what runs is what was written.
pub fn parse_millis(text: &str) -> Result<Millis, String> {
    let trimmed = text.trim();
    let not_a_duration = || format!("{text:?} is not a duration (expected {DURATION_EXPECTED})");
    if trimmed.is_empty() || !trimmed.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(not_a_duration());
    }
    let duration = humantime::parse_duration(trimmed).map_err(|_| not_a_duration())?;
    if duration.subsec_nanos() % 1_000_000 != 0 {
        return Err(format!("{text:?} is not a whole number of milliseconds"));
    }
    u64::try_from(duration.as_millis())
        .map(Millis)
        .map_err(|_| format!("{text:?} is too long a duration"))
}

impl fmt::Display for Millis {
    /// Formats the way scenario files are written: `2s`, `300ms`, `1m 30s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0ms");
        }
        write!(f, "{}", humantime::format_duration(self.as_duration()))
    }
}

impl Serialize for Millis {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

struct MillisVisitor;

impl Visitor<'_> for MillisVisitor {
    type Value = Millis;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a duration string, {DURATION_EXPECTED}")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Millis, E> {
        parse_millis(text).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // `deserialize_any` so that a bare number gets "expected a duration string", not
        // ron's terse "Expected string".
        deserializer.deserialize_any(MillisVisitor)
    }
}

/// A signed span of time in milliseconds, for clock offsets: `"+300ms"`, `"-1s"`, `"300ms"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SignedMillis(pub i64);

impl SignedMillis {
    pub fn as_ms(self) -> i64 {
        self.0
    }

    pub fn magnitude(self) -> Millis {
        Millis(self.0.unsigned_abs())
    }
}

/// Parses an optional sign followed by a duration.
pub fn parse_signed_millis(text: &str) -> Result<SignedMillis, String> {
    let trimmed = text.trim();
    let (negative, rest) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    let not_an_offset = || {
        format!("{text:?} is not a signed duration (expected a sign, a number and a unit, such as +300ms or -1s)")
    };
    let magnitude = parse_millis(rest).map_err(|_| not_an_offset())?;
    let magnitude = i64::try_from(magnitude.0).map_err(|_| not_an_offset())?;
    Ok(SignedMillis(if negative { -magnitude } else { magnitude }))
}

impl fmt::Display for SignedMillis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { '-' } else { '+' };
        write!(f, "{sign}{}", self.magnitude())
    }
}

impl Serialize for SignedMillis {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

struct SignedMillisVisitor;

impl Visitor<'_> for SignedMillisVisitor {
    type Value = SignedMillis;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a signed duration string such as \"+300ms\" or \"-1s\"")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<SignedMillis, E> {
        parse_signed_millis(text).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for SignedMillis {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SignedMillisVisitor)
    }
}

/// A closed range of durations, written as a pair: `("300ms", "1s")`. `min <= max` is checked
/// by validation (so the error can name the field), not here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MillisRange {
    pub min: Millis,
    pub max: Millis,
}

impl MillisRange {
    pub const fn new(min_ms: u64, max_ms: u64) -> MillisRange {
        MillisRange {
            min: Millis(min_ms),
            max: Millis(max_ms),
        }
    }

    /// Parses the command-line form `300ms..1s` (used by `--set`).
    pub fn parse_cli(text: &str) -> Result<MillisRange, String> {
        let (min, max) = text.split_once("..").ok_or_else(|| {
            format!("{text:?} is not a range (expected min..max, e.g. 300ms..1s)")
        })?;
        Ok(MillisRange {
            min: parse_millis(min)?,
            max: parse_millis(max)?,
        })
    }
}

impl fmt::Display for MillisRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.min, self.max)
    }
}

impl Serialize for MillisRange {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut pair = serializer.serialize_tuple(2)?;
        pair.serialize_element(&self.min)?;
        pair.serialize_element(&self.max)?;
        pair.end()
    }
}

struct MillisRangeVisitor;

impl<'de> Visitor<'de> for MillisRangeVisitor {
    type Value = MillisRange;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a pair of durations (min, max), such as (\"300ms\", \"1s\")")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MillisRange, A::Error> {
        let min = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let max = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        Ok(MillisRange { min, max })
    }
}

impl<'de> Deserialize<'de> for MillisRange {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_tuple(2, MillisRangeVisitor)
    }
}

/// For optional duration fields written bare (`failover_client_p99_max: "10s"`, not
/// `Some("10s")`): use with `#[serde(default, deserialize_with = "...")]`.
pub(crate) fn deserialize_some_millis<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Millis>, D::Error> {
    Millis::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Durations are the most hand-typed values in a scenario: every accepted and refused form
    // is pinned here.
    #[test]
    fn parses_units() {
        assert_eq!(parse_millis("2s"), Ok(Millis(2000)));
        assert_eq!(parse_millis("300ms"), Ok(Millis(300)));
        assert_eq!(parse_millis("1m 30s"), Ok(Millis(90_000)));
        assert_eq!(parse_millis("1m30s"), Ok(Millis(90_000)));
        assert_eq!(parse_millis("2s 500ms"), Ok(Millis(2500)));
        assert_eq!(parse_millis("1h"), Ok(Millis(3_600_000)));
        assert_eq!(parse_millis("0"), Ok(Millis(0)));
        assert_eq!(parse_millis("0s"), Ok(Millis(0)));
        assert_eq!(parse_millis(" 5ms "), Ok(Millis(5)));
    }

    #[test]
    fn refuses_bad_durations() {
        for text in [
            "", "10x", "10", "s", "-1s", "+1s", "ms", "1 s x", "∞s", "1h2",
        ] {
            let error = parse_millis(text).expect_err(text);
            assert!(error.contains("is not a duration"), "{text}: {error}");
        }
        assert_eq!(parse_millis("2.5s"), Ok(Millis(2500)));
        let error = parse_millis("1.0005s").expect_err("sub-millisecond");
        assert!(error.contains("whole number of milliseconds"), "{error}");
        let error = parse_millis("1500us").expect_err("sub-millisecond");
        assert!(error.contains("whole number of milliseconds"), "{error}");
        assert!(parse_millis("99999999999999999999s").is_err());
        assert!(parse_millis("500000000000y").is_err());
    }

    #[test]
    fn signed_offsets() {
        assert_eq!(parse_signed_millis("+300ms"), Ok(SignedMillis(300)));
        assert_eq!(parse_signed_millis("-1s"), Ok(SignedMillis(-1000)));
        assert_eq!(parse_signed_millis("250ms"), Ok(SignedMillis(250)));
        assert!(parse_signed_millis("--1s").is_err());
        assert!(parse_signed_millis("+").is_err());
        assert!(parse_signed_millis("+-1s").is_err());
        assert_eq!(SignedMillis(-1500).to_string(), "-1s 500ms");
    }

    #[test]
    fn display_round_trips() {
        for ms in [0, 1, 300, 1000, 2500, 90_000, 3_600_000] {
            let text = Millis(ms).to_string();
            assert_eq!(parse_millis(&text), Ok(Millis(ms)), "{text}");
        }
    }

    #[test]
    fn cli_ranges() {
        assert_eq!(
            MillisRange::parse_cli("300ms..1s"),
            Ok(MillisRange::new(300, 1000))
        );
        assert!(MillisRange::parse_cli("300ms").is_err());
        assert!(MillisRange::parse_cli("300ms..x").is_err());
    }
}
