//! Opening the database the options name, with the secrets that go with it: the data dir (none
//! for a shared database), the secret files or the environment, and the check that the secrets
//! are the ones the database was made with, before anything is written.

use std::path::PathBuf;
use std::sync::Arc;

use super::{CliError, Global, settings};
use crate::config::{self, Secrets};
use crate::domain::keys::key_hash::KeyHasher;
use crate::domain::settings::secrets::{Fingerprints, SecretMismatch};
use crate::store::{DbStore, PeekAt, PgStore, SqliteStore};

/// An opened store with the secrets that go with it.
pub(crate) struct Opened {
    pub(crate) store: Arc<DbStore>,
    pub(crate) secrets: Secrets,
    /// None for a shared (Postgres) database, which keeps nothing in one.
    pub(crate) data_dir: Option<PathBuf>,
}

impl Opened {
    pub(crate) fn hasher(&self) -> KeyHasher {
        KeyHasher::new(&self.secrets.pepper)
    }
}

/// Opens the database and loads the secrets named by the global options, refusing secrets the
/// database was not made with (`domain::settings::secrets`) before anything is written.
pub(crate) async fn open(global: &Global) -> Result<Opened, CliError> {
    let data_dir = data_dir(global)?;
    // Replicas must share the secrets, so on a shared database nothing is generated: the
    // operator supplies them (KEYMINT_ENCRYPTION_KEY / KEYMINT_PEPPER or the *_FILE variants).
    // Nor for an embedded database that exists: its secret files were made with it.
    let secrets = match &data_dir {
        None => config::load_secrets(None)?,
        Some(dir) => {
            config::ensure_data_dir(dir)?;
            let embedded = dir.join("keymint.db");
            if SqliteStore::exists(match global.database_url.as_deref() {
                Some(url) => PeekAt::Url(url),
                None => PeekAt::Path(&embedded),
            })? {
                config::load_existing_secrets(dir)?
            } else {
                config::load_secrets(Some(dir))?
            }
        }
    };
    let fingerprints = Fingerprints::of(&secrets.pepper, &secrets.encryption_key);
    fingerprints
        .check(&settings::peek(global, data_dir.as_deref()).await?)
        .map_err(secret_refusal)?;
    let store = open_store(global.database_url.as_deref(), data_dir.as_deref()).await?;
    fingerprints
        .bind(&store, &secrets.encryption_key)
        .await?
        .map_err(secret_refusal)?;
    Ok(Opened {
        store: Arc::new(store),
        secrets,
        data_dir,
    })
}

/// Neither a database URL nor a data dir: only a shared database has no data dir, and it has a URL.
pub(crate) const NO_DATABASE: &str = "no database: give --database-url or --data-dir";

/// Whether the options name a shared (Postgres) database.
pub(crate) fn shared_database(global: &Global) -> bool {
    global
        .database_url
        .as_deref()
        .is_some_and(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
}

/// The data dir the options name: `--data-dir`, else the default under `$XDG_DATA_HOME` or
/// `$HOME`. None for a shared (Postgres) database: it keeps nothing there (replicas take their
/// secrets from the environment), so keymint neither needs a data dir then (a container may have
/// no `$HOME`, or a read-only root) nor creates or changes one.
pub(crate) fn data_dir(global: &Global) -> Result<Option<PathBuf>, CliError> {
    if shared_database(global) {
        return Ok(None);
    }
    Ok(Some(config::data_dir(global.data_dir.as_deref())?))
}

/// Where the data is, to print: the database URL (without its password) or the data dir.
pub(crate) fn data_shown(global: &Global, data_dir: Option<&std::path::Path>) -> String {
    match (global.database_url.as_deref(), data_dir) {
        (Some(url), _) => super::migrate::redact(url),
        (None, Some(dir)) => dir.display().to_string(),
        (None, None) => String::new(),
    }
}

/// A secret the database was not made with, said with what to do (exit 2).
fn secret_refusal(e: SecretMismatch) -> CliError {
    CliError::Usage(format!(
        "refusing to start: {e}. Give it the secrets it was made with (restore the data dir's \
         files from its backup; every replica on a shared database needs the same values). \
         Nothing was written"
    ))
}

/// Opens the database a URL names (the embedded SQLite file in `data_dir` when there is none).
pub(crate) async fn open_store(
    url: Option<&str>,
    data_dir: Option<&std::path::Path>,
) -> Result<DbStore, CliError> {
    Ok(match url {
        Some(url) if url.starts_with("sqlite:") => {
            DbStore::Sqlite(SqliteStore::open_url(url).await?)
        }
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            DbStore::Postgres(PgStore::connect(url).await?)
        }
        Some(_) => {
            return Err(CliError::Usage(
                "--database-url must start with postgres://, postgresql:// or sqlite:".into(),
            ));
        }
        None => match data_dir {
            Some(dir) => DbStore::Sqlite(SqliteStore::open(&dir.join("keymint.db")).await?),
            None => return Err(CliError::Usage(NO_DATABASE.into())),
        },
    })
}
