//! The subcommands built on top of `run`: the regression gate, parameter sweeps, scenario
//! comparisons, and plots.
//! `cli.rs` holds `run` and `replay`; `main.rs` only parses arguments and maps errors to exit
//! codes.

pub mod check_history;
pub mod compare;
pub mod plot;
pub mod regress;
pub mod sweep;
