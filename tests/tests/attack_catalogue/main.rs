//! The JWT attack catalogue, run against the example API server (`examples/api-server`) over real
//! HTTP on a loopback port (issue #8).
//!
//! Each test serves the api-server's own router, protected by a verifier with a static key set (an
//! Ed25519 key and a P-256 key), a signed revocation list and a clock pinned at
//! [`NOW`](common::NOW), then sends crafted tokens with a plain HTTP/1.1 client and checks the
//! answer: 401 with
//! `WWW-Authenticate: Bearer realm="api", error="invalid_token", error_description="<code>"` (or
//! the DPoP scheme and `invalid_dpop_proof` for proofs, or no `error` at all when no token was
//! presented in the `Authorization` header). Every test also sends a correctly signed control token
//! and expects 200, so a server that refused everything would fail them.
//!
//! The stable `error_description` code is asserted too, so a token is refused for the reason the
//! test is about and not by accident (a test of `alg: none` that only ever met an unknown `kid`
//! would prove nothing).

#[path = "../common/mod.rs"]
mod common;

mod forge;
mod harness;

mod algorithms;
mod claims;
mod dpop;
mod ecdsa;
mod ed25519;
mod encoding;
mod key_headers;
mod resource_exhaustion;
mod revocation_lists;
mod transport;
