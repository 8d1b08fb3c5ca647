//! `keymint`: the issuer service and the admin command line.
#![allow(clippy::disallowed_methods)] // the binary is an edge

use std::process::ExitCode;

/// mimalloc rather than glibc's malloc: the token path allocates small, short-lived values on
/// two runtime threads and a log thread; glibc gave each thread an arena and held about 25 MB of
/// fragments under load from many keys (measured with MALLOC_ARENA_MAX=2), and spent about 7 % of
/// the endpoint's CPU in malloc and free.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // jsonwebtoken routes signatures through a process-wide provider and panics without one. The
    // binary, and only the binary, installs keymint's ring-backed provider, before anything else.
    // An error means one is already installed, which is just as good.
    let _ = keymint_jwks::jwt_provider::RING_PROVIDER.install_default();
    keymint::cli::main()
}
