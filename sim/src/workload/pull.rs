//! One consumer's loop over one queue, as a pure machine: ask the group's committed offset,
//! then pull from there, record every pull, commit the offset every `COMMIT_EVERY_PULLS` pulls.
//!
//! Offset queries are retried (after `retry_backoff_us`) until one is answered or the
//! consumers stop. A pull that returns nothing is retried after `consumer_poll_us`, one that
//! failed after `retry_backoff_us`, one that brought messages at once. Commits are not retried
//! (the next commit carries a later offset). A timeout suspects the replica and moves on to
//! the next one; a NOT_LEADER follows the hint as a send does (with name servers: asks for a
//! route fetch instead). With `unsafe_read` pulls go to every replica of the group in turn.
//! While the route names no master for the group the consumer waits `retry_backoff_us` and
//! looks again, recording nothing.

use super::client::{At, ClientMachine, ClientState, Command, Event, Refusal};
use crate::history::{OpInput, OpOutcome, Operation};
use crate::ids::QueueId;
use broker_core::broker::{ClientRequest, ClientResponse, QueueKey};
use broker_core::NodeId;

/// The one consumer group every consumer belongs to.
pub const CONSUMER_GROUP: &str = "hasim-consumers";
/// Messages asked for per pull (RocketMQ's default `pullBatchSize`).
pub const PULL_MAX: u32 = 32;
/// A consumer commits its offset after this many pulls.
pub const COMMIT_EVERY_PULLS: u32 = 4;

/// The queues consumer number `index` of `consumers` takes: every `consumers`-th one from
/// position `index`.
pub fn assigned_queues(queues: &[(u32, QueueKey)], consumers: u32, index: u32) -> Vec<QueueId> {
    let consumers = consumers.max(1);
    queues
        .iter()
        .enumerate()
        .filter(|(position, _)| *position as u32 % consumers == index)
        .map(|(_, (group, queue))| QueueId::new(*group, queue.clone()))
        .collect()
}

/// One consumer of one queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueConsumer {
    queue: QueueId,
    /// Pull from every replica in turn (DLedger's UNSAFE_READ: any replica answers).
    unsafe_read: bool,
    /// Where the next pull starts.
    offset: u64,
    /// The offset the broker last confirmed a commit of.
    committed: u64,
    pulls: u32,
    phase: Phase,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    Start,
    /// A QueryOffset to `target` is in flight.
    Querying {
        target: NodeId,
    },
    /// Waiting before the next offset query.
    QueryBackoff,
    /// A Pull to `target` is in flight since `invoke_us`.
    Pulling {
        target: NodeId,
        invoke_us: u64,
    },
    /// A CommitOffset of `offset` to `target` is in flight; then wait `wait_us`.
    Committing {
        target: NodeId,
        offset: u64,
        wait_us: u64,
    },
    /// Waiting before the next pull.
    Waiting,
    Done,
}

impl QueueConsumer {
    pub fn new(queue: QueueId, unsafe_read: bool) -> QueueConsumer {
        QueueConsumer {
            queue,
            unsafe_read,
            offset: 0,
            committed: 0,
            pulls: 0,
            phase: Phase::Start,
        }
    }

    fn group(&self) -> u32 {
        self.queue.group
    }

    fn sleep(&mut self, us: u64, then: Phase, commands: &mut Vec<Command>) {
        self.phase = then;
        commands.push(Command::Sleep { us });
    }

    fn done(&mut self, commands: &mut Vec<Command>) {
        self.phase = Phase::Done;
        commands.push(Command::Done);
    }

    /// Asks the group's committed offset for the queue (retried until the consumers stop).
    fn query(&mut self, at: At, client: &ClientState, out: &mut Vec<Command>) {
        if at.stopped {
            return self.done(out);
        }
        let Some(target) = client.target(self.group(), at.now_us, out) else {
            return self.sleep(client.workload().retry_backoff_us, Phase::QueryBackoff, out);
        };
        self.phase = Phase::Querying { target };
        out.push(Command::Request {
            to: target,
            request: ClientRequest::QueryOffset {
                group: CONSUMER_GROUP.to_string(),
                queue: self.queue.queue.clone(),
            },
            deadline_us: at.now_us + client.workload().send_timeout_us,
        });
    }

    fn queried(
        &mut self,
        target: NodeId,
        answer: Option<ClientResponse>,
        at: At,
        client: &mut ClientState,
        out: &mut Vec<Command>,
    ) {
        let group = self.group();
        match answer {
            Some(ClientResponse::Offset { offset }) => {
                client.believe_leader(group, target);
                self.offset = offset.unwrap_or(0);
                self.committed = self.offset;
                return self.pull(at, client, out);
            }
            Some(ClientResponse::NotLeader { leader_hint }) => {
                refused(client, group, target, leader_hint, at.now_us, out)
            }
            Some(_) => {}
            None => {
                client.suspect(target, at.now_us);
                client.rotate(group, target);
            }
        }
        self.sleep(client.workload().retry_backoff_us, Phase::QueryBackoff, out);
    }

    /// Pulls from the group's target (every replica in turn with `unsafe_read`), unless the
    /// consumers stopped.
    fn pull(&mut self, at: At, client: &ClientState, out: &mut Vec<Command>) {
        if at.stopped {
            return self.done(out);
        }
        let target = if self.unsafe_read {
            Some(client.replica(self.group(), self.pulls % client.config().replicas))
        } else {
            client.target(self.group(), at.now_us, out)
        };
        let Some(target) = target else {
            return self.sleep(client.workload().retry_backoff_us, Phase::Waiting, out);
        };
        self.phase = Phase::Pulling {
            target,
            invoke_us: at.now_us,
        };
        out.push(Command::Request {
            to: target,
            request: ClientRequest::Pull {
                queue: self.queue.queue.clone(),
                offset: self.offset,
                max: PULL_MAX,
            },
            deadline_us: at.now_us + client.workload().send_timeout_us,
        });
    }

    fn pulled(
        &mut self,
        target: NodeId,
        invoke_us: u64,
        answer: Option<ClientResponse>,
        at: At,
        client: &mut ClientState,
        out: &mut Vec<Command>,
    ) {
        let group = self.group();
        let (outcome, got) = match answer {
            Some(ClientResponse::Pulled { msg_ids, .. }) => {
                client.believe_leader(group, target);
                let got = msg_ids.len() as u64;
                (OpOutcome::Pulled { bodies: msg_ids }, got)
            }
            Some(ClientResponse::NotLeader { leader_hint }) => {
                refused(client, group, target, leader_hint, at.now_us, out);
                (OpOutcome::Fail, 0)
            }
            Some(_) => (OpOutcome::Fail, 0),
            None => {
                client.suspect(target, at.now_us);
                client.rotate(group, target);
                (OpOutcome::Unknown, 0)
            }
        };
        let workload = client.workload();
        let wait_us = match outcome {
            OpOutcome::Pulled { .. } if got > 0 => 0,
            OpOutcome::Pulled { .. } => workload.consumer_poll_us,
            _ => workload.retry_backoff_us,
        };
        out.push(Command::Record(Operation {
            client: client.config().client.0,
            input: OpInput::pull(&self.queue, self.offset, PULL_MAX),
            invoke_us,
            complete_us: at.now_us,
            outcome,
        }));
        self.offset += got;
        out.push(Command::RecordOffset {
            queue: self.queue.clone(),
            offset: self.offset,
        });
        self.pulls += 1;
        if self.pulls.is_multiple_of(COMMIT_EVERY_PULLS)
            && self.offset > self.committed
            && !at.stopped
        {
            if let Some(target) = client.target(group, at.now_us, out) {
                self.phase = Phase::Committing {
                    target,
                    offset: self.offset,
                    wait_us,
                };
                out.push(Command::Request {
                    to: target,
                    request: ClientRequest::CommitOffset {
                        group: CONSUMER_GROUP.to_string(),
                        queue: self.queue.queue.clone(),
                        offset: self.offset,
                    },
                    deadline_us: at.now_us + workload.send_timeout_us,
                });
                return;
            }
        }
        self.wait_then_pull(wait_us, at, client, out);
    }

    fn wait_then_pull(
        &mut self,
        wait_us: u64,
        at: At,
        client: &ClientState,
        out: &mut Vec<Command>,
    ) {
        if wait_us > 0 {
            return self.sleep(wait_us, Phase::Waiting, out);
        }
        self.pull(at, client, out);
    }
}

/// A NOT_LEADER: follow the hint or rotate; with name servers ask for a route fetch.
fn refused(
    client: &mut ClientState,
    group: u32,
    by: NodeId,
    leader_hint: Option<NodeId>,
    now_us: u64,
    out: &mut Vec<Command>,
) {
    if let Refusal::FetchRoutes(reason) = client.on_not_leader(group, by, leader_hint, now_us) {
        out.push(Command::FetchRoutes(reason));
    }
}

impl ClientMachine for QueueConsumer {
    fn step(
        &mut self,
        event: Event,
        now_us: u64,
        stopped: bool,
        client: &mut ClientState,
    ) -> Vec<Command> {
        let at = At { now_us, stopped };
        let mut out = Vec::new();
        let answer = match event {
            Event::Answer(response) => Some(Some(response)),
            Event::NoAnswer => Some(None),
            Event::Start | Event::Woke => None,
        };
        match (self.phase.clone(), answer) {
            (Phase::Start, None) => self.query(at, client, &mut out),
            (Phase::QueryBackoff, None) => self.query(at, client, &mut out),
            (Phase::Querying { target }, Some(answer)) => {
                self.queried(target, answer, at, client, &mut out)
            }
            (Phase::Pulling { target, invoke_us }, Some(answer)) => {
                self.pulled(target, invoke_us, answer, at, client, &mut out)
            }
            (
                Phase::Committing {
                    target,
                    offset,
                    wait_us,
                },
                Some(answer),
            ) => {
                match answer {
                    Some(ClientResponse::OffsetCommitted) => self.committed = offset,
                    Some(ClientResponse::NotLeader { leader_hint }) => refused(
                        client,
                        self.group(),
                        target,
                        leader_hint,
                        at.now_us,
                        &mut out,
                    ),
                    _ => {}
                }
                self.wait_then_pull(wait_us, at, client, &mut out);
            }
            (Phase::Waiting, None) => self.pull(at, client, &mut out),
            (phase, answer) => {
                panic!("invariant: no event {answer:?} comes in phase {phase:?}")
            }
        }
        out
    }
}
