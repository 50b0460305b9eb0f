//! SVG pictures of a run, drawn with `plotters` (no hand-written SVG):
//! - `timeline_svg`: one seed, the picture Jepsen and OpenChaos users know: one lane per
//!   replica coloured by its role over time, the scenario's fault windows shaded, markers where
//!   each failover ended, and below it every client send at its invoke time with its latency,
//!   coloured by outcome;
//! - `failover_distribution_svg`: histogram and CDF of client-perceived failover across seeds;
//! - `sweep_svg`: client failover percentiles per combination of a parameter sweep.
//!
//! Times on the x axis are simulated seconds since the start of the run.

use crate::history::{OpInput, OpOutcome};
use crate::metrics::FailoverTimeline;
use crate::report::RunReport;
use crate::run::outcome::SeedOutcome;
use crate::run::RunSpec;
use crate::run::SeedRun;
use crate::scenario::{Fault, TimedFault};
use crate::world::observe::ObservedKind;
use crate::world::WorldSpec;
use broker_core::raft::Role;
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

const GREY_LIGHT: RGBColor = RGBColor(224, 224, 224);
const GREY_DARK: RGBColor = RGBColor(66, 66, 66);
const YELLOW: RGBColor = RGBColor(230, 200, 30);
const ORANGE: RGBColor = RGBColor(245, 124, 0);
const PURPLE: RGBColor = RGBColor(123, 31, 162);
const GREEN: RGBColor = RGBColor(49, 163, 84);

/// Why a picture could not be drawn (a plotters backend error, as text).
#[derive(Debug, thiserror::Error)]
#[error("drawing the plot: {0}")]
pub struct PlotError(String);

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for PlotError {
    fn from(error: DrawingAreaErrorKind<E>) -> PlotError {
        PlotError(error.to_string())
    }
}

const TIMELINE_SIZE_PX: (u32, u32) = (1600, 900);
const CHART_SIZE_PX: (u32, u32) = (1000, 600);
const FONT: &str = "sans-serif";

/// What a replica's lane shows at a moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LaneState {
    /// Started (or restarted) but no role reported yet.
    Starting,
    Follower,
    PreCandidate,
    Candidate,
    Leader,
    Down,
    Paused,
}

impl LaneState {
    pub const ALL: [LaneState; 7] = [
        LaneState::Starting,
        LaneState::Follower,
        LaneState::PreCandidate,
        LaneState::Candidate,
        LaneState::Leader,
        LaneState::Down,
        LaneState::Paused,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LaneState::Starting => "starting",
            LaneState::Follower => "follower",
            LaneState::PreCandidate => "pre-candidate",
            LaneState::Candidate => "candidate",
            LaneState::Leader => "leader",
            LaneState::Down => "down",
            LaneState::Paused => "paused",
        }
    }

    fn colour(self) -> RGBColor {
        match self {
            LaneState::Starting => GREY_LIGHT,
            LaneState::Follower => RGBColor(158, 202, 225),
            LaneState::PreCandidate => YELLOW,
            LaneState::Candidate => ORANGE,
            LaneState::Leader => GREEN,
            LaneState::Down => GREY_DARK,
            LaneState::Paused => PURPLE,
        }
    }

    fn of_role(role: Role) -> LaneState {
        match role {
            Role::Follower => LaneState::Follower,
            Role::PreCandidate => LaneState::PreCandidate,
            Role::Candidate => LaneState::Candidate,
            Role::Leader => LaneState::Leader,
        }
    }
}

/// A stretch of time in which one replica's lane shows one state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaneSegment {
    pub node: u32,
    pub from_us: u64,
    pub to_us: u64,
    pub state: LaneState,
}

/// Every replica's lane, from the observations of a run that ended at `end_us`.
pub fn lane_segments(run: &SeedRun, replica_count: u32, end_us: u64) -> Vec<LaneSegment> {
    let mut segments = Vec::new();
    for node in 0..replica_count {
        // (since, shown state, role underneath a pause)
        let mut current = (0, LaneState::Starting);
        let mut role_below = LaneState::Starting;
        let mut change = |at_us: u64, state: LaneState, current: &mut (u64, LaneState)| {
            if state == current.1 {
                return;
            }
            if at_us > current.0 {
                segments.push(LaneSegment {
                    node,
                    from_us: current.0,
                    to_us: at_us,
                    state: current.1,
                });
            }
            *current = (at_us, state);
        };
        for observation in run.observations.iter().filter(|o| o.node.0 == node) {
            let at = observation.at_us;
            match observation.kind {
                ObservedKind::Role { role, .. } => {
                    role_below = LaneState::of_role(role);
                    if current.1 != LaneState::Paused {
                        change(at, role_below, &mut current);
                    }
                }
                ObservedKind::Crashed => change(at, LaneState::Down, &mut current),
                ObservedKind::Restarted => {
                    role_below = LaneState::Starting;
                    change(at, LaneState::Starting, &mut current);
                }
                ObservedKind::Paused => change(at, LaneState::Paused, &mut current),
                ObservedKind::Resumed => change(at, role_below, &mut current),
                ObservedKind::LeaderCommit { .. } => {}
            }
        }
        if end_us > current.0 {
            segments.push(LaneSegment {
                node,
                from_us: current.0,
                to_us: end_us,
                state: current.1,
            });
        }
    }
    segments
}

/// A shaded stretch of the timeline: a fault from when it fired until it was undone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultWindow {
    pub from_us: u64,
    pub to_us: u64,
    pub label: String,
}

/// The scenario's fault windows: a fault lasts until the next fault that undoes it (`Restart`
/// after a crash, `Heal` after a cut) or, for `Pause`, its length; otherwise until the fault
/// phase ends. `Restart` and `Heal` themselves open no window.
pub fn fault_windows(faults: &[TimedFault], duration_us: u64) -> Vec<FaultWindow> {
    let undone_by = |fault: &Fault, later: &Fault| match fault {
        Fault::Crash(_) | Fault::CrashLosingUnsynced(_) => matches!(later, Fault::Restart(_)),
        Fault::Isolate(_)
        | Fault::Partition(_)
        | Fault::OneWay { .. }
        | Fault::Bridge { .. }
        | Fault::MajoritiesRing { .. }
        | Fault::DeposeLeader { .. }
        | Fault::LinkLatency { .. }
        | Fault::LinkLoss { .. } => matches!(later, Fault::Heal),
        _ => false,
    };
    let mut windows = Vec::new();
    for (index, timed) in faults.iter().enumerate() {
        let from_us = timed.at.as_ms() * 1_000;
        let to_us = match &timed.fault {
            Fault::Restart(_) | Fault::Heal | Fault::TransferLeader { .. } => continue,
            Fault::Pause { length, .. } => from_us + length.as_ms() * 1_000,
            fault => faults[index + 1..]
                .iter()
                .find(|later| undone_by(fault, &later.fault))
                .map_or(duration_us, |later| later.at.as_ms() * 1_000),
        };
        windows.push(FaultWindow {
            from_us,
            to_us: to_us.max(from_us),
            label: timed.fault.kind_name().to_string(),
        });
    }
    windows
}

fn seconds(us: u64) -> f64 {
    us as f64 / 1_000_000.0
}

fn millis(us: u64) -> f64 {
    us as f64 / 1_000.0
}

/// The name of replica `node` on its lane.
pub fn lane_label(spec: &WorldSpec, node: u32) -> String {
    if spec.groups > 1 {
        format!(
            "g{} replica n{node}",
            spec.group_of(broker_core::NodeId(node))
        )
    } else {
        format!("replica n{node}")
    }
}

/// One seed's timeline: replica lanes over client sends, with the outcome's failovers (and
/// cuts that healed) marked where their client stage ended.
pub fn timeline_svg(
    spec: &RunSpec,
    faults: &[TimedFault],
    run: &SeedRun,
    outcome: &SeedOutcome,
    title: &str,
) -> Result<String, PlotError> {
    let duration_us = spec.duration.as_us();
    let spec = &spec.world;
    let end_us = run.end_us.max(duration_us).max(1);
    let replica_count = spec.replica_count();
    let segments = lane_segments(run, replica_count, end_us);
    let windows = fault_windows(faults, duration_us);
    let failovers: Vec<&FailoverTimeline> = outcome
        .failovers
        .iter()
        .chain(&outcome.cuts_healed)
        .collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, TIMELINE_SIZE_PX).into_drawing_area();
        root.fill(&WHITE)?;
        let root = root.titled(title, (FONT, 22))?;
        let lanes_height = 60 + 55 * replica_count;
        let (top, bottom) = root.split_vertically(lanes_height);
        let plot_width = TIMELINE_SIZE_PX.0 - LEGEND_WIDTH_PX;
        let (top, top_legend) = top.split_horizontally(plot_width);
        let (bottom, bottom_legend) = bottom.split_horizontally(plot_width);
        draw_lanes(&top, spec, &segments, &windows, &failovers, end_us)?;
        let mut lane_legend: Vec<(String, Mark)> = LaneState::ALL
            .iter()
            .map(|state| (state.name().to_string(), Mark::Box(state.colour())))
            .collect();
        lane_legend.push(("fault window".into(), Mark::Box(FAULT_SHADE)));
        lane_legend.push(("first acked send after fault".into(), Mark::Line(BLUE)));
        draw_legend(&top_legend, &lane_legend)?;
        let counts = draw_sends(&bottom, run, &windows, end_us)?;
        let send_legend: Vec<(String, Mark)> = counts
            .into_iter()
            .map(|(name, count, colour)| (format!("send {name}: {count}"), Mark::Dot(colour)))
            .collect();
        draw_legend(&bottom_legend, &send_legend)?;
        root.present()?;
    }
    Ok(svg)
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

const LEGEND_WIDTH_PX: u32 = 260;
const FAULT_SHADE: RGBColor = RGBColor(255, 215, 215);

/// How a legend entry is drawn.
#[derive(Clone, Copy)]
enum Mark {
    Box(RGBColor),
    Dot(RGBColor),
    Line(RGBColor),
}

/// A legend in its own column, so it never hides a lane or a send.
fn draw_legend(area: &Area<'_>, items: &[(String, Mark)]) -> Result<(), PlotError> {
    let x = 10;
    for (i, (label, mark)) in items.iter().enumerate() {
        let y = 30 + 22 * i as i32;
        match *mark {
            Mark::Box(colour) => area.draw(&Rectangle::new(
                [(x, y - 7), (x + 16, y + 7)],
                colour.filled(),
            ))?,
            Mark::Dot(colour) => area.draw(&Circle::new((x + 8, y), 5, colour.filled()))?,
            Mark::Line(colour) => area.draw(&PathElement::new(
                vec![(x, y), (x + 16, y)],
                colour.stroke_width(3),
            ))?,
        }
        area.draw(&Text::new(label.clone(), (x + 24, y - 8), (FONT, 15)))?;
    }
    Ok(())
}

fn draw_lanes(
    area: &Area<'_>,
    spec: &WorldSpec,
    segments: &[LaneSegment],
    windows: &[FaultWindow],
    failovers: &[&FailoverTimeline],
    end_us: u64,
) -> Result<(), PlotError> {
    let replica_count = spec.replica_count();
    let lanes_max = f64::from(replica_count);
    let plot_top = lanes_max + 0.6;
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(130)
        .build_cartesian_2d(0f64..seconds(end_us), 0f64..plot_top)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_desc("simulated time (s)")
        .label_style((FONT, 14))
        .draw()?;
    // Lane labels, left of the plotting area, at each lane's centre.
    let base = area.get_base_pixel();
    for node in 0..replica_count {
        let (x, y) = chart.backend_coord(&(0.0, f64::from(node) + 0.5));
        area.draw(&Text::new(
            lane_label(spec, node),
            (x - base.0 - 120, y - base.1 - 8),
            (FONT, 15),
        ))?;
    }
    chart.draw_series(windows.iter().map(|w| {
        Rectangle::new(
            [(seconds(w.from_us), 0.0), (seconds(w.to_us), plot_top)],
            FAULT_SHADE.filled(),
        )
    }))?;
    chart.draw_series(windows.iter().map(|w| {
        Text::new(
            format!("fault: {}", w.label),
            (seconds(w.from_us), plot_top - 0.05),
            (FONT, 14).into_font().color(&RED),
        )
    }))?;
    chart.draw_series(segments.iter().map(|s| {
        let lane = f64::from(s.node);
        Rectangle::new(
            [
                (seconds(s.from_us), lane + 0.15),
                (seconds(s.to_us), lane + 0.85),
            ],
            s.state.colour().filled(),
        )
    }))?;
    // Where each failover's client stage ended: the first acknowledged send after the fault.
    chart.draw_series(
        failovers
            .iter()
            .filter_map(|f| f.client_us.map(|c| seconds(f.t0_us + c)))
            .map(|x| PathElement::new(vec![(x, 0.0), (x, lanes_max)], BLUE.stroke_width(2))),
    )?;
    Ok(())
}

/// Draws every send as a point; returns (outcome, count, colour) for the legend.
fn draw_sends(
    area: &Area<'_>,
    run: &SeedRun,
    windows: &[FaultWindow],
    end_us: u64,
) -> Result<Vec<(&'static str, usize, RGBColor)>, PlotError> {
    // (invoke s, latency ms) per outcome.
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    let mut unknown = Vec::new();
    for op in &run.history {
        if !matches!(op.input, OpInput::Send { .. }) {
            continue;
        }
        let point = (
            seconds(op.invoke_us),
            millis(op.complete_us.saturating_sub(op.invoke_us)),
        );
        match op.outcome {
            OpOutcome::Sent { .. } => ok.push(point),
            OpOutcome::Fail => failed.push(point),
            OpOutcome::Unknown => unknown.push(point),
            OpOutcome::Pulled { .. } => {}
        }
    }
    let latency_max = ok
        .iter()
        .chain(&failed)
        .chain(&unknown)
        .map(|p| p.1)
        .fold(1.0, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(130)
        .build_cartesian_2d(0f64..seconds(end_us), 0f64..latency_max)?;
    chart
        .configure_mesh()
        .x_desc("send invoked at (simulated s)")
        .y_desc("send latency (ms)")
        .label_style((FONT, 14))
        .draw()?;
    chart.draw_series(windows.iter().map(|w| {
        Rectangle::new(
            [(seconds(w.from_us), 0.0), (seconds(w.to_us), latency_max)],
            FAULT_SHADE.filled(),
        )
    }))?;
    let outcomes = [
        ("ok", &ok, GREEN),
        ("fail", &failed, RED),
        ("unknown (timed out)", &unknown, ORANGE),
    ];
    for (_, points, colour) in outcomes {
        chart.draw_series(
            points
                .iter()
                .map(|p| Circle::new(*p, 2, colour.mix(0.7).filled())),
        )?;
    }
    Ok(outcomes
        .iter()
        .map(|(name, points, colour)| (*name, points.len(), *colour))
        .collect())
}

/// Histogram (bars, left axis) and CDF (line, right axis) of client-perceived failover across
/// every failover of every seed of the run.
pub fn failover_distribution_svg(report: &RunReport) -> Result<String, PlotError> {
    let mut values_ms: Vec<f64> = report
        .per_seed
        .iter()
        .flat_map(|o| o.failovers.iter().filter_map(|f| f.client_us))
        .map(millis)
        .collect();
    values_ms.sort_by(f64::total_cmp);
    let not_reached: usize = report
        .per_seed
        .iter()
        .flat_map(|o| o.failovers.iter())
        .filter(|f| f.client_us.is_none())
        .count();
    let title = format!(
        "{}: client-perceived failover, {} failovers over {} seeds ({} not reached)",
        report.scenario,
        values_ms.len(),
        report.seeds.len(),
        not_reached
    );
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, CHART_SIZE_PX).into_drawing_area();
        root.fill(&WHITE)?;
        let (low, high) = match (values_ms.first(), values_ms.last()) {
            (Some(low), Some(high)) => (*low, *high),
            _ => (0.0, 1.0),
        };
        let bin_count = 30usize;
        let width_ms = ((high - low) / bin_count as f64).max(1.0);
        let x_low = (low - width_ms).max(0.0);
        let x_high = high + 2.0 * width_ms;
        let mut counts = vec![0u32; bin_count + 2];
        for value in &values_ms {
            let bin = (((value - x_low) / width_ms) as usize).min(counts.len() - 1);
            counts[bin] += 1;
        }
        let count_max = counts.iter().copied().max().unwrap_or(0).max(1);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 18))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .right_y_label_area_size(60)
            .build_cartesian_2d(x_low..x_high, 0u32..count_max + count_max / 10 + 1)?
            .set_secondary_coord(x_low..x_high, 0f64..100.0);
        chart
            .configure_mesh()
            .x_desc("client-perceived failover (ms after the fault)")
            .y_desc("failovers per bin")
            .label_style((FONT, 14))
            .draw()?;
        chart
            .configure_secondary_axes()
            .y_desc("cumulative % of failovers")
            .label_style((FONT, 14))
            .draw()?;
        chart
            .draw_series(
                counts
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| **n > 0)
                    .map(|(bin, n)| {
                        let from = x_low + bin as f64 * width_ms;
                        Rectangle::new(
                            [(from, 0), (from + width_ms * 0.9, *n)],
                            RGBColor(158, 202, 225).filled(),
                        )
                    }),
            )?
            .label(format!("histogram ({width_ms:.0} ms bins)"))
            .legend(|(x, y)| {
                Rectangle::new(
                    [(x, y - 6), (x + 14, y + 6)],
                    RGBColor(158, 202, 225).filled(),
                )
            });
        let total = values_ms.len().max(1) as f64;
        chart
            .draw_secondary_series(LineSeries::new(
                values_ms
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (*v, (i + 1) as f64 * 100.0 / total)),
                BLUE.stroke_width(2),
            ))?
            .label("CDF")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], BLUE.stroke_width(2)));
        if let Some(client) = report.stage("client") {
            for (name, value) in [("p50", client.p50_us), ("p99", client.p99_us)] {
                let Some(value) = value else { continue };
                let x = millis(value);
                chart.draw_secondary_series(std::iter::once(PathElement::new(
                    vec![(x, 0.0), (x, 100.0)],
                    BLACK.stroke_width(1),
                )))?;
                // Labels left of their line, so the rightmost one stays inside the chart.
                let style = TextStyle::from((FONT, 14).into_font())
                    .pos(Pos::new(HPos::Right, VPos::Center));
                chart.draw_secondary_series(std::iter::once(Text::new(
                    format!("{name} {x:.0} ms "),
                    (x, if name == "p50" { 60.0 } else { 40.0 }),
                    style,
                )))?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font((FONT, 13))
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}

/// One combination of a sweep: its label and the figures to draw, in µs.
#[derive(Clone, Debug)]
pub struct SweepPoint {
    pub label: String,
    /// (series name, value) pairs, e.g. ("client p99", Some(7_381_200)).
    pub figures: Vec<(String, Option<u64>)>,
}

/// A line per figure across the combinations of a sweep, in their order.
pub fn sweep_svg(title: &str, x_desc: &str, points: &[SweepPoint]) -> Result<String, PlotError> {
    let names: Vec<String> = points
        .first()
        .map(|p| p.figures.iter().map(|(name, _)| name.clone()).collect())
        .unwrap_or_default();
    let y_max = points
        .iter()
        .flat_map(|p| p.figures.iter().filter_map(|(_, v)| *v))
        .map(millis)
        .fold(1.0, f64::max)
        * 1.15;
    // `(0..n).into_segmented()` has a segment per value of 0..=n: stop one short.
    let x_last = points.len().max(1) as i32 - 1;
    let palette = [BLUE, RED, GREEN, ORANGE, PURPLE, BLACK];
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, CHART_SIZE_PX).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 18))
            .margin(15)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d((0..x_last).into_segmented(), 0f64..y_max)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc("failover (ms after the fault)")
            .x_labels(points.len() + 1)
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => usize::try_from(*i)
                    .ok()
                    .and_then(|i| points.get(i))
                    .map_or_else(String::new, |p| p.label.clone()),
                SegmentValue::Last => String::new(),
            })
            .label_style((FONT, 14))
            .draw()?;
        for (series, name) in names.iter().enumerate() {
            let colour = palette[series % palette.len()];
            let line: Vec<(SegmentValue<i32>, f64)> = points
                .iter()
                .enumerate()
                .filter_map(|(i, p)| {
                    let value = p.figures.get(series).and_then(|(_, v)| *v)?;
                    Some((SegmentValue::CenterOf(i as i32), millis(value)))
                })
                .collect();
            chart
                .draw_series(LineSeries::new(line.clone(), colour.stroke_width(2)))?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 14, y)], colour.stroke_width(2))
                });
            chart.draw_series(
                line.iter()
                    .map(|p| Circle::new(p.clone(), 4, colour.filled())),
            )?;
            // Values next to the p99 lines only: the others would print over each other.
            if name.contains("p99") {
                chart.draw_series(
                    line.iter()
                        .map(|p| Text::new(format!("  {:.0}", p.1), p.clone(), (FONT, 13))),
                )?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font((FONT, 13))
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Millis, Target};

    // Windows decide what is shaded: a crash lasts until the restart, a pause its length, and
    // the undoing faults open no window of their own.
    #[test]
    fn fault_windows_end_when_undone() {
        let at = Millis;
        let faults = vec![
            TimedFault {
                at: at(10_000),
                fault: Fault::Crash(Target::Leader { group: 0 }),
            },
            TimedFault {
                at: at(40_000),
                fault: Fault::Restart(Target::AllCrashed),
            },
        ];
        let windows = fault_windows(&faults, 60_000_000);
        assert_eq!(windows.len(), 1);
        assert_eq!(
            (windows[0].from_us, windows[0].to_us),
            (10_000_000, 40_000_000)
        );
        assert_eq!(windows[0].label, "Crash");
    }
}
