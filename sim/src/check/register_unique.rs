//! Cas-register histories whose written values are unique, decided in O(n log n) without the
//! search (the search stays for what this leaves ambiguous).
//!
//! With distinct written values each read names its write, so a linearization is a sequence of
//! *runs*: the write of a value, then the reads of it (and failed cas operations), until the
//! next write. A run is contiguous in every linearization, so when an operation of run A returned
//! before an operation of run B was called, all of A precedes all of B. A successful cas `a -> b`
//! makes run b follow run a at once, so chains of cas join runs into *blocks* with a fixed inner
//! order. The question becomes a graph of blocks (Gibbons & Korach's zones; Lee & Mathur's
//! decrease-and-conquer for distinct values): block A must precede block B when the earliest
//! return in A comes before the latest call in B. The history is linearizable iff
//! - no block's inner order is contradicted by real time,
//! - the nil reads can come first,
//! - the block graph is acyclic (then any topological order works), and
//! - every failed cas `x -> _` can sit at a point where the register does not hold x.
//!
//! Operations with an unknown outcome take effect only when something observed them (their value
//! was read, or a cas succeeded from it); the others are put after everything else, where they
//! change nothing anyone saw. A failed cas that real time forces to one side of its value's run
//! constrains the graph like the run's own operations; one that could go either way is placed
//! last, after an order is found. Every `Linearizable` answer is checked by replaying the order
//! it found (the model and real time); every `Not` is derived from facts that hold in any
//! linearization, with the operations that show it. What the rules cannot place (a failed cas
//! that only another order would let escape its value's run, a cycle of cas) is `Open`.

use std::collections::{BTreeMap, BTreeSet};

use super::model::{Decided, Model, Op, Witness, NEVER_RETURNED_US};
use super::models::register::{RegisterInput, RegisterModel, RegisterOutput};

type RegisterOp = Op<RegisterInput, RegisterOutput>;

/// What an operation is to the decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// An unknown read: constrains nothing.
    Skip,
    Read(Option<i64>),
    /// Writes `value` when it takes effect; a cas also needs `from` just before.
    Writer {
        value: i64,
        from: Option<i64>,
        known: bool,
    },
    FailedCas {
        from: i64,
    },
}

fn role(op: &RegisterOp) -> Option<Role> {
    Some(match (&op.input, &op.output) {
        (RegisterInput::Read, None) => Role::Skip,
        (RegisterInput::Read, Some(RegisterOutput::Read { value })) => Role::Read(*value),
        (RegisterInput::Write { value }, None | Some(RegisterOutput::Written)) => Role::Writer {
            value: *value,
            from: None,
            known: op.output.is_some(),
        },
        (RegisterInput::Cas { from, to }, None | Some(RegisterOutput::Cas { ok: true })) => {
            Role::Writer {
                value: *to,
                from: Some(*from),
                known: op.output.is_some(),
            }
        }
        (RegisterInput::Cas { from, .. }, Some(RegisterOutput::Cas { ok: false })) => {
            Role::FailedCas { from: *from }
        }
        // An output of the wrong kind is never legal; the search reports it.
        _ => return None,
    })
}

/// The value a writer's cas expects (`None`: a plain write or not a writer).
fn role_from(role: &Role) -> Option<i64> {
    match role {
        Role::Writer { from, .. } => *from,
        _ => None,
    }
}

/// Rank of a value's writer in its block (value `k` of the chain); its reads are one above, a
/// failed cas forced before the writer one below.
fn writer_rank(k: usize) -> u32 {
    u32::try_from(4 * k + 1).expect("fewer than 2^30 values in a chain")
}

/// Why a failed cas was placed on one side of its value's run.
#[derive(Clone, Copy, Debug)]
struct Forced {
    /// The operation of the run that real time puts on the other side of the failed cas.
    reason: usize,
    /// True: the cas precedes the run's writer; false: it follows the run.
    before: bool,
}

/// Per block member (by rank): (latest call up to it, its member), (earliest return from it on,
/// its member).
type Summary = (Vec<(u64, usize)>, Vec<(u64, usize)>);

/// A member of a block: an operation at its rank, or a failed cas forced to one side of a run
/// (with only the half of its interval that constrains the others).
#[derive(Clone, Copy, Debug)]
struct Member {
    rank: u32,
    call_us: u64,
    return_us: u64,
    op: usize,
    forced: Option<Forced>,
}

#[derive(Clone, Debug, Default)]
struct Block {
    /// The values of the chain, in order (empty for the nil block).
    values: Vec<i64>,
    members: Vec<Member>,
}

impl Block {
    /// (earliest return, its member), (latest call, its member).
    fn zone(&self) -> ((u64, usize), (u64, usize)) {
        let earliest = self
            .members
            .iter()
            .enumerate()
            .map(|(member, item)| (item.return_us, member))
            .min()
            .unwrap_or((NEVER_RETURNED_US, 0));
        let latest = self
            .members
            .iter()
            .enumerate()
            .map(|(member, item)| (item.call_us, member))
            .max()
            .unwrap_or((0, 0));
        (earliest, latest)
    }
}

/// Decides a register part when its written values are unique (`Open(None)` when they are not).
pub fn decide_unique(ops: &[RegisterOp]) -> Decided {
    let mut roles = Vec::with_capacity(ops.len());
    for op in ops {
        match role(op) {
            Some(role) => roles.push(role),
            None => return Decided::Open(None),
        }
    }
    let mut writer_of: BTreeMap<i64, usize> = BTreeMap::new();
    for (position, role) in roles.iter().enumerate() {
        if let Role::Writer { value, .. } = role {
            if writer_of.insert(*value, position).is_some() {
                return Decided::Open(None);
            }
        }
    }
    Decision::new(ops, roles, writer_of).run()
}

/// The state of one decision.
struct Decision<'a> {
    ops: &'a [RegisterOp],
    roles: Vec<Role>,
    writer_of: BTreeMap<i64, usize>,
    /// Writers that take effect (known ones, and unknown ones something observed).
    used: Vec<bool>,
    blocks: Vec<Block>,
    /// Value -> (block, index in its chain).
    place: BTreeMap<i64, (usize, usize)>,
    /// For an unknown writer that takes effect: the operation that observed its value.
    because: Vec<Option<usize>>,
}

type Step<T> = Result<T, Decided>;

/// Orders tried with more blocks made urgent before a trapped failed cas is left to the search.
const URGENT_ROUNDS_MAX: usize = 8;

/// A failed cas that the order found leaves inside its value's run.
#[derive(Clone, Copy, Debug)]
struct Trap {
    position: usize,
    from: i64,
}

impl<'a> Decision<'a> {
    fn new(ops: &'a [RegisterOp], roles: Vec<Role>, writer_of: BTreeMap<i64, usize>) -> Self {
        Decision {
            used: vec![false; ops.len()],
            because: vec![None; ops.len()],
            ops,
            roles,
            writer_of,
            blocks: Vec::new(),
            place: BTreeMap::new(),
        }
    }

    fn run(mut self) -> Decided {
        match self.decide() {
            Ok(()) => Decided::Linearizable,
            Err(decided) => decided,
        }
    }

    fn decide(&mut self) -> Step<()> {
        self.mark_used()?;
        self.build_blocks()?;
        for block in 0..self.blocks.len() {
            self.check_inner(block)?;
        }
        let free = self.force_failed_cas()?;
        self.check_nil_first()?;
        // Blocks whose value traps a failed cas in the order found go as early as real time
        // lets them, and the order is tried again (a priority only: it adds no constraint).
        let mut urgent: BTreeSet<usize> = BTreeSet::new();
        loop {
            let order = self.block_order(&urgent)?;
            let trap = match self.sequence(&order, &free) {
                Ok(sequence) if self.replays(&sequence) => return Ok(()),
                Ok(_) => {
                    return Err(Decided::Open(Some(
                        "the order the rules found does not replay (failed cas operations \
                         whose places depend on each other)"
                            .to_string(),
                    )))
                }
                Err(trap) => trap,
            };
            if let Some(not) = self.stuck_in_run(trap.position, trap.from) {
                return Err(not);
            }
            let block = self.place.get(&trap.from).map(|&(block, _)| block);
            match block {
                Some(block) if urgent.len() < URGENT_ROUNDS_MAX && urgent.insert(block) => {}
                _ => {
                    return Err(Decided::Open(Some(format!(
                        "cas #{} failed while the register may have held {}; whether it could \
                         run outside that value's run depends on the order of other operations",
                        self.ops[trap.position].index, trap.from
                    ))))
                }
            }
        }
    }

    fn describe(&self, position: usize) -> String {
        let op = &self.ops[position];
        format!(
            "{} (#{})",
            RegisterModel.describe_op(&op.input, op.output.as_ref()),
            op.index
        )
    }

    /// A NOT with its witness: `positions` and `culprit`, plus what made each unknown writer
    /// among them take effect (without it, the writer could simply never have happened).
    fn not(&self, mut positions: Vec<usize>, culprit: usize, rule: String) -> Decided {
        positions.push(culprit);
        let mut cursor = 0;
        while cursor < positions.len() {
            if let Some(cause) = self.because[positions[cursor]] {
                if !positions.contains(&cause) {
                    positions.push(cause);
                }
            }
            cursor += 1;
        }
        let mut indices: Vec<usize> = positions.iter().map(|&at| self.ops[at].index).collect();
        indices.sort_unstable();
        indices.dedup();
        Decided::Not(Witness {
            ops: indices,
            culprit: self.ops[culprit].index,
            rule,
        })
    }

    /// Marks the writers that take effect: known ones, and unknown ones whose value was observed
    /// (read, or a taking-effect cas succeeded from it), transitively. A value observed with no
    /// writer at all is a ghost.
    fn mark_used(&mut self) -> Step<()> {
        // (value, the operation that needs it); `because[writer]`: what made an unknown writer
        // take effect.
        let mut pending: Vec<(i64, usize)> = Vec::new();
        for (position, role) in self.roles.iter().enumerate() {
            match *role {
                Role::Read(Some(value)) => pending.push((value, position)),
                Role::Writer {
                    known: true, from, ..
                } => {
                    self.used[position] = true;
                    if let Some(from) = from {
                        pending.push((from, position));
                    }
                }
                _ => {}
            }
        }
        while let Some((value, observer)) = pending.pop() {
            let Some(&writer) = self.writer_of.get(&value) else {
                let mut chain = Vec::new();
                let mut cursor = self.because[observer];
                while let Some(cause) = cursor {
                    chain.push(cause);
                    cursor = self.because[cause];
                }
                let seen = chain
                    .last()
                    .map(|&first| format!(" (it took effect: {} needs it)", self.describe(first)))
                    .unwrap_or_default();
                let rule = format!(
                    "{}{seen} needs the register to hold {value}, but no operation writes {value}",
                    self.describe(observer)
                );
                return Err(self.not(chain, observer, rule));
            };
            if self.used[writer] {
                continue;
            }
            self.used[writer] = true;
            self.because[writer] = Some(observer);
            if let Role::Writer {
                from: Some(from), ..
            } = self.roles[writer]
            {
                pending.push((from, writer));
            }
        }
        Ok(())
    }

    /// Chains of runs joined by taking-effect cas operations, each a block; the nil reads form
    /// block 0.
    fn build_blocks(&mut self) -> Step<()> {
        // from value -> the cas that follows it.
        let mut next: BTreeMap<i64, usize> = BTreeMap::new();
        let mut starts: Vec<i64> = Vec::new();
        let mut segments = 0usize;
        for (position, role) in self.roles.iter().enumerate() {
            let Role::Writer { value, from, .. } = *role else {
                continue;
            };
            if !self.used[position] {
                continue;
            }
            segments += 1;
            let Some(from) = from else {
                starts.push(value);
                continue;
            };
            if from == value {
                return Err(Decided::Open(Some(format!(
                    "cas #{} writes the value it expects",
                    self.ops[position].index
                ))));
            }
            if let Some(&other) = next.get(&from) {
                let writer = self.writer_of[&from];
                let rule = format!(
                    "{} and {} both changed {from} to another value, but {from} is written only \
                     once, by {}, so only one of them can follow it",
                    self.describe(other),
                    self.describe(position),
                    self.describe(writer)
                );
                return Err(self.not(vec![other, writer], position, rule));
            }
            next.insert(from, position);
        }
        self.blocks.push(Block::default());
        starts.sort_by_key(|value| self.writer_of[value]);
        for start in starts {
            let block = self.blocks.len();
            let mut values = vec![start];
            while let Some(&cas) = next.get(values.last().expect("a chain has a value")) {
                let Role::Writer { value, .. } = self.roles[cas] else {
                    unreachable!("next holds writers");
                };
                values.push(value);
            }
            for (k, &value) in values.iter().enumerate() {
                self.place.insert(value, (block, k));
            }
            self.blocks.push(Block {
                values,
                members: Vec::new(),
            });
        }
        if self.place.len() < segments {
            return Err(Decided::Open(Some(
                "successful cas operations form a cycle of values".to_string(),
            )));
        }
        for (position, role) in self.roles.iter().enumerate() {
            let op = &self.ops[position];
            let (block, rank) = match *role {
                Role::Read(None) => (0, 2),
                Role::Read(Some(value)) => {
                    let (block, k) = self.place[&value];
                    (block, writer_rank(k) + 1)
                }
                Role::Writer { value, .. } if self.used[position] => {
                    let (block, k) = self.place[&value];
                    (block, writer_rank(k))
                }
                _ => continue,
            };
            self.blocks[block].members.push(Member {
                rank,
                call_us: op.call_us,
                return_us: op.return_us,
                op: position,
                forced: None,
            });
        }
        for block in &mut self.blocks {
            block
                .members
                .sort_by_key(|member| (member.rank, member.call_us, member.return_us, member.op));
        }
        Ok(())
    }

    /// Names a block by its values.
    fn block_name(&self, block: usize) -> String {
        let values = &self.blocks[block].values;
        if values.is_empty() {
            return "nil (the initial value)".to_string();
        }
        values
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(" -> ")
    }

    /// Describes a member, saying why a forced failed cas sits where it does.
    fn describe_member(&self, block: usize, member: usize) -> (String, Vec<usize>) {
        let item = self.blocks[block].members[member];
        let Some(forced) = item.forced else {
            return (self.describe(item.op), vec![item.op]);
        };
        let side = if forced.before {
            "before the run of the value it expects, because"
        } else {
            "after the run of the value it expects, because"
        };
        let how = if forced.before {
            "was invoked after it completed"
        } else {
            "completed before it was invoked"
        };
        (
            format!(
                "{} (it failed, so it ran {side} {} {how})",
                self.describe(item.op),
                self.describe(forced.reason)
            ),
            vec![item.op, forced.reason],
        )
    }

    /// The index in its block's chain of the value whose run holds `rank`.
    fn value_index(&self, block: usize, rank: u32) -> usize {
        let values = self.blocks[block].values.len();
        usize::try_from(rank / 4)
            .expect("ranks fit")
            .min(values.saturating_sub(1))
    }

    /// The writers of a block's values whose runs hold the ranks `low..=high`: they fix the
    /// order inside the block.
    fn chain_between(&self, block: usize, low: u32, high: u32) -> Vec<usize> {
        let values = &self.blocks[block].values;
        if values.is_empty() {
            return Vec::new();
        }
        (self.value_index(block, low)..=self.value_index(block, high))
            .map(|k| self.writer_of[&values[k]])
            .collect()
    }

    /// Real time must not contradict a block's inner order: no member returned before a member
    /// of a lower rank was called.
    fn check_inner(&self, block: usize) -> Step<()> {
        let members = &self.blocks[block].members;
        // Members are sorted by rank; scan from the top, keeping the earliest return of the
        // ranks above and of the rank being scanned.
        let mut earliest_above: Option<(u64, usize)> = None;
        let mut earliest_here: Option<(u64, usize)> = None;
        let mut rank_here = None;
        for (member, item) in members.iter().enumerate().rev() {
            if rank_here != Some(item.rank) {
                earliest_above = match (earliest_above, earliest_here) {
                    (Some(above), Some(here)) => Some(above.min(here)),
                    (above, here) => above.or(here),
                };
                earliest_here = None;
                rank_here = Some(item.rank);
            }
            if let Some((return_us, above)) = earliest_above {
                if return_us < item.call_us {
                    return Err(self.inner_violation(block, above, member));
                }
            }
            let candidate = (item.return_us, member);
            earliest_here = Some(earliest_here.map_or(candidate, |best| best.min(candidate)));
        }
        Ok(())
    }

    fn inner_violation(&self, block: usize, above: usize, below: usize) -> Decided {
        let members = &self.blocks[block].members;
        let (late, mut positions) = self.describe_member(block, above);
        let (early, below_positions) = self.describe_member(block, below);
        positions.extend(below_positions);
        positions.extend(self.chain_between(block, members[below].rank, members[above].rank));
        let culprit = members[above].op;
        let rule = if self.blocks[block].values.len() > 1 {
            format!(
                "{late} completed before {early} was invoked, but the register held these \
                 values in this order (each cas follows the value it expects at once): {}",
                self.block_name(block)
            )
        } else {
            format!("{late} completed before {early} was invoked, but must follow it")
        };
        self.not(positions, culprit, rule)
    }

    /// Per block: members by rank with the latest call up to each and the earliest return from
    /// each on.
    fn prefix_suffix(block: &Block) -> Summary {
        let mut latest_call: Vec<(u64, usize)> = Vec::with_capacity(block.members.len());
        for (member, item) in block.members.iter().enumerate() {
            let here = (item.call_us, member);
            latest_call.push(latest_call.last().map_or(here, |&best| best.max(here)));
        }
        let mut earliest_return: Vec<(u64, usize)> = vec![(0, 0); block.members.len()];
        let mut best: Option<(u64, usize)> = None;
        for (member, item) in block.members.iter().enumerate().rev() {
            let here = (item.return_us, member);
            let chosen = best.map_or(here, |best| best.min(here));
            earliest_return[member] = chosen;
            best = Some(chosen);
        }
        (latest_call, earliest_return)
    }

    /// Places every failed cas that real time forces to one side of its value's run (as a block
    /// member); a cas trapped inside the run is a NOT. Returns the cas operations left free.
    fn force_failed_cas(&mut self) -> Step<Vec<usize>> {
        let summaries: Vec<_> = self.blocks.iter().map(Self::prefix_suffix).collect();
        let mut free = Vec::new();
        let mut forced: Vec<(usize, Member)> = Vec::new();
        for (position, role) in self.roles.iter().enumerate() {
            let Role::FailedCas { from } = *role else {
                continue;
            };
            let Some(&(block, k)) = self.place.get(&from) else {
                free.push(position);
                continue;
            };
            let op = &self.ops[position];
            let members = &self.blocks[block].members;
            let (latest_call, earliest_return) = &summaries[block];
            // A member at or after the value's writer that returned before the cas was called.
            let from_writer = members.partition_point(|member| member.rank < writer_rank(k));
            let after = earliest_return
                .get(from_writer)
                .filter(|&&(return_us, _)| return_us < op.call_us)
                .map(|&(_, member)| member);
            // A member up to the next value's writer that was called after the cas returned.
            let to_next = members.partition_point(|member| member.rank <= writer_rank(k + 1));
            let before = to_next
                .checked_sub(1)
                .map(|last| latest_call[last])
                .filter(|&(call_us, _)| call_us > op.return_us)
                .map(|(_, member)| member);
            match (after, before) {
                (Some(after), Some(before)) => {
                    let (a, b) = (members[after].op, members[before].op);
                    let writer = self.writer_of[&from];
                    let rule = format!(
                        "{} failed, so the register did not hold {from} when it took effect, but \
                         it held {from} throughout: {} completed before it was invoked, and {} \
                         was invoked after it completed",
                        self.describe(position),
                        self.describe(a),
                        self.describe(b)
                    );
                    return Err(self.not(vec![a, b, writer], position, rule));
                }
                (Some(after), None) => {
                    let values = self.blocks[block].values.len();
                    let rank = if k + 1 < values {
                        writer_rank(k + 1) + 1
                    } else {
                        writer_rank(values) + 2
                    };
                    forced.push((
                        block,
                        Member {
                            rank,
                            call_us: 0,
                            return_us: op.return_us,
                            op: position,
                            forced: Some(Forced {
                                reason: members[after].op,
                                before: false,
                            }),
                        },
                    ));
                }
                (None, Some(before)) => forced.push((
                    block,
                    Member {
                        rank: writer_rank(k) - 1,
                        call_us: op.call_us,
                        return_us: NEVER_RETURNED_US,
                        op: position,
                        forced: Some(Forced {
                            reason: members[before].op,
                            before: true,
                        }),
                    },
                )),
                (None, None) => free.push(position),
            }
        }
        for (block, member) in forced {
            self.blocks[block].members.push(member);
        }
        for block in &mut self.blocks {
            block
                .members
                .sort_by_key(|member| (member.rank, member.call_us, member.return_us, member.op));
        }
        Ok(free)
    }

    /// The nil reads come before every write: no other member may return before one is called.
    fn check_nil_first(&self) -> Step<()> {
        if self.blocks[0].members.is_empty() {
            return Ok(());
        }
        let (_, (latest_nil_us, nil_read)) = self.blocks[0].zone();
        let earliest = (1..self.blocks.len())
            .filter(|&block| !self.blocks[block].members.is_empty())
            .map(|block| (self.blocks[block].zone().0, block))
            .min();
        let Some(((return_us, member), block)) = earliest else {
            return Ok(());
        };
        if return_us >= latest_nil_us {
            return Ok(());
        }
        let (early, mut positions) = self.describe_member(block, member);
        let values = &self.blocks[block].values;
        let index = self.value_index(block, self.blocks[block].members[member].rank);
        positions.push(self.writer_of[&values[index]]);
        let read = self.blocks[0].members[nil_read].op;
        let rule = format!(
            "{} returned nil, but {early} completed before it was invoked, after a write of {} \
             (nothing writes nil)",
            self.describe(read),
            values[index]
        );
        Err(self.not(positions, read, rule))
    }

    /// A topological order of the blocks other than nil (block A before B when A's earliest
    /// return precedes B's latest call), or the two blocks that must each precede the other.
    fn block_order(&self, urgent: &BTreeSet<usize>) -> Step<Vec<usize>> {
        let zones: Vec<_> = self.blocks.iter().map(Block::zone).collect();
        let mut by_return: BTreeSet<(u64, usize)> = BTreeSet::new();
        let mut by_call: BTreeSet<(u64, usize)> = BTreeSet::new();
        let mut urgent_by_call: BTreeSet<(u64, usize)> = BTreeSet::new();
        for (block, ((return_us, _), (call_us, _))) in zones.iter().enumerate().skip(1) {
            by_return.insert((*return_us, block));
            by_call.insert((*call_us, block));
            if urgent.contains(&block) {
                urgent_by_call.insert((*call_us, block));
            }
        }
        let mut order = Vec::with_capacity(self.blocks.len());
        while let Some(&(first_return, first)) = by_return.first() {
            let second_return = by_return
                .iter()
                .nth(1)
                .map_or(NEVER_RETURNED_US, |&(return_us, _)| return_us);
            // A source: its latest call is not after any other block's earliest return. Of the
            // sources, the one whose latest call is earliest, if it is one (it leaves the most room to
            // the failed cas placed afterwards), else the one returning first.
            let earliest_return_but = |block: usize| {
                if block == first {
                    second_return
                } else {
                    first_return
                }
            };
            let &(latest_call, earliest) = by_call.first().expect("as many as by_return");
            let other = by_call.iter().find(|&&(_, block)| block != first).copied();
            let urgent_first = urgent_by_call.first().copied();
            let source = match other {
                _ if urgent_first
                    .is_some_and(|(call_us, block)| call_us <= earliest_return_but(block)) =>
                {
                    urgent_first.expect("checked").1
                }
                _ if latest_call <= earliest_return_but(earliest) => earliest,
                _ if zones[first].1 .0 <= second_return => first,
                Some((call_us, block)) if call_us <= first_return => block,
                _ => {
                    let second = by_return.iter().nth(1).expect("no source: two blocks").1;
                    return Err(self.cycle(first, second));
                }
            };
            by_return.remove(&(zones[source].0 .0, source));
            by_call.remove(&(zones[source].1 .0, source));
            urgent_by_call.remove(&(zones[source].1 .0, source));
            order.push(source);
        }
        Ok(order)
    }

    fn cycle(&self, first: usize, second: usize) -> Decided {
        let zone = |block: usize| self.blocks[block].zone();
        let ((_, first_early), (_, first_late)) = zone(first);
        let ((_, second_early), (_, second_late)) = zone(second);
        let mut positions = Vec::new();
        let mut text = |block: usize, member: usize| {
            let (text, members) = self.describe_member(block, member);
            positions.extend(members);
            text
        };
        let (a, b) = (text(first, first_early), text(second, second_late));
        let (c, d) = (text(second, second_early), text(first, first_late));
        for (block, low, high) in [
            (first, first_early, first_late),
            (second, second_early, second_late),
        ] {
            let members = &self.blocks[block].members;
            let (low, high) = (members[low].rank, members[high].rank);
            positions.extend(self.chain_between(block, low.min(high), low.max(high)));
        }
        let culprit = self.blocks[first].members[first_late].op;
        let rule = format!(
            "the register held {} and {} each before the other: {a} completed before {b} was \
             invoked, and {c} completed before {d} was invoked",
            self.block_name(first),
            self.block_name(second),
        );
        self.not(positions, culprit, rule)
    }

    /// The blocks' operations in order, the failed cas operations where the register does not
    /// hold their value, then the unknown writers nothing observed (at the end they change
    /// nothing anyone saw, except those put at the end of a run so that a failed cas can follow).
    fn sequence(&self, order: &[usize], free: &[usize]) -> Result<Vec<usize>, Trap> {
        let sequence: Vec<usize> = std::iter::once(0)
            .chain(order.iter().copied())
            .flat_map(|block| {
                self.blocks[block]
                    .members
                    .iter()
                    .filter(|member| member.forced.is_none())
                    .map(|member| member.op)
            })
            .collect();
        let mut failed: Vec<usize> = free.to_vec();
        failed.extend(
            self.blocks
                .iter()
                .flat_map(|block| block.members.iter())
                .filter(|member| member.forced.is_some())
                .map(|member| member.op),
        );
        // The value after each position, and the next writer at or after each position.
        let mut value_after = Vec::with_capacity(sequence.len());
        let mut value = None;
        for &position in &sequence {
            if let Role::Writer { value: written, .. } = self.roles[position] {
                value = Some(written);
            }
            value_after.push(value);
        }
        let mut next_writer = vec![sequence.len(); sequence.len() + 1];
        for at in (0..sequence.len()).rev() {
            next_writer[at] = if matches!(self.roles[sequence[at]], Role::Writer { .. }) {
                at
            } else {
                next_writer[at + 1]
            };
        }
        let (by_return, latest_position) = prefix_latest(self.ops, &sequence);
        let (by_call, earliest_position) = suffix_earliest(self.ops, &sequence);
        // The first gap after every operation of `sequence` that returned before `call_us`.
        let first_gap_after = |call_us: u64| {
            let preceding = by_return.partition_point(|&return_us| return_us < call_us);
            preceding
                .checked_sub(1)
                .map_or(0, |last| latest_position[last] + 1)
        };
        let mut spare = Spare::new(self);
        // In call order, so that a failed cas that returned before another was called is
        // placed first and the other never goes before it.
        failed.sort_by_key(|&position| (self.ops[position].call_us, position));
        let mut failed_by_return: Vec<(u64, usize)> = failed
            .iter()
            .enumerate()
            .map(|(rank, &position)| (self.ops[position].return_us, rank))
            .collect();
        failed_by_return.sort_unstable();
        let mut returned = 0;
        let mut latest_failed_gap = 0;
        let mut gaps = vec![0; failed.len()];
        // (gap, 0 for an unknown writer put at a run's end and 1 for a failed cas, call, op).
        let mut placed: Vec<(usize, u8, u64, usize)> = Vec::with_capacity(failed.len());
        for (rank, &position) in failed.iter().enumerate() {
            let Role::FailedCas { from } = self.roles[position] else {
                unreachable!("failed holds failed cas operations");
            };
            let op = &self.ops[position];
            while returned < failed_by_return.len() && failed_by_return[returned].0 < op.call_us {
                latest_failed_gap = latest_failed_gap.max(gaps[failed_by_return[returned].1]);
                returned += 1;
            }
            let first_gap = first_gap_after(op.call_us).max(latest_failed_gap);
            let following = by_call.partition_point(|&call_us| call_us <= op.return_us);
            let last_gap = earliest_position
                .get(following)
                .copied()
                .unwrap_or(sequence.len());
            let holds = first_gap > 0 && value_after[first_gap - 1] == Some(from);
            let mut gap = if holds {
                next_writer[first_gap] + 1
            } else {
                first_gap
            };
            if gap > last_gap && holds {
                // An unknown writer nothing observed may end the run just before the next one.
                let end = next_writer[first_gap];
                let writer = (end <= last_gap)
                    .then(|| spare.at_end_of_run(end, from, op.return_us, &first_gap_after))
                    .flatten();
                if let Some((writer, new)) = writer {
                    if new {
                        placed.push((end, 0, self.ops[writer].call_us, writer));
                    }
                    gap = end;
                }
            }
            if gap > last_gap {
                return Err(Trap { position, from });
            }
            gaps[rank] = gap;
            placed.push((gap, 1, op.call_us, position));
        }
        placed.sort_unstable();
        let mut merged = Vec::with_capacity(self.ops.len());
        let mut placed = placed.into_iter().peekable();
        for (at, &position) in sequence.iter().enumerate() {
            while let Some((_, _, _, failed)) = placed.next_if(|&(gap, ..)| gap == at) {
                merged.push(failed);
            }
            merged.push(position);
        }
        merged.extend(placed.map(|(_, _, _, failed)| failed));
        merged.extend(spare.left());
        Ok(merged)
    }

    /// A NOT for a failed cas `from -> _` that real time puts after `from`'s writer when no
    /// operation could end `from`'s run before the cas completed; `None` when one could.
    fn stuck_in_run(&self, position: usize, from: i64) -> Option<Decided> {
        let op = &self.ops[position];
        let writer = *self.writer_of.get(&from)?;
        let &(block, k) = self.place.get(&from)?;
        let after = self.blocks[block]
            .members
            .iter()
            .filter(|member| member.forced.is_none() && member.rank >= writer_rank(k))
            .map(|member| (member.return_us, member.op))
            .min()
            .filter(|&(return_us, _)| return_us < op.call_us)?
            .1;
        let earlier: BTreeSet<usize> = self.blocks[block].values[..k]
            .iter()
            .map(|value| self.writer_of[value])
            .collect();
        // While the register holds `from`, only a write or a cas from `from` can change it.
        let could_overwrite = self.roles.iter().enumerate().any(|(other, role)| {
            matches!(role, Role::Writer { .. })
                && role_from(role).is_none_or(|expects| expects == from)
                && other != writer
                && !earlier.contains(&other)
                && self.ops[other].call_us <= op.return_us
                && self.ops[other].return_us >= self.ops[writer].call_us
        });
        if could_overwrite {
            return None;
        }
        let rule = format!(
            "{} failed, so the register no longer held {from} when it took effect; but {} \
             completed before it was invoked, so it took effect after {}, and no operation that \
             could overwrite {from} was invoked before it completed",
            self.describe(position),
            self.describe(after),
            self.describe(writer)
        );
        Some(self.not(vec![after, writer], position, rule))
    }

    /// True when `sequence` holds every operation but the unknown reads, respects real time, and
    /// the model accepts every output in that order.
    fn replays(&self, sequence: &[usize]) -> bool {
        let expected = self
            .roles
            .iter()
            .filter(|role| **role != Role::Skip)
            .count();
        if sequence.len() != expected {
            return false;
        }
        let (returns, latest_position) = prefix_latest(self.ops, sequence);
        let mut model = RegisterModel;
        let mut state = model.init();
        let mut next = Vec::with_capacity(1);
        for (at, &position) in sequence.iter().enumerate() {
            let op = &self.ops[position];
            let preceding = returns.partition_point(|&return_us| return_us < op.call_us);
            if preceding > 0 && latest_position[preceding - 1] >= at {
                return false;
            }
            next.clear();
            model.step(&state, &op.input, op.output.as_ref(), &mut next);
            let Some(&after) = next.first() else {
                return false;
            };
            state = after;
        }
        true
    }
}

/// The unknown writers nothing observed, to put at the end of a run when a failed cas needs the
/// run to end: plain writes by call time, and cas operations by the value they expect.
struct Spare<'a> {
    roles: &'a [Role],
    writes: BTreeSet<(u64, usize)>,
    cas: BTreeMap<i64, BTreeSet<(u64, usize)>>,
    /// Gap -> the writer put there (call, op).
    put: BTreeMap<usize, (u64, usize)>,
}

impl<'a> Spare<'a> {
    fn new(decision: &'a Decision<'_>) -> Spare<'a> {
        let mut spare = Spare {
            roles: &decision.roles,
            writes: BTreeSet::new(),
            cas: BTreeMap::new(),
            put: BTreeMap::new(),
        };
        for (position, role) in decision.roles.iter().enumerate() {
            if let (Role::Writer { from, .. }, false) = (role, decision.used[position]) {
                let entry = (decision.ops[position].call_us, position);
                match from {
                    None => spare.writes.insert(entry),
                    Some(from) => spare.cas.entry(*from).or_default().insert(entry),
                };
            }
        }
        spare
    }

    /// A writer at gap `end` (the end of `from`'s run) whose value is not `from`, for a failed
    /// cas that returned at `by_us`: the one put there already, or the earliest-called spare one
    /// that may take effect there (a write, or a cas from `from`, called by `by_us`); true when
    /// it was put there now.
    fn at_end_of_run(
        &mut self,
        end: usize,
        from: i64,
        by_us: u64,
        first_gap_after: &dyn Fn(u64) -> usize,
    ) -> Option<(usize, bool)> {
        let written = |position: usize| match self.roles[position] {
            Role::Writer { value, .. } => value,
            _ => unreachable!("spare operations are writers"),
        };
        if let Some(&(call_us, writer)) = self.put.get(&end) {
            return (written(writer) != from && call_us <= by_us).then_some((writer, false));
        }
        let write = self.writes.first().copied();
        let cas = self.cas.get(&from).and_then(|list| list.first().copied());
        let (call_us, writer) = write.into_iter().chain(cas).min()?;
        if call_us > by_us || first_gap_after(call_us) > end || written(writer) == from {
            return None;
        }
        if !self.writes.remove(&(call_us, writer)) {
            if let Some(list) = self.cas.get_mut(&from) {
                list.remove(&(call_us, writer));
            }
        }
        self.put.insert(end, (call_us, writer));
        Some((writer, true))
    }

    /// The spare writers not put anywhere, by call time.
    fn left(self) -> impl Iterator<Item = usize> {
        let mut left: Vec<(u64, usize)> = self
            .writes
            .into_iter()
            .chain(self.cas.into_values().flatten())
            .collect();
        left.sort_unstable();
        left.into_iter().map(|(_, position)| position)
    }
}

/// The returns of `sequence`'s operations, sorted, and for each prefix of that order the latest
/// position in `sequence` among them.
fn prefix_latest(ops: &[RegisterOp], sequence: &[usize]) -> (Vec<u64>, Vec<usize>) {
    let mut by_return: Vec<(u64, usize)> = sequence
        .iter()
        .enumerate()
        .map(|(at, &position)| (ops[position].return_us, at))
        .collect();
    by_return.sort_unstable();
    let mut latest = 0;
    let positions = by_return
        .iter()
        .map(|&(_, at)| {
            latest = latest.max(at);
            latest
        })
        .collect();
    (
        by_return.into_iter().map(|(at_us, _)| at_us).collect(),
        positions,
    )
}

/// The calls of `sequence`'s operations, sorted, and for each suffix of that order the earliest
/// position in `sequence` among them.
fn suffix_earliest(ops: &[RegisterOp], sequence: &[usize]) -> (Vec<u64>, Vec<usize>) {
    let mut by_call: Vec<(u64, usize)> = sequence
        .iter()
        .enumerate()
        .map(|(at, &position)| (ops[position].call_us, at))
        .collect();
    by_call.sort_unstable();
    let mut earliest = vec![0; by_call.len()];
    let mut best = usize::MAX;
    for (rank, &(_, at)) in by_call.iter().enumerate().rev() {
        best = best.min(at);
        earliest[rank] = best;
    }
    (
        by_call.into_iter().map(|(at_us, _)| at_us).collect(),
        earliest,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(
        index: usize,
        call_us: u64,
        return_us: Option<u64>,
        input: RegisterInput,
        output: Option<RegisterOutput>,
    ) -> RegisterOp {
        Op {
            index,
            client: u32::try_from(index).expect("small"),
            call_us,
            return_us: return_us.unwrap_or(NEVER_RETURNED_US),
            input,
            output,
        }
    }

    fn write(index: usize, call_us: u64, return_us: u64, value: i64) -> RegisterOp {
        let output = Some(RegisterOutput::Written);
        op(
            index,
            call_us,
            Some(return_us),
            RegisterInput::Write { value },
            output,
        )
    }

    fn read(index: usize, call_us: u64, return_us: u64, value: Option<i64>) -> RegisterOp {
        let output = Some(RegisterOutput::Read { value });
        op(index, call_us, Some(return_us), RegisterInput::Read, output)
    }

    fn cas(
        index: usize,
        call_us: u64,
        return_us: Option<u64>,
        from: i64,
        to: i64,
        ok: Option<bool>,
    ) -> RegisterOp {
        let output = ok.map(|ok| RegisterOutput::Cas { ok });
        op(
            index,
            call_us,
            return_us,
            RegisterInput::Cas { from, to },
            output,
        )
    }

    fn not(decided: Decided) -> Witness {
        match decided {
            Decided::Not(witness) => witness,
            other => panic!("expected NOT, got {other:?}"),
        }
    }

    #[test]
    fn overlapping_writes_in_either_order() {
        // Why: the basic case the search found exponential: concurrent unique writes, each read
        // naming its write; the rules must find the one order that fits the reads.
        let ops = [
            write(0, 0, 10, 1),
            write(1, 0, 10, 2),
            read(2, 11, 12, Some(1)),
            read(3, 13, 14, Some(1)),
        ];
        assert_eq!(decide_unique(&ops), Decided::Linearizable);
    }

    #[test]
    fn two_runs_that_must_precede_each_other() {
        // Why: the cycle rule: 1's run must come before 2's (read 1 returned before write 2 was
        // called... through read 2) and after it.
        let ops = [
            write(0, 0, 5, 1),
            write(1, 0, 5, 2),
            read(2, 6, 7, Some(1)),
            read(3, 6, 7, Some(2)),
            read(4, 8, 9, Some(1)),
        ];
        let witness = not(decide_unique(&ops));
        assert!(
            witness.rule.starts_with("the register held "),
            "{}",
            witness.rule
        );
        assert!(
            witness.rule.contains("each before the other"),
            "{}",
            witness.rule
        );
        assert_eq!(witness.ops, vec![0, 1, 3, 4]);
    }

    #[test]
    fn repeated_values_are_left_to_the_search() {
        // Why: the rules rely on each read naming one write.
        let ops = [write(0, 0, 5, 1), write(1, 6, 7, 1), read(2, 8, 9, Some(1))];
        assert_eq!(decide_unique(&ops), Decided::Open(None));
    }

    #[test]
    fn a_failed_cas_trapped_in_its_value_run() {
        // Why: cas(1, 9) failed, yet 1 was held from before its call until after its return.
        let ops = [
            write(0, 0, 1, 1),
            read(1, 2, 3, Some(1)),
            cas(2, 4, Some(5), 1, 9, Some(false)),
            read(3, 6, 7, Some(1)),
        ];
        let witness = not(decide_unique(&ops));
        assert_eq!(witness.culprit, 2);
        // Write 1 completing before the cas began is enough for the first half.
        assert_eq!(witness.ops, vec![0, 2, 3]);
        assert!(
            witness.rule.contains("it held 1 throughout"),
            "{}",
            witness.rule
        );
    }

    #[test]
    fn a_failed_cas_after_the_run_needs_a_later_write() {
        // Why: cas(1, 9) ran after write 1 completed; it failed only if something overwrote 1
        // by then: nothing could (NOT), a concurrent write could (yes), and an unknown write
        // nobody saw may be that something.
        let stuck = [write(0, 0, 1, 1), cas(1, 4, Some(5), 1, 9, Some(false))];
        let witness = not(decide_unique(&stuck));
        assert_eq!(witness.ops, vec![0, 1]);
        assert!(
            witness.rule.contains("no operation that could overwrite 1"),
            "{}",
            witness.rule
        );
        let overwritten = [
            write(0, 0, 1, 1),
            cas(1, 4, Some(5), 1, 9, Some(false)),
            write(2, 3, 8, 2),
        ];
        assert_eq!(decide_unique(&overwritten), Decided::Linearizable);
        let unknown = [
            write(0, 0, 1, 1),
            cas(1, 4, Some(5), 1, 9, Some(false)),
            op(2, 2, None, RegisterInput::Write { value: 2 }, None),
        ];
        assert_eq!(decide_unique(&unknown), Decided::Linearizable);
        // A cas from another value cannot end the run of 1.
        let other_cas = [
            write(0, 0, 1, 1),
            cas(1, 4, Some(5), 1, 9, Some(false)),
            cas(2, 2, None, 7, 8, None),
        ];
        not(decide_unique(&other_cas));
    }

    #[test]
    fn cas_chains_fix_the_order_inside_a_block() {
        // Why: cas(1, 2) takes effect right after 1's run; a read of 1 that starts after a read
        // of 2 returned contradicts the chain.
        let chained = [
            write(0, 0, 1, 1),
            read(1, 2, 3, Some(1)),
            cas(2, 4, Some(5), 1, 2, Some(true)),
            read(3, 6, 7, Some(2)),
        ];
        assert_eq!(decide_unique(&chained), Decided::Linearizable);
        let contradicted = [
            write(0, 0, 1, 1),
            cas(1, 2, Some(5), 1, 2, Some(true)),
            read(2, 2, 3, Some(2)),
            read(3, 4, 6, Some(1)),
        ];
        let witness = not(decide_unique(&contradicted));
        assert_eq!(witness.ops, vec![0, 1, 2, 3]);
        assert!(witness.rule.contains("1 -> 2"), "{}", witness.rule);
    }

    #[test]
    fn two_cas_from_one_value() {
        // Why: only one operation can follow a value written once; an unknown cas counts when
        // its value was read (and the read joins the witness).
        let ops = [
            write(0, 0, 1, 1),
            cas(1, 2, Some(3), 1, 2, Some(true)),
            cas(2, 2, None, 1, 3, None),
            read(3, 10, 11, Some(3)),
        ];
        let witness = not(decide_unique(&ops));
        assert_eq!(witness.ops, vec![0, 1, 2, 3]);
        assert!(witness.rule.contains("both changed 1"), "{}", witness.rule);
    }

    #[test]
    fn a_ghost_through_an_unknown_cas() {
        // Why: read 2 makes the unknown cas(1, 2) take effect, which needs 1, which nothing
        // writes; the witness holds both.
        let ops = [cas(0, 0, None, 1, 2, None), read(1, 5, 6, Some(2))];
        let witness = not(decide_unique(&ops));
        assert_eq!(witness.ops, vec![0, 1]);
        assert!(
            witness.rule.contains("no operation writes 1"),
            "{}",
            witness.rule
        );
    }

    #[test]
    fn nil_reads_come_first() {
        // Why: nothing writes nil back; a read of 1 that returned before a nil read began is
        // impossible even when 1's writer never returned.
        let ops = [
            op(0, 0, None, RegisterInput::Write { value: 1 }, None),
            read(1, 1, 2, Some(1)),
            read(2, 3, 4, None),
        ];
        let witness = not(decide_unique(&ops));
        assert_eq!(witness.ops, vec![0, 1, 2]);
        assert!(witness.rule.contains("returned nil"), "{}", witness.rule);
    }
}
