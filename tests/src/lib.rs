//! End-to-end tests across keymint crates live in `tests/`.

pub mod raw_server;
