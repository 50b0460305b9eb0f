//! A node's local clock over madsim's one global clock: an offset plus a drift in ppm.
//! The core is fed local time; timers it asks for are converted back to global time.

/// Parts per million: the unit of drift.
const PPM_ONE: i64 = 1_000_000;

/// `local(t) = anchor_local_us + (t - anchor_global_us) × (1e6 + drift_ppm) / 1e6`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeClock {
    anchor_global_us: u64,
    anchor_local_us: i64,
    drift_ppm: i64,
}

impl NodeClock {
    /// Local time at global time `global_us` (may be negative after a backward offset).
    pub fn local_us(&self, global_us: u64) -> i64 {
        assert!(
            global_us >= self.anchor_global_us,
            "invariant: global time never goes back"
        );
        let elapsed = i64::try_from(global_us - self.anchor_global_us)
            .expect("invariant: a run is shorter than 292,000 years");
        self.anchor_local_us + elapsed * (PPM_ONE + self.drift_ppm) / PPM_ONE
    }

    /// From now on, local time reads true time plus `offset_us`.
    pub fn set_offset(&mut self, global_us: u64, offset_us: i64) {
        self.anchor_local_us = global_us as i64 + offset_us;
        self.anchor_global_us = global_us;
    }

    /// A step change: from now on local time reads what it read a moment ago plus `delta_us`
    /// (drift unchanged). The adapter never lets the core see local time go back: after a
    /// backward jump the core's clock stands still until local time has caught up.
    pub fn jump(&mut self, global_us: u64, delta_us: i64) {
        self.anchor_local_us = self.local_us(global_us) + delta_us;
        self.anchor_global_us = global_us;
    }

    /// From now on, local time runs `drift_ppm` faster (negative: slower) than true time.
    pub fn set_drift(&mut self, global_us: u64, drift_ppm: i64) {
        assert!(
            drift_ppm.abs() < PPM_ONE,
            "invariant: drift is validated to stay within ±1e6 ppm"
        );
        self.anchor_local_us = self.local_us(global_us);
        self.anchor_global_us = global_us;
        self.drift_ppm = drift_ppm;
    }

    /// Back to true time: no offset, no drift (the heal phase does this).
    pub fn resync(&mut self, global_us: u64) {
        *self = NodeClock {
            anchor_global_us: global_us,
            anchor_local_us: global_us as i64,
            drift_ppm: 0,
        };
    }

    /// How much global time passes while local time advances by `local_delta_us` (rounded up).
    pub fn global_delay_us(&self, local_delta_us: u64) -> u64 {
        let rate = (PPM_ONE + self.drift_ppm) as u64;
        (local_delta_us * PPM_ONE as u64).div_ceil(rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A clock with no fault reads true time.
    #[test]
    fn default_clock_is_true_time() {
        let clock = NodeClock::default();
        assert_eq!(clock.local_us(5_000_000), 5_000_000);
        assert_eq!(clock.global_delay_us(1_000), 1_000);
    }

    // An offset shifts local time; drift then accumulates from the moment it is set.
    #[test]
    fn offset_and_drift_compose() {
        let mut clock = NodeClock::default();
        clock.set_offset(1_000_000, 300_000);
        assert_eq!(clock.local_us(2_000_000), 2_300_000);
        clock.set_drift(2_000_000, 100_000); // 10 % fast
        assert_eq!(clock.local_us(3_000_000), 2_300_000 + 1_100_000);
        // A timer 1.1 s ahead in local time fires 1 s later in global time.
        assert_eq!(clock.global_delay_us(1_100_000), 1_000_000);
        clock.resync(4_000_000);
        assert_eq!(clock.local_us(4_500_000), 4_500_000);
    }

    // A jump steps local time from where it is, keeping the drift; resync undoes it.
    #[test]
    fn jump_steps_from_the_current_reading() {
        let mut clock = NodeClock::default();
        clock.set_drift(0, 100_000);
        clock.jump(1_000_000, -5_000_000);
        assert_eq!(clock.local_us(1_000_000), 1_100_000 - 5_000_000);
        assert_eq!(clock.local_us(2_000_000), 1_100_000 - 5_000_000 + 1_100_000);
        clock.jump(2_000_000, 5_000_000);
        assert_eq!(clock.local_us(2_000_000), 2_200_000);
        clock.resync(3_000_000);
        assert_eq!(clock.local_us(3_000_000), 3_000_000);
    }

    // A slow clock makes local timers take longer in true time.
    #[test]
    fn slow_clock_stretches_timers() {
        let mut clock = NodeClock::default();
        clock.set_drift(0, -500_000); // half speed
        assert_eq!(clock.local_us(2_000_000), 1_000_000);
        assert_eq!(clock.global_delay_us(1_000_000), 2_000_000);
    }
}
