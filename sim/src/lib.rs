//! sim: runs RON scenarios against broker-core in a seeded madsim world, records every client
//! operation, checks the history and measures failover.

pub mod check;
pub mod commands;
pub mod history;
pub mod ids;
pub mod metrics;
pub mod nemesis;
pub mod report;
pub mod run;
pub mod scenario;
pub mod workload;
pub mod world;
