//! The rule a log history breaks, in words a developer can act on: which operations, which
//! offsets, which times (`log_decide::LogRule` holds the facts; this file only phrases them).

use crate::check::log_decide::{LogRule, Node};
use crate::check::model::Op;
use crate::check::models::log::{LogInput, LogModel, LogOutput};

type LogOp = Op<LogInput, LogOutput>;

/// One sentence (or two) naming the broken rule; `#n` are history indices.
pub fn explain(rule: &LogRule, model: &LogModel, ops: &[LogOp]) -> String {
    let id = |position: usize| ops[position].index;
    match rule {
        LogRule::BodyAtTwoOffsets {
            body,
            first,
            first_offset,
            second,
            second_offset,
        } => format!(
            "one body at two offsets: {} {} at offset {first_offset}, {} {} at offset \
             {second_offset} (a message stored or delivered twice)",
            sighting(&ops[*first]),
            model.body(*body),
            sighting(&ops[*second]),
            model.body(*body),
        ),
        LogRule::TwoBodiesAtOffset {
            offset,
            first,
            first_body,
            second,
            second_body,
        } => format!(
            "two bodies at offset {offset}: {} {} there, {} {} (two replicas or two leaders \
             disagree on the log)",
            sighting(&ops[*first]),
            model.body(*first_body),
            sighting(&ops[*second]),
            model.body(*second_body),
        ),
        LogRule::ReadOfRefusedSend {
            pull,
            offset,
            body,
            send_index,
        } => format!(
            "pull #{} returned {} at offset {offset}, but its send #{send_index} was refused \
             (fail: definitely not applied)",
            id(*pull),
            model.body(*body)
        ),
        LogRule::ReadOfUnsentBody { pull, offset, body } => format!(
            "pull #{} returned {} at offset {offset}, which no client sent to this queue",
            id(*pull),
            model.body(*body)
        ),
        LogRule::PullOverMax { pull, count, max } => format!(
            "pull #{} returned {count} entries, more than the {max} it asked for",
            id(*pull)
        ),
        LogRule::Order { chain } => explain_order(chain, model, ops),
    }
}

fn sighting(op: &LogOp) -> String {
    match op.input {
        LogInput::Send { .. } => format!("send #{} was acknowledged with", op.index),
        LogInput::Pull { .. } => format!("pull #{} returned", op.index),
    }
}

/// How a pull constrains the log length when it read.
fn pull_saw(op: &LogOp) -> String {
    match (op.input, op.output) {
        (LogInput::Pull { offset, max }, Some(LogOutput::Pulled { count: 0, .. })) => {
            format!("returned nothing at offset {offset} (max {max}), so the log held at most {offset} entries")
        }
        (LogInput::Pull { offset, max }, Some(LogOutput::Pulled { count, .. })) if count < max => {
            format!(
                "returned {count} entries at offset {offset} (max {max}), so the log held exactly {} entries",
                offset + u64::from(count)
            )
        }
        (LogInput::Pull { offset, .. }, Some(LogOutput::Pulled { count, .. })) => format!(
            "returned entries through offset {}",
            offset + u64::from(count).saturating_sub(1)
        ),
        _ => "was pulled".to_string(),
    }
}

fn send_label(op: &LogOp, offset: u64) -> String {
    match op.output {
        Some(_) => format!("send #{} acknowledged at offset {offset}", op.index),
        None => format!(
            "send #{} (outcome unknown; a pull saw its entry at offset {offset})",
            op.index
        ),
    }
}

fn explain_order(chain: &[Node], model: &LogModel, ops: &[LogOp]) -> String {
    let (Some(&first), Some(&last)) = (chain.first(), chain.last()) else {
        return "an empty order chain".to_string();
    };
    let first_op = &ops[node_op(first)];
    let last_op = &ops[node_op(last)];
    let (called, returned) = (first_op.call_us, last_op.return_us);
    let through: Vec<String> = chain[1..chain.len() - 1]
        .iter()
        .filter_map(|node| match node {
            Node::Pull { op } => Some(format!("#{}", ops[*op].index)),
            Node::Send { .. } => None,
        })
        .collect();
    let main = match (first, last) {
        (Node::Pull { op }, Node::Send { offset, op: send }) => {
            let bound_offset = chain_offset_after(chain);
            let what = if Some(offset) == bound_offset {
                format!(
                    "{} returned at {returned} µs",
                    send_label(&ops[send], offset)
                )
            } else {
                format!(
                    "sends acknowledged before it was invoked put entries up to offset {offset} \
                     ({} returned at {returned} µs)",
                    send_label(&ops[send], offset)
                )
            };
            format!(
                "pull #{} {} when it read (invoked at {called} µs), but {what}",
                ops[op].index,
                pull_saw(&ops[op])
            )
        }
        (Node::Send { offset, op: send }, Node::Pull { op }) => {
            let entries = pull_saw(&ops[op]);
            let body = match ops[send].input {
                LogInput::Send { body } => model.body(body).to_string(),
                LogInput::Pull { .. } => String::new(),
            };
            format!(
                "pull #{} {entries}, which includes {body} at offset {offset}, but {} was \
                 invoked at {called} µs, after the pull returned at {returned} µs",
                ops[op].index,
                send_label(&ops[send], offset)
            )
        }
        (Node::Pull { op: later }, Node::Pull { op: earlier }) => format!(
            "a later pull saw a shorter log: pull #{} {} when it read (invoked at {called} µs), \
             but pull #{}, which returned earlier at {returned} µs, {}",
            ops[later].index,
            pull_saw(&ops[later]),
            ops[earlier].index,
            pull_saw(&ops[earlier])
        ),
        (
            Node::Send {
                offset: low,
                op: send,
            },
            Node::Send {
                offset: high,
                op: other,
            },
        ) => format!(
            "offsets contradict real-time order: {} was invoked at {called} µs, after {} \
             returned at {returned} µs",
            send_label(&ops[send], low),
            send_label(&ops[other], high)
        ),
    };
    if through.is_empty() {
        main
    } else {
        format!(
            "{main} (the order follows through pull {}, which fix the log's length when they \
             read)",
            through.join(", ")
        )
    }
}

/// The offset of the send right after the chain's first node, when that node is a pull.
fn chain_offset_after(chain: &[Node]) -> Option<u64> {
    match chain.get(1) {
        Some(Node::Send { offset, .. }) => Some(*offset),
        _ => None,
    }
}

fn node_op(node: Node) -> usize {
    match node {
        Node::Send { op, .. } | Node::Pull { op } => op,
    }
}
