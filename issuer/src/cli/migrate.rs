//! `keymint migrate --to postgres://…`: moves everything from the database in use (the embedded
//! SQLite file by default) into a new, empty Postgres database, so that replicas can take over
//! with every key working as before. The copy, and what it leaves out on purpose, is
//! [`domain::migration`](crate::domain::migration); this command picks the two databases, makes
//! sure it looks at the right data dir before opening anything, and says where the two server
//! secrets are now (they are in no database) without ever printing them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use keymint_jwks::UnixTime;

use super::{CliError, Global, actor, open, open_store};
use crate::domain;
use crate::domain::DomainError;
use crate::domain::migration::{Migration, Step};
use crate::store::Store;

/// Arguments of `keymint migrate`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The new, empty Postgres database to copy into (`postgres://user@host/db`: the database must
    /// exist; keymint creates its tables). The source is the database in use: --database-url,
    /// else keymint.db in the data dir.
    #[arg(long, value_name = "URL")]
    to: String,
}

// What to do about each of the domain's refusals, in the command line's words: after "nothing
// to migrate", "the encryption key in use does not open …", "the target database is not empty"
// and "the source database changed while it was being copied".
const EMPTY_SOURCE: &str = " (is --data-dir or --database-url the one the server uses?)";
const WRONG_ENCRYPTION_KEY: &str =
    ". Set KEYMINT_ENCRYPTION_KEY or KEYMINT_ENCRYPTION_KEY_FILE to that one";
const TARGET_NOT_EMPTY: &str = ": migrate copies only into a new, empty database. If a replica \
     already started on it or an earlier migrate stopped half-way, drop and create it again, then \
     run migrate again";
const SOURCE_CHANGED: &str = ": stop every `keymint serve` and admin command on it, drop and \
     create the target again, and run migrate again";

pub(crate) async fn run(global: &Global, args: Args) -> Result<ExitCode, CliError> {
    if global.issuer_url.is_some() {
        return Err(CliError::Usage(
            "migrate copies a database, never through an issuer's API: run it without \
             --issuer-url (unset KEYMINT_ISSUER_URL) on a host with access to both databases"
                .into(),
        ));
    }
    if !is_postgres(&args.to) {
        return Err(CliError::Usage(
            "--to must be a postgres:// or postgresql:// URL".into(),
        ));
    }
    crate::store::check_url(&args.to).map_err(|why| CliError::Usage(format!("--to {why}")))?;
    if global.database_url.as_deref() == Some(args.to.as_str()) {
        return Err(CliError::Usage(
            "--to names the database in use: migrate copies into another, empty one".into(),
        ));
    }
    let data_dir = super::data_dir(global)?;
    let source_name = match (global.database_url.as_deref(), &data_dir) {
        (Some(url), _) => redact(url),
        (None, Some(dir)) => dir.join("keymint.db").display().to_string(),
        (None, None) => return Err(CliError::Usage(super::NO_DATABASE.into())),
    };
    let target_name = redact(&args.to);
    // Opening the source creates a missing database and missing secret files: in a wrong data dir
    // that would copy an empty database and hand out brand-new secrets. Look before opening.
    if global.database_url.is_none()
        && !data_dir
            .as_ref()
            .is_some_and(|d| d.join("keymint.db").exists())
    {
        return Err(CliError::Usage(format!(
            "{source_name} does not exist: point --data-dir (or KEYMINT_DATA_DIR) at the data dir \
             of the server you are moving"
        )));
    }
    // None for a shared source: its secrets come from the environment.
    let secrets_dir = data_dir.as_deref();
    let pepper = SecretSource::find("KEYMINT_PEPPER", "pepper.key", secrets_dir)?;
    let encryption = SecretSource::find("KEYMINT_ENCRYPTION_KEY", "encryption.key", secrets_dir)?;

    let opened = open(global).await?;
    let actor = actor();
    let now = domain::unix(UnixTime::now());
    let mut migration = Migration::new(&*opened.store, &source_name, &target_name, &actor, now);
    let snapshot = migration
        .read()
        .await
        .map_err(|e| failed(&migration, e, EMPTY_SOURCE))?;
    snapshot
        .check_encryption_key(&opened.secrets.encryption_key, &encryption)
        .map_err(|e| advise(e, WRONG_ENCRYPTION_KEY))?;

    let target = open_store(Some(&args.to), opened.data_dir.as_deref())
        .await
        .map_err(|e| noted(&format!("opening {target_name}"), e))?;
    let empty = migration
        .check_target(&target)
        .await
        .map_err(|e| failed(&migration, e, TARGET_NOT_EMPTY))?;
    let copied = migration
        .copy(&snapshot, empty)
        .await
        .map_err(|e| copy_failed(&migration, e, &target_name))?;
    let finished = migration
        .finish(&target, &copied)
        .await
        .map_err(|e| failed(&migration, e, ""))?;
    if let Some(e) = finished.source_unrecorded {
        eprintln!(
            "keymint migrate: warning: the audit record was not written to {source_name}: {e}"
        );
    }

    say!("copied {source_name} to {target_name}: {copied}");
    say!();
    say!(
        "The two server secrets are in no database. Every replica on {target_name} needs exactly \
         the ones in use now (never new ones):"
    );
    say!("  {pepper}");
    say!("  {encryption}");
    say!(
        "Copy them to each replica (files with mode 0600, or their contents in KEYMINT_PEPPER and \
         KEYMINT_ENCRYPTION_KEY from your secret store) and keep a copy apart from the database \
         backups: losing the pepper invalidates every API key."
    );
    say!(
        "Then start the replicas with KEYMINT_DATABASE_URL set to the new database and the same \
         --issuer-url, check that a key still gets a token and that /.well-known/jwks.json lists \
         the same kids, and only then move the load balancer."
    );
    Ok(ExitCode::SUCCESS)
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// A database URL fit to print: no password, no query string (which may hold one).
pub(super) fn redact(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or(url);
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    if path.is_empty() && !rest.contains('/') {
        format!("{scheme}://{authority}")
    } else {
        format!("{scheme}://{authority}/{path}")
    }
}

/// Where a server secret comes from, resolved the way `config::load_secrets` does.
#[derive(Debug)]
enum SecretSource {
    /// `KEYMINT_PEPPER` / `KEYMINT_ENCRYPTION_KEY` holds the value.
    Env(&'static str),
    /// A file: named by `*_FILE`, or the data dir's.
    File(&'static str, PathBuf),
}

impl SecretSource {
    /// `env` (the value), else `env_FILE`, else `file_name` in `data_dir`, which must exist: a
    /// new one would be generated, and no key made under the old one would work again.
    fn find(env: &'static str, file_name: &str, data_dir: Option<&Path>) -> Result<Self, CliError> {
        let env_file = match env {
            "KEYMINT_PEPPER" => "KEYMINT_PEPPER_FILE",
            _ => "KEYMINT_ENCRYPTION_KEY_FILE",
        };
        if std::env::var_os(env).is_some() {
            return Ok(Self::Env(env));
        }
        if let Some(path) = std::env::var_os(env_file) {
            return Ok(Self::File(env_file, PathBuf::from(path)));
        }
        let Some(dir) = data_dir else {
            // A shared source: opening it names the missing secret.
            return Ok(Self::Env(env));
        };
        let path = dir.join(file_name);
        if !path.exists() {
            return Err(CliError::Usage(format!(
                "{} does not exist, and neither {env} nor {env_file} is set: without the secret \
                 this database was created with no key would keep working. Point {env_file} at it",
                path.display()
            )));
        }
        Ok(Self::File(env_file, path))
    }
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(name) => write!(f, "{name}=<the value {name} has in this shell>"),
            Self::File(name, path) => write!(f, "{name}={}", path.display()),
        }
    }
}

/// A failed step of the migration. When the error does not say what was being done (a database
/// that failed), that is said once here; a refusal gets the command line's `advice`. The exit
/// code still comes from the error: 5 for an unavailable database, 4 for a conflict.
fn failed<S: Store>(
    migration: &Migration<'_, S>,
    e: DomainError,
    advice: &'static str,
) -> CliError {
    match &e {
        DomainError::Unavailable(cause) => {
            eprintln!(
                "keymint migrate: {}: {}",
                migration.doing(),
                domain::Chain(cause)
            );
        }
        DomainError::Internal(_) => {
            eprintln!(
                "keymint migrate: {}: {}",
                migration.doing(),
                domain::Chain(&e)
            );
        }
        _ => {}
    }
    advise(e, advice)
}

/// A copy that failed: the target holds part of the data now.
fn copy_failed<S: Store>(migration: &Migration<'_, S>, e: DomainError, target: &str) -> CliError {
    // Only the comparison with the snapshot refuses at that step.
    let changed = migration.step() == Step::Rereading;
    let e = failed(migration, e, if changed { SOURCE_CHANGED } else { "" });
    eprintln!(
        "keymint migrate: {target} now holds part of the data: drop and create it again (DROP \
         DATABASE …; CREATE DATABASE …) before running migrate again"
    );
    e
}

/// A refusal with what to do about it appended; any other error as it is.
fn advise(e: DomainError, advice: &'static str) -> CliError {
    match e {
        e @ (DomainError::Invalid(_) | DomainError::Conflict(_)) if !advice.is_empty() => {
            CliError::Advised { error: e, advice }
        }
        other => other.into(),
    }
}

/// A command-line error with its whole cause chain said once, with what was being done.
fn noted(what: &str, e: CliError) -> CliError {
    let mut detail = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        detail = format!("{detail}: {c}");
        cause = c.source();
    }
    eprintln!("keymint migrate: {what}: {detail}");
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::migration::tests::{audit, db, key, migration};

    #[tokio::test]
    async fn a_source_that_changed_says_what_to_do_and_exits_4() {
        let (src, dst) = (db("cli-moving").await, db("cli-moving-dst").await);
        let s = &src.store;
        s.insert_key(&key("k1", None), &audit("key.create", 1100))
            .await
            .unwrap();
        let mut m = migration(s);
        let snapshot = m.read().await.unwrap();
        s.insert_audit(&[audit("token.issue", 1500)]).await.unwrap();
        let empty = m.check_target(&dst.store).await.unwrap();
        let e = m.copy(&snapshot, empty).await.unwrap_err();
        let e = copy_failed(&m, e, "dst");
        assert_eq!(
            e.to_string(),
            "the source database changed while it was being copied (a keymint process still uses \
             it): stop every `keymint serve` and admin command on it, drop and create the target \
             again, and run migrate again"
        );
        assert_eq!(e.exit_code(), ExitCode::from(4));
    }

    #[test]
    fn printed_urls_carry_no_password() {
        assert_eq!(
            redact("postgres://keymint:s3cret@db.internal:5432/keymint?sslmode=require&password=x"),
            "postgres://keymint:***@db.internal:5432/keymint"
        );
        assert_eq!(
            redact("postgres://keymint@db/km"),
            "postgres://keymint@db/km"
        );
        assert_eq!(redact("postgresql://db"), "postgresql://db");
        assert_eq!(
            redact("sqlite:///var/lib/keymint/keymint.db"),
            "sqlite:///var/lib/keymint/keymint.db"
        );
    }
}
