//! One run of a scenario: the translation from a validated scenario to what a run needs
//! (`spec`), one seed played from start to settled (`seed`), many seeds on threads (`seeds`).

pub mod seed;
pub mod seeds;
mod settle;

pub use seed::{run_seed, SeedRun};
