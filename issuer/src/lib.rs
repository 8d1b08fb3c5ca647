//! # keymint (the issuer)
//!
//! The service that trades long-lived API keys for short-lived signed tokens, and the command line
//! admins use. The request path reads top-down:
//!
//! - [`http`]: routes and extractors; handlers extract, call the domain, map the result;
//! - [`domain`]: API keys, the token exchange, signing keys, revocations, audit;
//! - [`store`]: persistence behind the [`store::Store`] trait (SQLite today).
//!
//! The `keymint` binary is [`cli::main`].
// Unit tests pin time where it matters and may read the clock where it does not.
#![cfg_attr(test, allow(clippy::disallowed_methods))]

pub mod cli;
pub mod config;
pub mod domain;
pub mod http;
#[cfg(test)]
mod log_capture;
pub mod server;
pub mod store;
pub mod tls;
