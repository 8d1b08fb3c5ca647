//! The command line: `main → run() -> Result`, exit codes in one place.
#![allow(clippy::disallowed_methods)] // the command line is an edge: each command reads the clock

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::ConfigError;
use crate::domain::DomainError;

/// `println!` for a command's output. When whoever reads it has gone (`keymint keys list | head`),
/// the command has done its work and ends quietly with success, rather than panicking on the
/// broken pipe as `println!` would; any other write error ends it with exit code 74.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            eprintln!("keymint: cannot write the output: {e}");
            std::process::exit(74); // EX_IOERR
        }
    }};
}

mod admin_keys;
mod audit;
mod key_check;
mod key_create;
mod key_usage;
mod keys;
mod log_format;
mod log_writer;
mod migrate;
mod open;
mod publish;
mod remote;
mod revoke;
mod scopes;
mod serve;
mod settings;
mod signing_keys;
mod tenants;
mod token;
mod verify;
mod when;

pub(crate) use open::{NO_DATABASE, data_dir, data_shown, open, open_store, shared_database};

/// keymint: trade long-lived API keys for short-lived signed tokens.
#[derive(Debug, Parser)]
#[command(name = "keymint", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes, before or after the subcommand.
#[derive(Debug, clap::Args)]
pub(crate) struct Global {
    /// Directory for the embedded database and the secret files (default:
    /// $XDG_DATA_HOME/keymint or ~/.local/share/keymint).
    #[arg(long, global = true, env = "KEYMINT_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL: `postgres://user@host/db` for replicas sharing one database, or
    /// `sqlite:///path/keymint.db`; default: keymint.db in the data dir.
    #[arg(
        long,
        global = true,
        env = "KEYMINT_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// The issuer's base URL. For `serve`: the issuer name in every token (`iss`) and the base of
    /// published URLs (default: the listen URL). For `token`: where to get one. For admin
    /// commands: act on that remote issuer through its admin API, with the admin key in
    /// KEYMINT_ADMIN_KEY, instead of on the local database.
    #[arg(long, global = true, env = "KEYMINT_ISSUER_URL", value_name = "URL")]
    issuer_url: Option<String>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the issuer: token endpoint, JWKS, revocation list.
    Serve(serve::Args),
    /// Create, list, show, revoke and rotate API keys.
    #[command(subcommand)]
    Keys(keys::Command),
    /// Declare scopes; public ones may be carried by publishable (browser) keys.
    #[command(subcommand)]
    Scopes(scopes::Command),
    /// Revoke a single token or a whole tenant.
    #[command(subcommand)]
    Revoke(revoke::Command),
    /// List tenants; show or set a tenant's policy for leaked keys.
    #[command(subcommand)]
    Tenants(tenants::Command),
    /// List and rotate the token signing keys.
    #[command(subcommand, name = "signing-keys")]
    SigningKeys(signing_keys::Command),
    /// Write jwks.json and revocations.jws for a static web server or CDN.
    Publish(publish::Args),
    /// Create admin keys for the admin API (only on the database itself).
    #[command(subcommand, name = "admin-keys")]
    AdminKeys(admin_keys::Command),
    /// Read the stored audit records (admin actions), newest first. Issuances and refusals are
    /// counted per key, client and hour instead (`keymint keys usage KEY_ID`) and logged one line
    /// each; per-issuance rows of earlier releases stay until --audit-retention removes them.
    Audit(audit::Args),
    /// Show or change the settings every server on the database shares (issuer URL, maximum
    /// token lifetime, JWKS cache period, revocation list validity).
    #[command(subcommand)]
    Settings(settings::Command),
    /// Exchange an API key (from KEYMINT_API_KEY or stdin) for a token.
    Token(token::Args),
    /// Check a token against a key set and explain the verdict.
    Verify(verify::Args),
    /// Copy everything from the database in use into a new, empty Postgres database, so that
    /// replicas take over with every key working (stop every keymint process on it first).
    Migrate(migrate::Args),
}

/// Errors of the command line, each with its exit code.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// Bad arguments or configuration (exit 2).
    #[error("{0}")]
    Usage(String),
    /// A configuration problem (exit 2).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// What the domain said.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// What the domain said, with what to do about it on this command line.
    #[error("{error}{advice}")]
    Advised {
        /// The refusal.
        error: DomainError,
        /// What to do, appended.
        advice: &'static str,
    },
    /// `serve` given a shared setting that differs from the stored one (exit 2). Nothing was
    /// written: the check runs before the database is migrated or touched.
    #[error(
        "refusing to start: --{name} is {stored} in the database, and {given} was given. Every \
         server on this database shares it, so one start cannot change it alone. To change it \
         (running servers adopt it within a second): `{command}`; to keep it, leave --{name} \
         out. Nothing was written"
    )]
    SettingConflict {
        /// The setting, as its flag is named.
        name: &'static str,
        /// The stored value.
        stored: String,
        /// The value given.
        given: String,
        /// The command that changes it.
        command: String,
    },
    /// What a remote issuer's admin API said.
    #[error("the issuer answered {status}: {detail}")]
    Remote {
        /// HTTP status (0: no answer).
        status: u16,
        /// The problem's detail.
        detail: String,
    },
}

impl From<crate::store::StoreError> for CliError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Domain(e.into())
    }
}

impl CliError {
    fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Self::Usage(_) | Self::Config(_) | Self::SettingConflict { .. } => 2,
            Self::Domain(e) | Self::Advised { error: e, .. } => match e {
                DomainError::NotFound(_) => 3,
                DomainError::Conflict(_) => 4,
                DomainError::Invalid(_) | DomainError::InvalidRequest(_) => 2,
                DomainError::Unavailable(_) | DomainError::OwnListExpired => 5,
                DomainError::InvalidClient { .. }
                | DomainError::InvalidScope(_)
                | DomainError::InvalidTarget(_)
                | DomainError::InvalidDpopProof(_)
                | DomainError::UnauthorizedClient(_)
                | DomainError::RateLimited { .. }
                | DomainError::AdminUnauthenticated(_)
                | DomainError::AdminForbidden { .. }
                | DomainError::ReportRefused(_)
                | DomainError::Corrupt(_)
                | DomainError::Internal(_) => 70,
            },
            Self::Remote { status, .. } => match status {
                400 | 422 => 2,
                404 => 3,
                409 => 4,
                401 | 403 => 77,
                0 | 502..=504 => 5,
                _ => 70,
            },
        })
    }
}

/// The binary's entry point.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Held to the end of main: dropping it writes out the log lines still queued.
    let _log_writer = init_logging(
        cli.global.log_format,
        matches!(cli.command, Command::Serve(_)),
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("keymint: cannot start the async runtime: {e}");
            return ExitCode::from(70);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            // Every cause, said once: "the database is unavailable: <what the driver said>".
            eprintln!("keymint: {}", crate::domain::Chain(&e));
            e.exit_code()
        }
    }
}

/// Sets up logging to stderr. A server writes through [`log_writer`]: requests append their
/// lines to a buffer that a background thread writes out in one `write` every 50 ms, off the
/// request path (the audit line was about 6% of the token endpoint's CPU when written line by
/// line, and waking a writer thread per line widened the latency tail). It never drops a line.
fn init_logging(format: LogFormat, serving: bool) -> Option<log_writer::FlushGuard> {
    use tracing_subscriber::EnvFilter;
    // Admin commands print their audit line and warnings; the server logs at info.
    let default = if serving {
        "info"
    } else {
        "warn,keymint::audit=info"
    };
    let filter = EnvFilter::try_from_env("KEYMINT_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let batched = if serving {
        // Without the thread (it could not be started) lines go straight to stderr.
        log_writer::BatchedLog::spawn(std::io::stderr()).ok()
    } else {
        None
    };
    let (writer, guard) = match batched {
        Some((w, g)) => (
            tracing_subscriber::fmt::writer::BoxMakeWriter::new(w),
            Some(g),
        ),
        None => (
            tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::io::stderr),
            None,
        ),
    };
    // Colour only for a person at a terminal: in a file or a log shipper the escape codes are
    // noise that breaks grep and every parser downstream. NO_COLOR (no-color.org) wins.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi)
        .with_target(true);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        // The same lines, written faster: the audit line of every issuance goes through here.
        LogFormat::Text if !ansi => builder
            .fmt_fields(log_format::FastFields)
            .event_format(log_format::FastLine::new(log_format::CachedSecondClock))
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    guard
}

async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    // Checked here rather than by clap, whose message would repeat the URL and its password.
    if let Some(url) = cli.global.database_url.as_deref() {
        crate::store::check_url(url)
            .map_err(|why| CliError::Usage(format!("--database-url {why}")))?;
    }
    match cli.command {
        Command::Serve(args) => serve::run(&cli.global, args).await,
        Command::Keys(cmd) => keys::run(&cli.global, cmd).await,
        Command::Revoke(cmd) => revoke::run(&cli.global, cmd).await,
        Command::Scopes(cmd) => scopes::run(&cli.global, cmd).await,
        Command::Tenants(cmd) => tenants::run(&cli.global, cmd).await,
        Command::SigningKeys(cmd) => signing_keys::run(&cli.global, cmd).await,
        Command::Publish(args) => publish::run(&cli.global, args).await,
        Command::AdminKeys(cmd) => admin_keys::run(&cli.global, cmd).await,
        Command::Audit(args) => audit::run(&cli.global, args).await,
        Command::Settings(cmd) => settings::run(&cli.global, cmd).await,
        Command::Token(args) => token::run(&cli.global, args),
        Command::Verify(args) => verify::run(args),
        Command::Migrate(args) => migrate::run(&cli.global, args).await,
    }
}

/// Parses `2s`, `5m`, `90d`.
pub(crate) fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("{s:?} is not a duration like 30s, 10m, 24h or 90d: {e}"))
}

/// The longest token lifetime revocation entries must cover: the flag, else what the server last
/// ran with, else 1h; never less than the longest any server on this database was started with.
pub(crate) async fn max_token_ttl<S: crate::store::Store>(
    store: &S,
    flag: Option<Duration>,
) -> Result<Duration, CliError> {
    let own = match flag {
        Some(d) => d,
        None => store
            .setting("max_token_ttl")
            .await?
            .and_then(|s| s.parse::<u64>().ok())
            .map_or(Duration::from_secs(3600), Duration::from_secs),
    };
    Ok(crate::domain::revocation::covered_ttl(store, own).await?)
}

/// Who is acting, for admin audit records.
pub(crate) fn actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

/// Prints JSON or text.
pub(crate) fn print_json(v: &serde_json::Value) {
    say!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}
