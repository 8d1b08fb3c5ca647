//! `keymint`: the issuer service and the admin command line.
//!
//! For now the command line debugs tokens (`keymint verify`); the service arrives with the issuer.

use std::process::ExitCode;

mod cli;

fn main() -> ExitCode {
    // jsonwebtoken routes signatures through a process-wide provider and panics without one. The
    // binary, and only the binary, installs keymint's ring-backed provider, before anything else.
    // An error means one is already installed, which is just as good.
    let _ = keymint_jwks::jwt_provider::RING_PROVIDER.install_default();
    match cli::run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("keymint: {e}");
            e.exit_code()
        }
    }
}
