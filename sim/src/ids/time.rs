//! Simulated time (an instant since the start of a run, or a span of it) in integer
//! microseconds. Serialised as the bare number, so report files keep their `*_us` fields.

use serde::{Deserialize, Serialize};
use std::ops::{Add, AddAssign, Sub};
use std::time::Duration;

/// An instant of simulated time since the run started, or a span of simulated time, in µs.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct SimTime(u64);

impl SimTime {
    pub const ZERO: SimTime = SimTime(0);

    pub const fn from_us(us: u64) -> SimTime {
        SimTime(us)
    }

    pub const fn from_ms(ms: u64) -> SimTime {
        SimTime(ms * 1_000)
    }

    pub const fn from_secs(secs: u64) -> SimTime {
        SimTime(secs * 1_000_000)
    }

    pub const fn as_us(self) -> u64 {
        self.0
    }

    /// Whole milliseconds (rounded down).
    pub const fn as_ms(self) -> u64 {
        self.0 / 1_000
    }

    pub const fn as_duration(self) -> Duration {
        Duration::from_micros(self.0)
    }

    /// `self - earlier`, or zero when `earlier` is later.
    pub const fn saturating_sub(self, earlier: SimTime) -> SimTime {
        SimTime(self.0.saturating_sub(earlier.0))
    }

    /// The span from `earlier` to `self`; `None` when `earlier` is later.
    pub fn checked_since(self, earlier: SimTime) -> Option<SimTime> {
        self.0.checked_sub(earlier.0).map(SimTime)
    }
}

impl Add for SimTime {
    type Output = SimTime;
    fn add(self, span: SimTime) -> SimTime {
        SimTime(
            self.0
                .checked_add(span.0)
                .expect("invariant: simulated time stays far below u64::MAX µs"),
        )
    }
}

impl AddAssign for SimTime {
    fn add_assign(&mut self, span: SimTime) {
        *self = *self + span;
    }
}

impl Sub for SimTime {
    type Output = SimTime;
    fn sub(self, earlier: SimTime) -> SimTime {
        SimTime(
            self.0
                .checked_sub(earlier.0)
                .expect("invariant: a span ends after it starts (use saturating_sub otherwise)"),
        )
    }
}

impl From<Duration> for SimTime {
    fn from(duration: Duration) -> SimTime {
        SimTime(
            u64::try_from(duration.as_micros()).expect("invariant: a run lasts < 584,000 years"),
        )
    }
}

impl std::fmt::Display for SimTime {
    /// Milliseconds with up to three decimals: `1500.25ms`, `12ms`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (ms, us) = (self.0 / 1_000, self.0 % 1_000);
        if us == 0 {
            write!(f, "{ms}ms")
        } else {
            let fraction = format!("{us:03}");
            write!(f, "{ms}.{}ms", fraction.trim_end_matches('0'))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Units convert exactly and arithmetic refuses to go below zero unless asked to saturate.
    #[test]
    fn conversions_and_arithmetic() {
        assert_eq!(SimTime::from_ms(1_500).as_us(), 1_500_000);
        assert_eq!(SimTime::from_secs(2), SimTime::from_ms(2_000));
        assert_eq!(SimTime::from_us(1_999).as_ms(), 1);
        assert_eq!(
            SimTime::from_ms(3) + SimTime::from_us(5),
            SimTime::from_us(3_005)
        );
        assert_eq!(
            SimTime::from_ms(1).saturating_sub(SimTime::from_ms(2)),
            SimTime::ZERO
        );
        assert_eq!(SimTime::from_ms(1).checked_since(SimTime::from_ms(2)), None);
        assert_eq!(SimTime::from(Duration::from_millis(7)), SimTime::from_ms(7));
        assert_eq!(SimTime::from_us(1_500_250).to_string(), "1500.25ms");
        assert_eq!(SimTime::from_ms(12).to_string(), "12ms");
    }

    #[test]
    #[should_panic(expected = "a span ends after it starts")]
    fn negative_span_panics() {
        let _ = SimTime::from_ms(1) - SimTime::from_ms(2);
    }

    /// Report files keep their integer `*_us` fields.
    #[test]
    fn serialises_as_bare_microseconds() {
        let text = serde_json::to_string(&SimTime::from_ms(2)).expect("serialises");
        assert_eq!(text, "2000");
    }
}
