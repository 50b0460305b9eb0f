//! One message of a producer, as a pure machine: its attempts, each a history operation.
//!
//! A message is sent in up to `SEND_ATTEMPTS_MAX` attempts. Each attempt is one history
//! operation on one queue, with its own body (`p3-17`, then `p3-17#1`, `p3-17#2`) and its own
//! `send_timeout`, retrying within its group after definite refusals until then. With more
//! than one group, a message whose attempt was not acknowledged is sent again on a queue of
//! another group, and a group whose send timed out is avoided for `group_avoid_us` (RocketMQ's
//! `retryTimesWhenSendFailed` and `sendLatencyFaultEnable`). With one group an attempt is the
//! whole message. No new attempt starts once the workload stopped (the run collects the
//! history one send timeout after that).

use super::attempt_body;
use super::client::{At, ClientMachine, ClientState, Command, Event, Refusal};
use crate::history::{OpInput, OpOutcome, Operation};
use crate::ids::QueueId;
use broker_core::broker::{ClientRequest, ClientResponse};
use broker_core::NodeId;

/// Attempts per message (RocketMQ: `retryTimesWhenSendFailed` 2, plus the first).
pub const SEND_ATTEMPTS_MAX: u32 = 3;

/// One message: its attempts, until one is acknowledged, the attempts run out, or (with one
/// group) after the first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageSend {
    msg_id: String,
    /// The queue (an index into the workload's queues) of the current attempt.
    slot: usize,
    attempt: u32,
    current: Option<Attempt>,
}

/// The attempt in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Attempt {
    queue: QueueId,
    body: String,
    invoke_us: u64,
    deadline_us: u64,
    phase: Phase,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// A request to `target` is in flight since `asked_us`.
    Asked { target: NodeId, asked_us: u64 },
    /// Backing off; after a refusal (not after finding no master) the deadline is checked
    /// before the next request.
    BackingOff { check_deadline: bool },
}

impl MessageSend {
    /// Message `msg_id` (`p3-17`), meant for the queue at `slot` (the first writable queue from
    /// there is used).
    pub fn new(slot: usize, msg_id: String) -> MessageSend {
        MessageSend {
            msg_id,
            slot,
            attempt: 0,
            current: None,
        }
    }

    fn begin_attempt(&mut self, at: At, client: &ClientState, commands: &mut Vec<Command>) {
        let queue = client.queue(self.slot);
        let deadline_us = at.now_us + client.workload().send_timeout_us;
        self.current = Some(Attempt {
            queue,
            body: attempt_body(&self.msg_id, self.attempt),
            invoke_us: at.now_us,
            deadline_us,
            // `ask` sets the phase.
            phase: Phase::BackingOff {
                check_deadline: false,
            },
        });
        self.ask(at, client, commands);
    }

    fn attempt(&mut self) -> &mut Attempt {
        self.current
            .as_mut()
            .expect("invariant: an event comes only while an attempt is in progress")
    }

    /// Sends to the group's target, or (no master in the route) backs off.
    fn ask(&mut self, at: At, client: &ClientState, commands: &mut Vec<Command>) {
        let attempt = self.attempt();
        let Some(target) = client.target(attempt.queue.group, at.now_us, commands) else {
            return self.back_off(at, false, client, commands);
        };
        attempt.phase = Phase::Asked {
            target,
            asked_us: at.now_us,
        };
        commands.push(Command::Request {
            to: target,
            request: ClientRequest::Send {
                queue: attempt.queue.queue.clone(),
                msg_id: attempt.body.clone(),
            },
            deadline_us: attempt.deadline_us,
        });
    }

    /// Sleeps the retry backoff; the attempt fails when that would pass its deadline.
    fn back_off(
        &mut self,
        at: At,
        check_deadline: bool,
        client: &ClientState,
        commands: &mut Vec<Command>,
    ) {
        let backoff_us = client.workload().retry_backoff_us;
        let attempt = self.attempt();
        if at.now_us + backoff_us >= attempt.deadline_us {
            return self.finish(OpOutcome::Fail, at, client, commands);
        }
        attempt.phase = Phase::BackingOff { check_deadline };
        commands.push(Command::Sleep { us: backoff_us });
    }

    /// Asks again at once, unless the deadline has come.
    fn ask_again(&mut self, at: At, client: &ClientState, commands: &mut Vec<Command>) {
        if at.now_us >= self.attempt().deadline_us {
            return self.finish(OpOutcome::Fail, at, client, commands);
        }
        self.ask(at, client, commands);
    }

    /// Records the attempt; then the next attempt on another group's queue, or the end.
    fn finish(
        &mut self,
        outcome: OpOutcome,
        at: At,
        client: &ClientState,
        commands: &mut Vec<Command>,
    ) {
        let attempt = self
            .current
            .take()
            .expect("invariant: only an attempt in progress finishes");
        let acknowledged = matches!(outcome, OpOutcome::Sent { .. });
        commands.push(Command::Record(Operation {
            client: client.config().client.0,
            input: OpInput::send(&attempt.queue, attempt.body),
            invoke_us: attempt.invoke_us,
            complete_us: at.now_us,
            outcome,
        }));
        self.attempt += 1;
        if acknowledged
            || client.config().groups == 1
            || at.stopped
            || self.attempt == SEND_ATTEMPTS_MAX
        {
            commands.push(Command::Done);
            return;
        }
        self.slot = client.retry_slot(self.slot, attempt.queue.group, at.now_us);
        self.begin_attempt(at, client, commands);
    }

    /// The answer to the request in flight (None: none by the deadline).
    fn answered(
        &mut self,
        response: Option<ClientResponse>,
        at: At,
        client: &mut ClientState,
        commands: &mut Vec<Command>,
    ) {
        let attempt = self.attempt();
        let Phase::Asked { target, asked_us } = attempt.phase else {
            panic!("invariant: an answer comes only while a request is in flight");
        };
        let group = attempt.queue.group;
        let Some(response) = response else {
            // Only a replica that sat on a request for long is suspect, not one whose answer
            // the op's deadline merely cut short.
            let waited_us = at.now_us - asked_us;
            if waited_us * 2 >= client.workload().send_timeout_us {
                client.suspect(target, at.now_us);
                client.avoid_group(group, at.now_us);
            }
            return self.finish(OpOutcome::Unknown, at, client, commands);
        };
        match response {
            ClientResponse::SendOk { queue_offset, .. } => {
                client.believe_leader(group, target);
                let outcome = OpOutcome::Sent {
                    offset: queue_offset,
                };
                self.finish(outcome, at, client, commands)
            }
            ClientResponse::Timeout | ClientResponse::LeadershipLost => {
                self.finish(OpOutcome::Unknown, at, client, commands)
            }
            ClientResponse::NotLeader { leader_hint } => {
                match client.on_not_leader(group, target, leader_hint, at.now_us) {
                    Refusal::FetchRoutes(reason) => {
                        commands.push(Command::FetchRoutes(reason));
                        self.back_off(at, true, client, commands)
                    }
                    Refusal::FollowedHint => self.ask_again(at, client, commands),
                    Refusal::Rotated => self.back_off(at, true, client, commands),
                }
            }
            ClientResponse::Busy => self.back_off(at, true, client, commands),
            ClientResponse::Pulled { .. }
            | ClientResponse::OffsetCommitted
            | ClientResponse::Offset { .. } => {
                panic!("invariant: a broker answers a send with a send response")
            }
        }
    }
}

impl ClientMachine for MessageSend {
    fn step(
        &mut self,
        event: Event,
        now_us: u64,
        stopped: bool,
        client: &mut ClientState,
    ) -> Vec<Command> {
        let at = At { now_us, stopped };
        let mut commands = Vec::new();
        match event {
            Event::Start => {
                assert!(
                    self.current.is_none() && self.attempt == 0,
                    "invariant: a message starts once"
                );
                self.slot = client.writable_slot(self.slot, now_us);
                self.begin_attempt(at, client, &mut commands);
            }
            Event::Answer(response) => self.answered(Some(response), at, client, &mut commands),
            Event::NoAnswer => self.answered(None, at, client, &mut commands),
            Event::Woke => {
                let Phase::BackingOff { check_deadline } = self.attempt().phase else {
                    panic!("invariant: a wake-up comes only while backing off");
                };
                if check_deadline {
                    self.ask_again(at, client, &mut commands);
                } else {
                    self.ask(at, client, &mut commands);
                }
            }
        }
        commands
    }
}
