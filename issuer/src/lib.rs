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

pub mod cli;
pub mod config;
pub mod domain;
pub mod http;
pub mod server;
pub mod store;
pub mod tls;
