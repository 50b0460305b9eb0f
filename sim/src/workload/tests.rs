//! The clients' machines driven without madsim: each test is a story of events and the exact
//! commands they must produce.

use super::client::{ClientConfig, ClientMachine, ClientState, Command, Event};
use super::pull::{assigned_queues, QueueConsumer, CONSUMER_GROUP, PULL_MAX};
use super::routes::{RouteAsk, RouteRefresh, ROUTE_REQUEST_TIMEOUT_US};
use super::schedule::{ScheduledSend, SendSchedule};
use super::send::MessageSend;
use super::WorkloadSpec;
use crate::history::{OpInput, OpOutcome, Operation};
use crate::ids::QueueId;
use crate::world::nameserver::{RefreshReason, RouteFetch, MASTER_BROKER_ID};
use broker_core::broker::{ClientId, ClientRequest, ClientResponse, QueueKey};
use broker_core::NodeId;
use std::collections::BTreeMap;

const CLIENT: ClientId = ClientId(3);
const SEND_TIMEOUT_US: u64 = 2_000_000;
const BACKOFF_US: u64 = 200_000;
const POLL_US: u64 = 100_000;
const REPLICAS: u32 = 3;

fn key(queue_id: u32) -> QueueKey {
    QueueKey {
        topic: "orders".to_string(),
        queue_id,
    }
}

/// Two queues per group, queue `q` on group `q mod groups`.
fn workload(groups: u32) -> WorkloadSpec {
    WorkloadSpec {
        warmup_us: 0,
        duration_us: 60_000_000,
        producers: 4,
        send_rate_per_s: 10,
        queues: (0..groups * 2).map(|q| (q % groups, key(q))).collect(),
        send_timeout_us: SEND_TIMEOUT_US,
        retry_backoff_us: BACKOFF_US,
        suspect_us: 10_000_000,
        group_avoid_us: 30_000_000,
        consumers: 1,
        consumer_poll_us: POLL_US,
        route_refresh_us: 30_000_000,
    }
}

fn client(groups: u32, routes_by_name_server: bool) -> ClientState {
    ClientState::new(ClientConfig {
        client: CLIENT,
        groups,
        replicas: REPLICAS,
        routes_by_name_server,
        workload: workload(groups),
    })
}

fn send_to(to: u32, queue_id: u32, body: &str, deadline_us: u64) -> Command {
    Command::Request {
        to: NodeId(to),
        request: ClientRequest::Send {
            queue: key(queue_id),
            msg_id: body.to_string(),
        },
        deadline_us,
    }
}

fn sent(
    group: u32,
    queue_id: u32,
    body: &str,
    times_us: (u64, u64),
    outcome: OpOutcome,
) -> Command {
    Command::Record(Operation {
        client: CLIENT.0,
        input: OpInput::send(&QueueId::new(group, key(queue_id)), body),
        invoke_us: times_us.0,
        complete_us: times_us.1,
        outcome,
    })
}

fn not_leader(hint: Option<u32>) -> Event {
    Event::Answer(ClientResponse::NotLeader {
        leader_hint: hint.map(NodeId),
    })
}

fn send_ok(queue_offset: u64) -> Event {
    Event::Answer(ClientResponse::SendOk {
        queue_offset,
        log_index: broker_core::LogIndex(1),
    })
}

/// A NOT_LEADER whose hint names another replica, not suspect, is followed at once (no
/// backoff, same deadline), and later messages go to the replica that acknowledged.
#[test]
fn not_leader_with_usable_hint_retargets_at_once() {
    let mut state = client(1, false);
    let mut message = MessageSend::new(0, "p3-17".to_string());
    let deadline_us = 1_000 + SEND_TIMEOUT_US;
    assert_eq!(
        message.step(Event::Start, 1_000, false, &mut state),
        vec![send_to(0, 0, "p3-17", deadline_us)]
    );
    assert_eq!(
        message.step(not_leader(Some(2)), 5_000, false, &mut state),
        vec![send_to(2, 0, "p3-17", deadline_us)]
    );
    assert_eq!(
        message.step(send_ok(4), 8_000, false, &mut state),
        vec![
            sent(0, 0, "p3-17", (1_000, 8_000), OpOutcome::Sent { offset: 4 }),
            Command::Done
        ]
    );
    let mut next = MessageSend::new(1, "p3-18".to_string());
    assert_eq!(
        next.step(Event::Start, 9_000, false, &mut state),
        vec![send_to(2, 1, "p3-18", 9_000 + SEND_TIMEOUT_US)]
    );
}

/// A hint naming a suspect replica is not followed: the client backs off and tries the next
/// replica after the one that refused.
#[test]
fn not_leader_hinting_a_suspect_rotates_after_a_backoff() {
    let mut state = client(1, false);
    state.suspect(NodeId(2), 0);
    let mut message = MessageSend::new(0, "p3-17".to_string());
    let deadline_us = 1_000 + SEND_TIMEOUT_US;
    message.step(Event::Start, 1_000, false, &mut state);
    assert_eq!(
        message.step(not_leader(Some(2)), 5_000, false, &mut state),
        vec![Command::Sleep { us: BACKOFF_US }]
    );
    assert_eq!(
        message.step(Event::Woke, 205_000, false, &mut state),
        vec![send_to(1, 0, "p3-17", deadline_us)]
    );
}

/// A send that sat unanswered until its deadline suspects the replica and (with two groups)
/// avoids its group: the next attempt goes to a queue of the other group with the next body,
/// and a new message meant for the avoided group's queue goes elsewhere too.
#[test]
fn timeout_suspects_avoids_the_group_and_retries_on_another_group() {
    let mut state = client(2, false);
    let mut message = MessageSend::new(0, "p3-17".to_string());
    let deadline_us = 1_000 + SEND_TIMEOUT_US;
    assert_eq!(
        message.step(Event::Start, 1_000, false, &mut state),
        vec![send_to(0, 0, "p3-17", deadline_us)]
    );
    assert_eq!(
        message.step(Event::NoAnswer, deadline_us, false, &mut state),
        vec![
            sent(0, 0, "p3-17", (1_000, deadline_us), OpOutcome::Unknown),
            // Queue 1 is on group 1, whose replica 0 is node 3.
            send_to(3, 1, "p3-17#1", deadline_us + SEND_TIMEOUT_US),
        ]
    );
    assert!(state.is_suspect(NodeId(0), deadline_us));
    assert!(!state.writable(0, deadline_us));
    let mut next = MessageSend::new(2, "p3-18".to_string());
    assert_eq!(
        next.step(Event::Start, deadline_us, false, &mut state),
        vec![send_to(3, 3, "p3-18", deadline_us + SEND_TIMEOUT_US)]
    );
}

/// A timeout after a short wait (the attempt's deadline cut it short) suspects nothing and
/// avoids no group, though the attempt is still Unknown and retried elsewhere.
#[test]
fn short_wait_cut_by_the_deadline_suspects_nothing() {
    let mut state = client(2, false);
    let mut message = MessageSend::new(0, "p3-17".to_string());
    message.step(Event::Start, 0, false, &mut state);
    assert_eq!(
        message.step(not_leader(Some(1)), 1_500_000, false, &mut state),
        vec![send_to(1, 0, "p3-17", SEND_TIMEOUT_US)]
    );
    assert_eq!(
        message.step(Event::NoAnswer, SEND_TIMEOUT_US, false, &mut state),
        vec![
            sent(0, 0, "p3-17", (0, SEND_TIMEOUT_US), OpOutcome::Unknown),
            send_to(3, 1, "p3-17#1", 2 * SEND_TIMEOUT_US),
        ]
    );
    assert!(!state.is_suspect(NodeId(1), SEND_TIMEOUT_US));
    assert!(state.writable(0, SEND_TIMEOUT_US));
}

/// With name servers a NOT_LEADER asks for a route fetch and backs off; the hint is never
/// followed: the next request goes where the route says.
#[test]
fn with_name_servers_not_leader_fetches_routes_and_never_follows_the_hint() {
    let mut state = client(1, true);
    state.set_route(vec![Some(NodeId(0))]);
    let mut message = MessageSend::new(0, "p3-17".to_string());
    let deadline_us = SEND_TIMEOUT_US;
    message.step(Event::Start, 0, false, &mut state);
    assert_eq!(
        message.step(not_leader(Some(1)), 10_000, false, &mut state),
        vec![
            Command::FetchRoutes(RefreshReason::Refused {
                group: 0,
                by: NodeId(0)
            }),
            Command::Sleep { us: BACKOFF_US },
        ]
    );
    assert_eq!(
        message.step(Event::Woke, 210_000, false, &mut state),
        vec![send_to(0, 0, "p3-17", deadline_us)]
    );
    // A timeout fetches nothing: the producer learns a new master from its periodic poll.
    assert_eq!(
        message.step(Event::NoAnswer, deadline_us, false, &mut state),
        vec![
            sent(0, 0, "p3-17", (0, deadline_us), OpOutcome::Unknown),
            Command::Done,
        ]
    );
}

/// With name servers and no master in the route: a fetch is asked for and the send backs off;
/// once a route names a master, the send goes there.
#[test]
fn no_master_in_the_route_asks_for_a_fetch_and_backs_off() {
    let mut state = client(1, true);
    let mut message = MessageSend::new(0, "p3-17".to_string());
    assert_eq!(
        message.step(Event::Start, 0, false, &mut state),
        vec![
            Command::FetchRoutes(RefreshReason::NoMaster { group: 0 }),
            Command::Sleep { us: BACKOFF_US },
        ]
    );
    state.set_route(vec![Some(NodeId(1))]);
    assert_eq!(
        message.step(Event::Woke, BACKOFF_US, false, &mut state),
        vec![send_to(1, 0, "p3-17", SEND_TIMEOUT_US)]
    );
}

/// A backoff that would reach the deadline ends the attempt as Fail (definitely not done),
/// and with one group the message ends with it.
#[test]
fn backoff_past_the_deadline_fails() {
    let mut state = client(1, false);
    let mut message = MessageSend::new(0, "p3-17".to_string());
    message.step(Event::Start, 0, false, &mut state);
    let late_us = SEND_TIMEOUT_US - BACKOFF_US;
    assert_eq!(
        message.step(
            Event::Answer(ClientResponse::Busy),
            late_us,
            false,
            &mut state
        ),
        vec![
            sent(0, 0, "p3-17", (0, late_us), OpOutcome::Fail),
            Command::Done
        ]
    );
}

/// With two groups a message has at most three attempts, on alternating groups, and none
/// starts once the workload stopped.
#[test]
fn attempts_run_out_or_stop_with_the_workload() {
    let mut state = client(2, false);
    let mut message = MessageSend::new(0, "p3-17".to_string());
    message.step(Event::Start, 0, false, &mut state);
    let mut bodies = Vec::new();
    let mut now_us = 0;
    loop {
        now_us += SEND_TIMEOUT_US;
        let commands = message.step(
            Event::Answer(ClientResponse::Timeout),
            now_us,
            false,
            &mut state,
        );
        let Command::Record(operation) = &commands[0] else {
            panic!("an answered attempt is recorded first: {commands:?}");
        };
        bodies.push(operation.input.clone());
        if commands[1] == Command::Done {
            break;
        }
    }
    assert_eq!(
        bodies,
        vec![
            OpInput::send(&QueueId::new(0, key(0)), "p3-17"),
            OpInput::send(&QueueId::new(1, key(1)), "p3-17#1"),
            OpInput::send(&QueueId::new(0, key(2)), "p3-17#2"),
        ]
    );

    let mut stopped = MessageSend::new(0, "p3-18".to_string());
    stopped.step(Event::Start, 0, false, &mut state);
    assert_eq!(
        stopped.step(
            Event::Answer(ClientResponse::LeadershipLost),
            5,
            true,
            &mut state
        ),
        vec![
            sent(0, 0, "p3-18", (0, 5), OpOutcome::Unknown),
            Command::Done
        ]
    );
}

/// When every replica of a group is suspect, the one whose suspicion ends first is asked;
/// otherwise the first one not suspect from the guess on.
#[test]
fn all_suspect_picks_the_earliest_to_recover() {
    let mut state = client(1, false);
    state.suspect(NodeId(0), 300);
    state.suspect(NodeId(1), 100);
    state.suspect(NodeId(2), 200);
    assert_eq!(state.choose_replica(0, 400), NodeId(1));
    // Node 2's suspicion is over, node 0's is not.
    assert_eq!(state.choose_replica(0, 10_000_250), NodeId(1));
    state.believe_leader(0, NodeId(2));
    assert_eq!(state.choose_replica(0, 10_000_250), NodeId(2));
    // None is suspect: the guess.
    state.believe_leader(0, NodeId(0));
    assert_eq!(state.choose_replica(0, 10_000_300), NodeId(0));
}

fn pull_from(to: u32, offset: u64, deadline_us: u64) -> Command {
    Command::Request {
        to: NodeId(to),
        request: ClientRequest::Pull {
            queue: key(0),
            offset,
            max: PULL_MAX,
        },
        deadline_us,
    }
}

fn pulled_op(offset: u64, times_us: (u64, u64), outcome: OpOutcome) -> Command {
    Command::Record(Operation {
        client: CLIENT.0,
        input: OpInput::pull(&QueueId::new(0, key(0)), offset, PULL_MAX),
        invoke_us: times_us.0,
        complete_us: times_us.1,
        outcome,
    })
}

fn offset_at(offset: u64) -> Command {
    Command::RecordOffset {
        queue: QueueId::new(0, key(0)),
        offset,
    }
}

fn pulled(msg_ids: &[&str]) -> Event {
    Event::Answer(ClientResponse::Pulled {
        offset: 0,
        msg_ids: msg_ids.iter().map(|id| id.to_string()).collect(),
    })
}

fn bodies(msg_ids: &[&str]) -> OpOutcome {
    OpOutcome::Pulled {
        bodies: msg_ids.iter().map(|id| id.to_string()).collect(),
    }
}

/// A consumer asks the committed offset, pulls from there (at once after messages, after the
/// poll interval after none, after a backoff after a refusal whose hint it follows), and
/// commits on every fourth pull; it ends when the consumers stop.
#[test]
fn consumer_queries_pulls_and_commits_every_fourth_pull() {
    let mut state = client(1, false);
    let mut consumer = QueueConsumer::new(QueueId::new(0, key(0)), false);
    let t = SEND_TIMEOUT_US;
    assert_eq!(
        consumer.step(Event::Start, 0, false, &mut state),
        vec![Command::Request {
            to: NodeId(0),
            request: ClientRequest::QueryOffset {
                group: CONSUMER_GROUP.to_string(),
                queue: key(0),
            },
            deadline_us: t,
        }]
    );
    let offset = Event::Answer(ClientResponse::Offset { offset: Some(5) });
    assert_eq!(
        consumer.step(offset, 1_000, false, &mut state),
        vec![pull_from(0, 5, 1_000 + t)]
    );
    // Pull 1: two messages, the next pull at once.
    assert_eq!(
        consumer.step(pulled(&["p1-1", "p2-1"]), 2_000, false, &mut state),
        vec![
            pulled_op(5, (1_000, 2_000), bodies(&["p1-1", "p2-1"])),
            offset_at(7),
            pull_from(0, 7, 2_000 + t),
        ]
    );
    // Pull 2: nothing, the next after the poll interval.
    assert_eq!(
        consumer.step(pulled(&[]), 3_000, false, &mut state),
        vec![
            pulled_op(7, (2_000, 3_000), bodies(&[])),
            offset_at(7),
            Command::Sleep { us: POLL_US },
        ]
    );
    assert_eq!(
        consumer.step(Event::Woke, 103_000, false, &mut state),
        vec![pull_from(0, 7, 103_000 + t)]
    );
    // Pull 3: refused with a hint, followed after a backoff.
    assert_eq!(
        consumer.step(not_leader(Some(1)), 104_000, false, &mut state),
        vec![
            pulled_op(7, (103_000, 104_000), OpOutcome::Fail),
            offset_at(7),
            Command::Sleep { us: BACKOFF_US },
        ]
    );
    assert_eq!(
        consumer.step(Event::Woke, 304_000, false, &mut state),
        vec![pull_from(1, 7, 304_000 + t)]
    );
    // Pull 4: one message, and the commit of offset 8 to the leader.
    assert_eq!(
        consumer.step(pulled(&["p3-1"]), 305_000, false, &mut state),
        vec![
            pulled_op(7, (304_000, 305_000), bodies(&["p3-1"])),
            offset_at(8),
            Command::Request {
                to: NodeId(1),
                request: ClientRequest::CommitOffset {
                    group: CONSUMER_GROUP.to_string(),
                    queue: key(0),
                    offset: 8,
                },
                deadline_us: 305_000 + t,
            },
        ]
    );
    assert_eq!(
        consumer.step(
            Event::Answer(ClientResponse::OffsetCommitted),
            306_000,
            false,
            &mut state
        ),
        vec![pull_from(1, 8, 306_000 + t)]
    );
    // The consumers stopped: the pull is recorded, no new one starts.
    assert_eq!(
        consumer.step(pulled(&["p0-2"]), 307_000, true, &mut state),
        vec![
            pulled_op(8, (306_000, 307_000), bodies(&["p0-2"])),
            offset_at(9),
            Command::Done,
        ]
    );
}

/// A pull with no answer is Unknown; the replica is suspect and the next pull, after a
/// backoff, goes to the next replica.
#[test]
fn consumer_timeout_moves_to_the_next_replica() {
    let mut state = client(1, false);
    let mut consumer = QueueConsumer::new(QueueId::new(0, key(0)), false);
    consumer.step(Event::Start, 0, false, &mut state);
    let offset = Event::Answer(ClientResponse::Offset { offset: None });
    assert_eq!(
        consumer.step(offset, 10, false, &mut state),
        vec![pull_from(0, 0, 10 + SEND_TIMEOUT_US)]
    );
    let now_us = 10 + SEND_TIMEOUT_US;
    assert_eq!(
        consumer.step(Event::NoAnswer, now_us, false, &mut state),
        vec![
            pulled_op(0, (10, now_us), OpOutcome::Unknown),
            offset_at(0),
            Command::Sleep { us: BACKOFF_US },
        ]
    );
    assert!(state.is_suspect(NodeId(0), now_us));
    assert_eq!(
        consumer.step(Event::Woke, now_us + BACKOFF_US, false, &mut state),
        vec![pull_from(1, 0, now_us + BACKOFF_US + SEND_TIMEOUT_US)]
    );
}

/// With UNSAFE_READ the consumer pulls from every replica of the group in turn.
#[test]
fn unsafe_read_pulls_every_replica_in_turn() {
    let mut state = client(1, false);
    let mut consumer = QueueConsumer::new(QueueId::new(0, key(0)), true);
    consumer.step(Event::Start, 0, false, &mut state);
    let mut targets = Vec::new();
    let mut event = Event::Answer(ClientResponse::Offset { offset: Some(0) });
    for now_us in 1..=4 {
        let commands = consumer.step(event, now_us, false, &mut state);
        let Some(Command::Request { to, .. }) = commands.last() else {
            panic!("a pull follows a pull with messages at once: {commands:?}");
        };
        targets.push(to.0);
        event = pulled(&["m"]);
    }
    assert_eq!(targets, vec![0, 1, 2, 0]);
}

/// Consumers divide the queues: every `consumers`-th from their index.
#[test]
fn consumers_divide_the_queues() {
    let queues = workload(2).queues;
    let names = |index| {
        assigned_queues(&queues, 2, index)
            .iter()
            .map(|queue| queue.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(0), vec!["g0/orders/0", "g0/orders/2"]);
    assert_eq!(names(1), vec!["g1/orders/1", "g1/orders/3"]);
}

/// Route fetches: the first name server is the client's own, a fetch with no answer moves to
/// the next, an answer sets the route, and the periodic timer keeps its phase.
#[test]
fn route_refresh_timing_and_name_servers() {
    let mut state = client(2, true);
    let period_us = workload(2).route_refresh_us;
    let mut refresh = RouteRefresh::new(CLIENT, 2, period_us, 1_000, 5_000_000);
    assert_eq!(
        refresh.ask(RefreshReason::Start, 1_000),
        RouteAsk {
            name_server: 1,
            deadline_us: 1_000 + ROUTE_REQUEST_TIMEOUT_US
        }
    );
    assert_eq!(
        refresh.unanswered(),
        RouteFetch {
            client: CLIENT.0,
            reason: RefreshReason::Start,
            name_server: 1,
            asked_us: 1_000,
            answered_us: None,
            masters: Vec::new(),
        }
    );
    let now_us = 1_000 + ROUTE_REQUEST_TIMEOUT_US;
    assert_eq!(refresh.wait_us(now_us), 5_001_000 - now_us);
    let reason = refresh.timer_fired(5_001_000);
    assert_eq!(refresh.ask(reason, 5_001_000).name_server, 0);
    let brokers = vec![
        BTreeMap::from([(MASTER_BROKER_ID, NodeId(2)), (1, NodeId(0))]),
        BTreeMap::from([(2, NodeId(4))]),
    ];
    let fetch = refresh.answered(&brokers, 5_002_000, &mut state);
    assert_eq!(fetch.answered_us, Some(5_002_000));
    assert_eq!(fetch.masters, vec![Some(NodeId(2)), None]);
    assert_eq!(state.route(), &[Some(NodeId(2)), None]);
    assert_eq!(
        refresh.wait_us(5_002_000),
        5_001_000 + period_us - 5_002_000
    );
    // A timer that fires late skips the periods it missed.
    refresh.timer_fired(5_001_000 + 3 * period_us + 7);
    assert_eq!(
        refresh.wait_us(5_001_000 + 3 * period_us + 7),
        period_us - 7
    );
}

/// A producer's sends: staggered by client, one queue after the other, until the end of the
/// fault phase or the workload stops.
#[test]
fn schedule_staggers_producers_and_cycles_queues() {
    // 10/s: every 100 ms; producer 3 of 4 starts 75 ms in.
    let mut schedule = SendSchedule::new(CLIENT, 4, 10, 4, 1_000_000, 1_300_000);
    let due = |at_us, slot, msg_id: &str| {
        Some(ScheduledSend {
            at_us,
            slot,
            msg_id: msg_id.to_string(),
        })
    };
    assert_eq!(schedule.next(false), due(1_075_000, 3, "p3-0"));
    assert_eq!(schedule.next(false), due(1_175_000, 0, "p3-1"));
    assert_eq!(schedule.next(false), due(1_275_000, 1, "p3-2"));
    assert_eq!(schedule.next(false), None);

    let mut stopped = SendSchedule::new(CLIENT, 4, 10, 4, 1_000_000, 1_300_000);
    assert_eq!(stopped.next(true), None);
}
