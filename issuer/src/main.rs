//! `keymint`: the issuer service and the admin command line.
#![allow(clippy::disallowed_methods)] // the binary is an edge

use std::process::ExitCode;

fn main() -> ExitCode {
    // jsonwebtoken routes signatures through a process-wide provider and panics without one. The
    // binary, and only the binary, installs keymint's ring-backed provider, before anything else.
    // An error means one is already installed, which is just as good.
    let _ = keymint_jwks::jwt_provider::RING_PROVIDER.install_default();
    keymint::cli::main()
}
