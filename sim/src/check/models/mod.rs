//! Sequential specifications: the per-queue message log, a cas-register and a kv map.

pub mod kv;
pub mod log;
pub mod register;
