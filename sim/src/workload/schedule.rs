//! A producer's open-loop send schedule, pure: `send_rate_per_s` messages a second from the
//! end of the warmup, producers staggered so their sends interleave, each message meant for
//! the next queue in turn, until the fault phase ends or the workload stops.

use broker_core::broker::ClientId;

/// One message due: when, for which queue (an index into the workload's queues), its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduledSend {
    pub at_us: u64,
    pub slot: usize,
    /// `p<client>-<sequence>`.
    pub msg_id: String,
}

/// The sends of one producer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendSchedule {
    client: ClientId,
    interval_us: u64,
    phase_us: u64,
    warmup_us: u64,
    duration_us: u64,
    queues_total: usize,
    sequence: u64,
}

impl SendSchedule {
    /// Producer `client` of `producers`, sending `send_rate_per_s` to `queues_total` queues
    /// from `warmup_us` until `duration_us`.
    pub fn new(
        client: ClientId,
        producers: u32,
        send_rate_per_s: u32,
        queues_total: usize,
        warmup_us: u64,
        duration_us: u64,
    ) -> SendSchedule {
        let interval_us = 1_000_000 / u64::from(send_rate_per_s.max(1));
        // Producers start staggered so their sends interleave.
        let phase_us = interval_us * u64::from(client.0) / u64::from(producers.max(1));
        SendSchedule {
            client,
            interval_us,
            phase_us,
            warmup_us,
            duration_us,
            queues_total,
            sequence: 0,
        }
    }

    /// The next message, or None when it would be due at or after the end of the fault
    /// phase or the workload stopped.
    pub fn next(&mut self, workload_stopped: bool) -> Option<ScheduledSend> {
        let at_us = self.warmup_us + self.phase_us + self.sequence * self.interval_us;
        if at_us >= self.duration_us || workload_stopped {
            return None;
        }
        let send = ScheduledSend {
            at_us,
            slot: (self.sequence as usize + self.client.0 as usize) % self.queues_total,
            msg_id: format!("p{}-{}", self.client.0, self.sequence),
        };
        self.sequence += 1;
        Some(send)
    }
}
