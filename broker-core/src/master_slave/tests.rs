//! Exact effects of the master–slave state machine, mode by mode (openraft-style: drive the
//! node, assert the whole effect list).

use super::*;
use crate::broker::{ClientRequest, ClientResponse};
use crate::store::EntryKind;

const MASTER: NodeId = NodeId(0);
const SLAVE: NodeId = NodeId(1);
const CLIENT: ClientId = ClientId(7);

fn config(replication: ReplicationMode, flush: FlushMode) -> Config {
    Config {
        flush,
        ..Config::with_replication(replication)
    }
}

fn node(config: &Config, id: NodeId, entries: Vec<Entry>) -> MasterSlaveBroker {
    let mut node = MasterSlaveBroker::new(
        config.clone(),
        id,
        vec![MASTER, SLAVE],
        RecoveredState {
            rejoining: false,
            entries,
            ..RecoveredState::default()
        },
    )
    .expect("valid config and membership");
    node.step(0, BrokerInput::Tick);
    node.take_effects();
    node
}

fn queue() -> QueueKey {
    QueueKey {
        topic: "orders".into(),
        queue_id: 0,
    }
}

fn send(request_id: u64) -> BrokerInput {
    BrokerInput::Client {
        client: CLIENT,
        request_id,
        request: ClientRequest::Send {
            queue: queue(),
            msg_id: format!("m{request_id}"),
        },
    }
}

fn report(index: u64, checksum: u32) -> BrokerInput {
    BrokerInput::Peer {
        from: SLAVE,
        msg: PeerMessage::Ha(HaMessage::Report {
            index: LogIndex(index),
            checksum,
        }),
    }
}

/// The entries a master writes for sends `ids`, in order, after `before`.
fn entries_after(before: &[Entry], ids: &[&str]) -> Vec<Entry> {
    let mut log = before.to_vec();
    for id in ids {
        let previous = log.last().map_or(0, |e| e.checksum);
        let data = StoredMessage {
            queue: queue(),
            msg_id: (*id).to_string(),
        }
        .encode();
        let index = LogIndex(log.len() as u64 + 1);
        log.push(Entry::new(
            previous,
            index,
            MASTER_SLAVE_TERM,
            EntryKind::Normal,
            data,
        ));
    }
    log.split_off(before.len())
}

use crate::broker::StoredMessage;

fn send_ok(request_id: u64, queue_offset: u64, index: u64) -> BrokerEffect {
    BrokerEffect::Respond {
        client: CLIENT,
        request_id,
        response: ClientResponse::SendOk {
            queue_offset,
            log_index: LogIndex(index),
        },
    }
}

fn push(prev: u64, prev_checksum: u32, entries: Vec<Entry>, commit: u64) -> BrokerEffect {
    BrokerEffect::Send {
        to: SLAVE,
        msg: PeerMessage::Ha(HaMessage::Push {
            prev_index: LogIndex(prev),
            prev_checksum,
            entries,
            master_commit: LogIndex(commit),
        }),
    }
}

// ASYNC_MASTER + ASYNC_FLUSH acknowledges as soon as the write is handed to the OS: no fsync,
// no slave in the way. That is exactly the window CrashLosingUnsynced exploits.
#[test]
fn async_master_acks_after_the_local_write() {
    let mut master = node(
        &config(ReplicationMode::Async, FlushMode::Async),
        MASTER,
        vec![],
    );
    master.step(1, send(1));
    let e1 = entries_after(&[], &["m1"]);
    assert_eq!(
        master.take_effects(),
        vec![
            BrokerEffect::Persist(PersistOp::Append {
                entries: e1.clone()
            }),
            send_ok(1, 0, 1),
        ]
    );
    assert_eq!(master.status().commit_index, LogIndex(1));
    // The slave's first report shows where it is: the master pushes what it lacks.
    master.step(2, report(0, 0));
    assert_eq!(master.take_effects(), vec![push(0, 0, e1, 1)]);
    // The background flush (flushIntervalCommitLog) runs on its own timer.
    assert_eq!(master.next_deadline_ms(), 500);
    master.step(500, BrokerInput::Tick);
    assert_eq!(
        master.take_effects(),
        vec![BrokerEffect::Sync { sync_id: SyncId(0) }]
    );
}

// SYNC_FLUSH: the ack waits for the local fsync even without a slave in the way.
#[test]
fn sync_flush_acks_after_the_local_fsync() {
    let mut master = node(
        &config(ReplicationMode::Async, FlushMode::Sync),
        MASTER,
        vec![],
    );
    master.step(1, send(1));
    let e1 = entries_after(&[], &["m1"]);
    assert_eq!(
        master.take_effects(),
        vec![
            BrokerEffect::Persist(PersistOp::Append { entries: e1 }),
            BrokerEffect::Sync { sync_id: SyncId(0) },
        ]
    );
    master.step(3, BrokerInput::Persisted { sync_id: SyncId(0) });
    assert_eq!(master.take_effects(), vec![send_ok(1, 0, 1)]);
}

// SYNC_MASTER acknowledges only once a slave reports the entry durable with the master's
// checksum: the master's own write is not enough.
#[test]
fn sync_master_acks_only_after_a_slave_report() {
    let mut master = node(
        &config(ReplicationMode::Sync, FlushMode::Async),
        MASTER,
        vec![],
    );
    master.step(1, report(0, 0));
    assert_eq!(master.take_effects(), vec![]);
    master.step(2, send(1));
    let e1 = entries_after(&[], &["m1"]);
    assert_eq!(
        master.take_effects(),
        vec![
            BrokerEffect::Persist(PersistOp::Append {
                entries: e1.clone()
            }),
            push(0, 0, e1.clone(), 0),
        ]
    );
    assert_eq!(master.status().commit_index, LogIndex(0));
    // A report of a different entry at index 1 proves nothing.
    master.step(5, report(1, e1[0].checksum ^ 1));
    assert!(!master
        .take_effects()
        .iter()
        .any(|e| matches!(e, BrokerEffect::Respond { .. })));
    master.step(6, report(1, e1[0].checksum));
    assert_eq!(master.take_effects(), vec![send_ok(1, 0, 1)]);
    assert_eq!(master.status().commit_index, LogIndex(1));
}

// A SYNC_MASTER send no slave confirms within sync_wait_ms gets FLUSH_SLAVE_TIMEOUT: the
// outcome is unknown (the entry is written and may still reach a slave).
#[test]
fn sync_master_times_out_without_a_slave() {
    let mut master = node(
        &config(ReplicationMode::Sync, FlushMode::Async),
        MASTER,
        vec![],
    );
    master.step(10, send(1));
    master.take_effects();
    assert_eq!(
        master.next_deadline_ms(),
        500,
        "the flush timer comes first"
    );
    master.step(5_009, BrokerInput::Tick);
    assert!(!master
        .take_effects()
        .iter()
        .any(|e| matches!(e, BrokerEffect::Respond { .. })));
    master.step(5_010, BrokerInput::Tick);
    assert_eq!(
        master.take_effects(),
        vec![BrokerEffect::Respond {
            client: CLIENT,
            request_id: 1,
            response: ClientResponse::Timeout,
        }]
    );
}

// A slave never takes a send (no automatic promotion, ever): it names the master.
#[test]
fn slave_refuses_sends_naming_the_master() {
    let mut slave = node(
        &config(ReplicationMode::Async, FlushMode::Async),
        SLAVE,
        vec![],
    );
    slave.step(1, send(1));
    assert_eq!(
        slave.take_effects(),
        vec![BrokerEffect::Respond {
            client: CLIENT,
            request_id: 1,
            response: ClientResponse::NotLeader {
                leader_hint: Some(MASTER),
            },
        }]
    );
    assert_eq!(slave.status().role, Role::Follower);
}

// A slave persists a push, and only after the fsync dispatches it, serves it and reports it.
#[test]
fn slave_persists_then_reports_and_serves_pulls() {
    let mut slave = node(
        &config(ReplicationMode::Sync, FlushMode::Async),
        SLAVE,
        vec![],
    );
    let e = entries_after(&[], &["m1", "m2"]);
    slave.step(
        1,
        BrokerInput::Peer {
            from: MASTER,
            msg: PeerMessage::Ha(HaMessage::Push {
                prev_index: LogIndex(0),
                prev_checksum: 0,
                entries: e.clone(),
                master_commit: LogIndex(0),
            }),
        },
    );
    assert_eq!(
        slave.take_effects(),
        vec![
            BrokerEffect::Persist(PersistOp::Append { entries: e.clone() }),
            BrokerEffect::Sync { sync_id: SyncId(0) },
        ]
    );
    slave.step(3, BrokerInput::Persisted { sync_id: SyncId(0) });
    assert_eq!(
        slave.take_effects(),
        vec![BrokerEffect::Send {
            to: MASTER,
            msg: PeerMessage::Ha(HaMessage::Report {
                index: LogIndex(2),
                checksum: e[1].checksum,
            }),
        }]
    );
    slave.step(
        4,
        BrokerInput::Client {
            client: CLIENT,
            request_id: 9,
            request: ClientRequest::Pull {
                queue: queue(),
                offset: 0,
                max: 10,
            },
        },
    );
    assert_eq!(
        slave.take_effects(),
        vec![BrokerEffect::Respond {
            client: CLIENT,
            request_id: 9,
            response: ClientResponse::Pulled {
                offset: 0,
                msg_ids: vec!["m1".into(), "m2".into()],
            },
        }]
    );
}

/// Something in flight in `exchange`: a message to a node, or a slave fsync completing.
enum Delivery {
    ToMaster(PeerMessage),
    ToSlave(PeerMessage),
    SlaveSynced(SyncId),
}

fn deliveries(effects: Vec<BrokerEffect>, from: NodeId) -> Vec<Delivery> {
    effects
        .into_iter()
        .filter_map(|effect| match effect {
            BrokerEffect::Send { to: MASTER, msg } => Some(Delivery::ToMaster(msg)),
            BrokerEffect::Send { to: SLAVE, msg } => Some(Delivery::ToSlave(msg)),
            BrokerEffect::Sync { sync_id } if from == SLAVE => Some(Delivery::SlaveSynced(sync_id)),
            _ => None,
        })
        .collect()
}

/// Delivers every HA message between the two, in order, completing each slave fsync at once,
/// until neither has anything to say. Returns the number of deliveries.
fn exchange(
    master: &mut MasterSlaveBroker,
    slave: &mut MasterSlaveBroker,
    first: Vec<BrokerEffect>,
) -> u32 {
    let mut queue: std::collections::VecDeque<Delivery> = deliveries(first, SLAVE).into();
    let mut delivered = 0;
    while let Some(delivery) = queue.pop_front() {
        delivered += 1;
        assert!(delivered < 200, "the exchange converges");
        let (node, input) = match delivery {
            Delivery::ToMaster(msg) => (MASTER, BrokerInput::Peer { from: SLAVE, msg }),
            Delivery::ToSlave(msg) => (SLAVE, BrokerInput::Peer { from: MASTER, msg }),
            Delivery::SlaveSynced(sync_id) => (SLAVE, BrokerInput::Persisted { sync_id }),
        };
        let target = if node == MASTER {
            &mut *master
        } else {
            &mut *slave
        };
        target.step(10_000, input);
        queue.extend(deliveries(target.take_effects(), node));
    }
    delivered
}

// The master lost its unflushed tail (m4, m5: acknowledged under ASYNC_MASTER) and restarted
// with m1..m3; it then took m4'. The slave still has m1..m5. The master is authoritative: the
// slave finds where the logs agree through the chained checksum, cuts m4 and m5 and takes m4'.
#[test]
fn restarted_master_with_a_shorter_disk_truncates_the_slave() {
    let config = config(ReplicationMode::Async, FlushMode::Async);
    let old = entries_after(&[], &["m1", "m2", "m3", "m4", "m5"]);
    let mut master = node(&config, MASTER, old[..3].to_vec());
    let mut slave = node(&config, SLAVE, old.clone());
    assert_eq!(master.status().commit_index, LogIndex(3));
    assert_eq!(master.status().role, Role::Leader);
    assert_eq!(master.status().term, MASTER_SLAVE_TERM);
    master.step(1, send(40));
    let new4 = entries_after(&old[..3], &["m40"]);
    assert_eq!(
        master.take_effects(),
        vec![
            BrokerEffect::Persist(PersistOp::Append {
                entries: new4.clone()
            }),
            send_ok(40, 3, 4),
        ],
        "the new send reuses index 4 and queue offset 3"
    );
    // The slave's periodic report: index 5, which the master does not have.
    master.step(2, report(5, old[4].checksum));
    assert_eq!(
        master.take_effects(),
        vec![push(4, new4[0].checksum, vec![], 4)]
    );
    // The slave holds another entry at 4: it refuses and reports half as far.
    slave.step(
        3,
        BrokerInput::Peer {
            from: MASTER,
            msg: PeerMessage::Ha(HaMessage::Push {
                prev_index: LogIndex(4),
                prev_checksum: new4[0].checksum,
                entries: vec![],
                master_commit: LogIndex(4),
            }),
        },
    );
    let refusal = slave.take_effects();
    assert_eq!(
        refusal,
        vec![BrokerEffect::Send {
            to: MASTER,
            msg: PeerMessage::Ha(HaMessage::Report {
                index: LogIndex(2),
                checksum: old[1].checksum,
            }),
        }]
    );
    // The master verifies index 2 and pushes m3, m4'; the slave keeps m3, cuts m4, m5.
    master.step(4, report(2, old[1].checksum));
    let mut expected_log = old[..3].to_vec();
    expected_log.extend(new4.clone());
    assert_eq!(
        master.take_effects(),
        vec![push(2, old[1].checksum, expected_log[2..].to_vec(), 4)]
    );
    slave.step(
        5,
        BrokerInput::Peer {
            from: MASTER,
            msg: PeerMessage::Ha(HaMessage::Push {
                prev_index: LogIndex(2),
                prev_checksum: old[1].checksum,
                entries: expected_log[2..].to_vec(),
                master_commit: LogIndex(4),
            }),
        },
    );
    assert_eq!(
        slave.take_effects(),
        vec![
            BrokerEffect::Persist(PersistOp::TruncateFrom { from: LogIndex(4) }),
            BrokerEffect::Persist(PersistOp::Append {
                entries: new4.clone()
            }),
            BrokerEffect::Sync { sync_id: SyncId(0) },
        ]
    );
    assert_eq!(slave.log(), master.log());
    assert_eq!(
        slave.status().applied_index,
        LogIndex(3),
        "m4 not durable yet"
    );
    slave.step(6, BrokerInput::Persisted { sync_id: SyncId(0) });
    let last_report = slave.take_effects();
    assert_eq!(slave.status().applied_index, LogIndex(4));
    assert_eq!(
        slave.queue(&queue()).map(|q| q.read(0, 10)),
        Some(vec!["m1".into(), "m2".into(), "m3".into(), "m40".into()])
    );
    exchange(&mut master, &mut slave, last_report);
    assert_eq!(slave.log(), master.log());
}

// The same agreement search, driven to the end by message exchange, when the slave diverged
// far back (the halving reaches the common prefix in a few rounds).
#[test]
fn divergence_far_back_converges() {
    let config = config(ReplicationMode::Sync, FlushMode::Async);
    let names: Vec<String> = (1..=40).map(|i| format!("old{i}")).collect();
    let old = entries_after(&[], &names.iter().map(String::as_str).collect::<Vec<_>>());
    let mut master = node(&config, MASTER, old[..5].to_vec());
    let mut slave = node(&config, SLAVE, old.clone());
    for i in 0..10 {
        master.step(1, send(100 + i));
        master.take_effects();
    }
    slave.step(1_000, BrokerInput::Tick);
    let first = slave.take_effects();
    let rounds = exchange(&mut master, &mut slave, first);
    assert_eq!(slave.log(), master.log());
    assert!(rounds <= 30, "converged in {rounds} deliveries");
    assert_eq!(
        master.status().commit_index,
        LogIndex(15),
        "all acked by the slave"
    );
}

// A disk whose last entry does not verify (torn write) is cut on recovery, durably.
#[test]
fn recovery_cuts_a_torn_tail() {
    let mut entries = entries_after(&[], &["m1", "m2"]);
    entries[1].data.push(b'!');
    let mut master = MasterSlaveBroker::new(
        config(ReplicationMode::Async, FlushMode::Async),
        MASTER,
        vec![MASTER, SLAVE],
        RecoveredState {
            rejoining: false,
            entries,
            ..RecoveredState::default()
        },
    )
    .expect("valid");
    assert_eq!(
        master.take_effects(),
        vec![
            BrokerEffect::Persist(PersistOp::TruncateFrom { from: LogIndex(2) }),
            BrokerEffect::Sync { sync_id: SyncId(0) },
        ]
    );
    assert_eq!(master.status().last_index, LogIndex(1));
}

#[test]
fn config_validation_names_the_field() {
    let mut bad = Config::with_replication(ReplicationMode::Sync);
    bad.flush_interval_ms = 0;
    assert_eq!(
        bad.validate(),
        Err(ConfigError::Zero {
            field: "flush_interval_ms"
        })
    );
    let mut bad = Config::with_replication(ReplicationMode::Sync);
    bad.sync_wait_ms = bad.slave_report_interval_ms;
    assert!(matches!(
        bad.validate(),
        Err(ConfigError::SyncWaitNotAboveReportInterval { .. })
    ));
}

// Datagrams reorder: a push that arrives ahead of a gap waits for the gap to fill instead of
// being dropped (which would cost a report round and stall SYNC_MASTER acks).
#[test]
fn slave_keeps_an_early_push_until_the_gap_fills() {
    let mut slave = node(
        &config(ReplicationMode::Sync, FlushMode::Async),
        SLAVE,
        vec![],
    );
    let e = entries_after(&[], &["m1", "m2"]);
    let push_msg = |prev: usize| BrokerInput::Peer {
        from: MASTER,
        msg: PeerMessage::Ha(HaMessage::Push {
            prev_index: LogIndex(prev as u64),
            prev_checksum: if prev == 0 { 0 } else { e[prev - 1].checksum },
            entries: vec![e[prev].clone()],
            master_commit: LogIndex(0),
        }),
    };
    slave.step(1, push_msg(1));
    assert_eq!(slave.take_effects(), vec![]);
    slave.step(2, push_msg(0));
    assert_eq!(
        slave.take_effects(),
        vec![
            BrokerEffect::Persist(PersistOp::Append {
                entries: vec![e[0].clone()]
            }),
            BrokerEffect::Sync { sync_id: SyncId(0) },
            BrokerEffect::Persist(PersistOp::Append {
                entries: vec![e[1].clone()]
            }),
            BrokerEffect::Sync { sync_id: SyncId(1) },
        ]
    );
}

// Consumer offsets are kept on the master; a slave sends consumers there.
#[test]
fn master_keeps_consumer_offsets_and_slaves_refuse_them() {
    let config = config(ReplicationMode::Async, FlushMode::Async);
    let mut master = node(&config, MASTER, vec![]);
    let mut slave = node(&config, SLAVE, vec![]);
    let commit = ClientRequest::CommitOffset {
        group: "cg".into(),
        queue: queue(),
        offset: 5,
    };
    let query = ClientRequest::QueryOffset {
        group: "cg".into(),
        queue: queue(),
    };
    let respond = |request_id, response| BrokerEffect::Respond {
        client: CLIENT,
        request_id,
        response,
    };
    for (request_id, request) in [(1, query.clone()), (2, commit.clone()), (3, query.clone())] {
        master.step(
            1,
            BrokerInput::Client {
                client: CLIENT,
                request_id,
                request,
            },
        );
    }
    assert_eq!(
        master.take_effects(),
        vec![
            respond(1, ClientResponse::Offset { offset: None }),
            respond(2, ClientResponse::OffsetCommitted),
            respond(3, ClientResponse::Offset { offset: Some(5) }),
        ]
    );
    assert_eq!(master.committed_offset("cg", &queue()), Some(5));
    assert!(master.log().is_empty(), "offsets are not CommitLog entries");
    for (request_id, request) in [(1, commit), (2, query)] {
        slave.step(
            1,
            BrokerInput::Client {
                client: CLIENT,
                request_id,
                request,
            },
        );
    }
    let not_leader = ClientResponse::NotLeader {
        leader_hint: Some(MASTER),
    };
    assert_eq!(
        slave.take_effects(),
        vec![respond(1, not_leader.clone()), respond(2, not_leader)]
    );
}
