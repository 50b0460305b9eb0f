//! sim: runs RON scenarios against broker-core in a seeded madsim world, records every client
//! operation, checks the history and measures failover.

pub mod check;
pub mod clock;
pub mod disk;
pub mod history;
pub mod scenario;
