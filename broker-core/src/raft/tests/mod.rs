//! Unit tests: one node, exact effects.
