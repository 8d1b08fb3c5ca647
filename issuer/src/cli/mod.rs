//! Command-line parsing and dispatch: `main → run() -> Result`, exit codes in one place.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod verify;

/// keymint: trade long-lived API keys for short-lived signed tokens.
#[derive(Debug, Parser)]
#[command(name = "keymint", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Say whether a token is valid against a key set and, if not, exactly why.
    Verify(verify::Args),
}

/// Errors of the command line, each with its exit code.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// Bad input or a file that could not be used (exit 2).
    #[error("{0}")]
    Usage(String),
}

impl CliError {
    pub(crate) fn exit_code(&self) -> ExitCode {
        match self {
            Self::Usage(_) => ExitCode::from(2),
        }
    }
}

pub(crate) fn run() -> Result<ExitCode, CliError> {
    match Cli::parse().command {
        Command::Verify(args) => verify::run(args),
    }
}
