//! `keymint migrate --to postgres://…`: moves everything from the database in use (the embedded
//! SQLite file by default) into a new, empty Postgres database, so that replicas can take over with
//! every API key, signing key and revocation working as before.
//!
//! The copy goes through the [`Store`] trait only, in this order: the audit history (oldest first,
//! so that it reads in order before the migration's own records), the signing keys with their
//! states (private keys still sealed: the copy never decrypts them, the replicas will), every API
//! key (revoked, expired and admin keys too, in one transaction), the revocation entries still in
//! force, the scopes, the server settings, and the newest signed revocation list, whose serial the
//! replicas continue from so that no verifier ever sees it go backwards.
//!
//! Not copied, on purpose: the change feed (each database numbers its own, and the copy writes the
//! target's), DPoP proof IDs (each matters for a minute after its proof was made), signing keys
//! already removed and revocation entries past `drop_after` (nothing can use them any more), and
//! lists older than the newest. The two server secrets are in no database: the command says where
//! they are now and never prints them.
//!
//! The target must be empty, and the source must not change while it is read (every keymint
//! process on it stopped): the command checks both, and a copy that stopped half-way leaves a
//! target that the next attempt refuses until it is dropped and created again.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use keymint_jwks::UnixTime;

use super::{CliError, Global, actor, open, open_store};
use crate::config;
use crate::domain::secret_box::EncryptionKey;
use crate::domain::{self, DomainError};
use crate::store::{
    AuditQuery, AuditRecord, KeyRecord, RevocationRecord, SigningKeyRecord, Store, StoreError,
    StoredList,
};

/// Arguments of `keymint migrate`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The new, empty Postgres database to copy into (`postgres://user@host/db`: the database must
    /// exist; keymint creates its tables). The source is the database in use: --database-url,
    /// else keymint.db in the data dir.
    #[arg(long, value_name = "URL")]
    to: String,
}

/// The settings a running server records (`server.rs`), which admin commands fall back on.
const SETTINGS: [&str; 3] = ["issuer", "jwks_max_age", "max_token_ttl"];

/// Audit records per read and per write.
const AUDIT_BATCH: i64 = 2000;

/// The audit action of the migration's own records.
const ACTION: &str = "database.migrate";

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
    if global.database_url.as_deref() == Some(args.to.as_str()) {
        return Err(CliError::Usage(
            "--to names the database in use: migrate copies into another, empty one".into(),
        ));
    }
    let data_dir = config::data_dir(global.data_dir.as_deref())?;
    let source_name = match global.database_url.as_deref() {
        Some(url) => redact(url),
        None => data_dir.join("keymint.db").display().to_string(),
    };
    let target_name = redact(&args.to);
    // Opening the source creates a missing database and missing secret files: in a wrong data dir
    // that would copy an empty database and hand out brand-new secrets. Look before opening.
    if global.database_url.is_none() && !data_dir.join("keymint.db").exists() {
        return Err(CliError::Usage(format!(
            "{source_name} does not exist: point --data-dir (or KEYMINT_DATA_DIR) at the data dir \
             of the server you are moving"
        )));
    }
    let shared = global.database_url.as_deref().is_some_and(is_postgres);
    let secrets_dir = (!shared).then_some(data_dir.as_path());
    let pepper = SecretSource::find("KEYMINT_PEPPER", "pepper.key", secrets_dir)?;
    let encryption = SecretSource::find("KEYMINT_ENCRYPTION_KEY", "encryption.key", secrets_dir)?;

    let opened = open(global).await?;
    let source = &*opened.store;
    let now = domain::unix(UnixTime::now());
    let snapshot = Snapshot::read(source, now).await?;
    if snapshot.keys.is_empty() && snapshot.signing_keys.is_empty() {
        return Err(CliError::Usage(format!(
            "nothing to migrate: {source_name} has no API keys and no signing keys (is \
             --data-dir or --database-url the one the server uses?)"
        )));
    }
    check_encryption_key(
        &snapshot.signing_keys,
        &opened.secrets.encryption_key,
        &encryption,
    )?;

    let target = open_store(Some(&args.to), &opened.data_dir)
        .await
        .map_err(|e| noted(&format!("opening {target_name}"), e))?;
    refuse_unless_empty(&target).await?;

    let actor = actor();
    let copied = match copy(source, &target, &snapshot, &actor, now, AUDIT_BATCH).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "keymint migrate: {target_name} now holds part of the data: drop and create it \
                 again (DROP DATABASE …; CREATE DATABASE …) before running migrate again"
            );
            return Err(e);
        }
    };

    let record = AuditRecord {
        at: now,
        action: ACTION.into(),
        outcome: "ok".into(),
        actor: Some(actor),
        detail: Some(format!("from {source_name} to {target_name}: {copied}")),
        ..AuditRecord::default()
    };
    target
        .insert_audit(std::slice::from_ref(&record))
        .await
        .map_err(|e| failed(&format!("writing the audit record to {target_name}"), e))?;
    // The old database says where everything went, for whoever opens it later.
    if let Err(e) = source.insert_audit(std::slice::from_ref(&record)).await {
        eprintln!(
            "keymint migrate: warning: the audit record was not written to {source_name}: {e}"
        );
    }
    domain::audit::log(&record);

    println!("copied {source_name} to {target_name}: {copied}");
    println!();
    println!(
        "The two server secrets are in no database. Every replica on {target_name} needs exactly \
         the ones in use now (never new ones):"
    );
    println!("  {pepper}");
    println!("  {encryption}");
    println!(
        "Copy them to each replica (files with mode 0600, or their contents in KEYMINT_PEPPER and \
         KEYMINT_ENCRYPTION_KEY from your secret store) and keep a copy apart from the database \
         backups: losing the pepper invalidates every API key."
    );
    println!(
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
fn redact(url: &str) -> String {
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

/// Everything read from the source before anything is written.
#[derive(Debug)]
struct Snapshot {
    /// Oldest first.
    keys: Vec<KeyRecord>,
    signing_keys: Vec<SigningKeyRecord>,
    revocations: Vec<RevocationRecord>,
    scopes: Vec<(String, bool)>,
    settings: Vec<(&'static str, String)>,
    list: Option<StoredList>,
    /// To tell, at the end, whether anything wrote to the source meanwhile.
    last_change: i64,
    newest_audit: Option<i64>,
}

impl Snapshot {
    async fn read<S: Store>(source: &S, now: i64) -> Result<Self, CliError> {
        let reading = |what: &str, e| failed(&format!("reading {what} from the source"), e);
        let last_change = source
            .last_change()
            .await
            .map_err(|e| reading("the change feed", e))?;
        let newest_audit = newest_audit(source)
            .await
            .map_err(|e| reading("the audit records", e))?;
        let mut keys = source
            .keys(None)
            .await
            .map_err(|e| reading("the API keys", e))?;
        keys.reverse();
        let mut settings = Vec::new();
        for name in SETTINGS {
            if let Some(v) = source
                .setting(name)
                .await
                .map_err(|e| reading("the settings", e))?
            {
                settings.push((name, v));
            }
        }
        Ok(Self {
            keys,
            signing_keys: source
                .signing_keys()
                .await
                .map_err(|e| reading("the signing keys", e))?,
            revocations: source
                .revocations(now)
                .await
                .map_err(|e| reading("the revocations", e))?,
            scopes: source
                .scopes()
                .await
                .map_err(|e| reading("the scopes", e))?,
            settings,
            list: source
                .latest_list()
                .await
                .map_err(|e| reading("the revocation list", e))?,
            last_change,
            newest_audit,
        })
    }

    /// Whether `source` is as it was when read.
    async fn unchanged<S: Store>(&self, source: &S) -> Result<bool, StoreError> {
        Ok(source.last_change().await? == self.last_change
            && newest_audit(source).await? == self.newest_audit)
    }
}

async fn newest_audit<S: Store>(store: &S) -> Result<Option<i64>, StoreError> {
    let newest = store
        .audit(&AuditQuery {
            limit: 1,
            ..AuditQuery::default()
        })
        .await?;
    Ok(newest.first().map(|e| e.id))
}

/// The private keys are copied sealed; make sure the encryption key the replicas will be told to
/// use is the one that opens them.
fn check_encryption_key(
    keys: &[SigningKeyRecord],
    key: &EncryptionKey,
    source: &SecretSource,
) -> Result<(), CliError> {
    // Removed and revoked keys have no private key left (an empty blob).
    for k in keys.iter().filter(|k| !k.encrypted_pkcs8.is_empty()) {
        if key.open(&k.kid, &k.encrypted_pkcs8).is_err() {
            return Err(CliError::Usage(format!(
                "the encryption key in use ({source}) does not open signing key {}: it is not the \
                 one this database was created with, and replicas given it could not sign. Set \
                 KEYMINT_ENCRYPTION_KEY or KEYMINT_ENCRYPTION_KEY_FILE to that one",
                k.kid
            )));
        }
    }
    Ok(())
}

async fn refuse_unless_empty<T: Store>(target: &T) -> Result<(), CliError> {
    let checking = |e| failed("checking that the target is empty", e);
    let keys = target.keys(None).await.map_err(checking)?.len();
    let signing_keys = target.signing_keys().await.map_err(checking)?.len();
    let list = target.latest_list().await.map_err(checking)?;
    let audit = newest_audit(target).await.map_err(checking)?;
    let mut found = Vec::new();
    if keys > 0 {
        found.push(format!("{keys} API keys"));
    }
    if signing_keys > 0 {
        found.push(format!("{signing_keys} signing keys"));
    }
    if let Some(l) = list {
        found.push(format!("a revocation list with serial {}", l.serial));
    }
    if audit.is_some() {
        found.push("audit records".into());
    }
    if found.is_empty() {
        return Ok(());
    }
    Err(DomainError::Conflict(format!(
        "the target database is not empty ({}): migrate copies only into a new, empty database. \
         If a replica already started on it or an earlier migrate stopped half-way, drop and \
         create it again, then run migrate again",
        found.join(", ")
    ))
    .into())
}

/// What was copied, for the summary line and the audit record.
#[derive(Debug, Default, PartialEq, Eq)]
struct Copied {
    audit: u64,
    signing_keys: usize,
    keys: usize,
    revoked_keys: usize,
    revocations: usize,
    scopes: usize,
    settings: usize,
    serial: Option<i64>,
}

impl fmt::Display for Copied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = |count: usize, one: &str, many: &str| {
            format!("{count} {}", if count == 1 { one } else { many })
        };
        write!(
            f,
            "{}, {} ({} revoked), {}, {}, {}, ",
            n(self.signing_keys, "signing key", "signing keys"),
            n(self.keys, "API key", "API keys"),
            self.revoked_keys,
            n(self.revocations, "revocation entry", "revocation entries"),
            n(self.scopes, "scope", "scopes"),
            n(self.settings, "setting", "settings"),
        )?;
        match self.serial {
            Some(s) => write!(f, "the revocation list at serial {s}, ")?,
            None => write!(f, "no revocation list yet, ")?,
        }
        write!(f, "{} audit records", self.audit)
    }
}

async fn copy<S: Store, T: Store>(
    source: &S,
    target: &T,
    snap: &Snapshot,
    actor: &str,
    now: i64,
    audit_batch: i64,
) -> Result<Copied, CliError> {
    let audit = copy_audit(source, target, snap.newest_audit, audit_batch).await?;
    let record = |detail: String| AuditRecord {
        at: now,
        action: ACTION.into(),
        outcome: "ok".into(),
        actor: Some(actor.into()),
        detail: Some(detail),
        ..AuditRecord::default()
    };
    let writing = |what: &str, e| failed(&format!("writing {what} to the target"), e);

    for k in &snap.signing_keys {
        let a = record(format!(
            "copied signing key {} ({})",
            k.kid,
            k.state.as_str()
        ));
        target
            .insert_signing_key(k, Some(&a))
            .await
            .map_err(|e| writing("the signing keys", e))?;
    }
    if !snap.keys.is_empty() {
        let a = record(format!("copied {} API keys", snap.keys.len()));
        target
            .insert_keys(&snap.keys, &a)
            .await
            .map_err(|e| writing("the API keys", e))?;
    }
    for r in &snap.revocations {
        let mut a = record(format!("copied revocation entry {} {}", r.kind, r.target));
        match r.kind.as_str() {
            "key" => a.key_id = Some(r.target.clone()),
            "tenant" => a.tenant = Some(r.target.clone()),
            _ => {}
        }
        target
            .add_revocation(r, &a)
            .await
            .map_err(|e| writing("the revocation entries", e))?;
    }
    for (name, public) in &snap.scopes {
        let a = AuditRecord {
            scopes: Some(name.clone()),
            ..record(format!("copied scope, public={public}"))
        };
        target
            .put_scope(name, *public, &a)
            .await
            .map_err(|e| writing("the scopes", e))?;
    }
    for (name, value) in &snap.settings {
        target
            .set_setting(name, value)
            .await
            .map_err(|e| writing("the settings", e))?;
    }
    if let Some(l) = &snap.list {
        // `as_of` counts the source's change feed, which means nothing in the target: 0 makes the
        // first replica re-sign the list at once, with the next serial, from the entries above.
        let list = StoredList {
            as_of: 0,
            ..l.clone()
        };
        target
            .insert_list(&list)
            .await
            .map_err(|e| writing("the revocation list", e))?;
    }

    if !snap
        .unchanged(source)
        .await
        .map_err(|e| failed("re-reading the source", e))?
    {
        return Err(source_changed());
    }
    Ok(Copied {
        audit,
        signing_keys: snap.signing_keys.len(),
        keys: snap.keys.len(),
        revoked_keys: snap.keys.iter().filter(|k| k.revoked_at.is_some()).count(),
        revocations: snap.revocations.len(),
        scopes: snap.scopes.len(),
        settings: snap.settings.len(),
        serial: snap.list.as_ref().map(|l| l.serial),
    })
}

/// Copies the audit records up to `newest`, oldest first, `batch` at a time. The store pages
/// newest first, so a first pass notes where each page begins and a second one writes the pages
/// in reverse: memory holds one page and one cursor per page, however long the history.
async fn copy_audit<S: Store, T: Store>(
    source: &S,
    target: &T,
    newest: Option<i64>,
    batch: i64,
) -> Result<u64, CliError> {
    let Some(newest) = newest else {
        return Ok(0);
    };
    let page = |before: i64| AuditQuery {
        before: Some(before),
        limit: batch,
        ..AuditQuery::default()
    };
    let reading = |e| failed("reading the audit records from the source", e);
    let mut starts = Vec::new();
    let mut before = newest.saturating_add(1);
    let mut expected = 0u64;
    loop {
        let rows = source.audit(&page(before)).await.map_err(reading)?;
        let Some(oldest) = rows.last().map(|e| e.id) else {
            break;
        };
        starts.push(before);
        expected += rows.len() as u64;
        before = oldest;
        if i64::try_from(rows.len()).unwrap_or(i64::MAX) < batch {
            break;
        }
    }
    let mut copied = 0u64;
    for &before in starts.iter().rev() {
        let rows = source.audit(&page(before)).await.map_err(reading)?;
        let records: Vec<AuditRecord> = rows.into_iter().rev().map(|e| e.record).collect();
        target
            .insert_audit(&records)
            .await
            .map_err(|e| failed("writing the audit records to the target", e))?;
        copied += records.len() as u64;
    }
    if copied != expected {
        return Err(source_changed());
    }
    Ok(copied)
}

fn source_changed() -> CliError {
    DomainError::Conflict(
        "the source database changed while it was being copied (a keymint process still uses \
         it): stop every `keymint serve` and admin command on it, drop and create the target \
         again, and run migrate again"
            .into(),
    )
    .into()
}

/// A store error, said once with what was being done (the exit code still comes from the error:
/// 5 for an unavailable database, 4 for a row that exists already).
fn failed(what: &str, e: StoreError) -> CliError {
    eprintln!("keymint migrate: {what}: {e}");
    match e {
        StoreError::Conflict => {
            DomainError::Conflict(format!("{what}: a row exists already in the target")).into()
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
    use crate::store::{SigningKeyState, SqliteStore};

    struct Db {
        store: SqliteStore,
        dir: PathBuf,
    }

    impl Drop for Db {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    async fn db(name: &str) -> Db {
        let dir =
            std::env::temp_dir().join(format!("keymint-migrate-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = SqliteStore::open(&dir.join("keymint.db")).await.unwrap();
        Db { store, dir }
    }

    fn audit(action: &str, at: i64) -> AuditRecord {
        AuditRecord {
            at,
            action: action.into(),
            outcome: "ok".into(),
            ..AuditRecord::default()
        }
    }

    fn key(id: &str, revoked_at: Option<i64>) -> KeyRecord {
        KeyRecord {
            key_id: id.into(),
            kind: "sk".into(),
            env: "live".into(),
            tenant: "acme".into(),
            secret_hash: vec![1; 32],
            scopes: "a".into(),
            audiences: "https://api.example".into(),
            default_ttl: 600,
            max_ttl: 3600,
            expires_at: 2_000_000_000,
            allow_ips: String::new(),
            allow_origins: String::new(),
            rate_limit: None,
            label: None,
            owner: None,
            is_admin: false,
            created_at: 1_700_000_000,
            last_used_at: Some(1_700_000_100),
            revoked_at,
            rotated_to: None,
        }
    }

    async fn everything(s: &SqliteStore) -> Vec<AuditRecord> {
        let mut all = s
            .audit(&AuditQuery {
                limit: 10_000,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        all.reverse();
        all.into_iter().map(|e| e.record).collect()
    }

    #[tokio::test]
    async fn copies_every_row_and_the_audit_history_oldest_first_across_pages() {
        let src = db("src").await;
        let dst = db("dst").await;
        let s = &src.store;
        let history: Vec<AuditRecord> = (0..23).map(|i| audit("token.issue", 1000 + i)).collect();
        s.insert_audit(&history).await.unwrap();
        s.insert_keys(
            &[key("k1", None), key("k2", Some(1_700_000_500))],
            &audit("key.create_many", 1100),
        )
        .await
        .unwrap();
        let sk = SigningKeyRecord {
            kid: "kid-1".into(),
            alg: "EdDSA".into(),
            encrypted_pkcs8: vec![9; 40],
            public_jwk: "{}".into(),
            state: SigningKeyState::Retired,
            created_at: 900,
            activate_at: 900,
            retired_at: Some(1000),
            remove_after: Some(5000),
            revoked_at: None,
        };
        s.insert_signing_key(&sk, None).await.unwrap();
        let entry = RevocationRecord {
            kind: "jti".into(),
            target: "j1".into(),
            revoked_at: 1200,
            drop_after: 9_000_000_000,
        };
        s.add_revocation(&entry, &audit("token.revoke", 1200))
            .await
            .unwrap();
        s.put_scope("catalog:read", true, &audit("scope.put", 1300))
            .await
            .unwrap();
        s.set_setting("issuer", "http://keymint.test")
            .await
            .unwrap();
        let list = StoredList {
            serial: 7,
            jws: "a.b.c".into(),
            iat: 1400,
            exp: 90_000,
            as_of: 55,
        };
        s.insert_list(&list).await.unwrap();
        let before = everything(s).await;

        let snap = Snapshot::read(s, 2000).await.unwrap();
        // Pages of 5: the 26 records make six pages.
        let copied = copy(s, &dst.store, &snap, "cli:test", 2000, 5)
            .await
            .unwrap();
        assert_eq!(
            copied,
            Copied {
                audit: 26,
                signing_keys: 1,
                keys: 2,
                revoked_keys: 1,
                revocations: 1,
                scopes: 1,
                settings: 1,
                serial: Some(7),
            }
        );

        let d = &dst.store;
        assert_eq!(d.keys(None).await.unwrap(), s.keys(None).await.unwrap());
        assert_eq!(d.signing_keys().await.unwrap(), vec![sk]);
        assert_eq!(d.revocations(2000).await.unwrap(), vec![entry]);
        assert_eq!(
            d.scopes().await.unwrap(),
            vec![("catalog:read".into(), true)]
        );
        assert_eq!(
            d.setting("issuer").await.unwrap().as_deref(),
            Some("http://keymint.test")
        );
        // Same list, but re-signed by the first replica: its position in the old feed is void.
        assert_eq!(
            d.latest_list().await.unwrap(),
            Some(StoredList { as_of: 0, ..list })
        );
        // The history first, in its order, then one record per copied item.
        let after = everything(d).await;
        assert_eq!(after.get(..before.len()), Some(&before[..]));
        let own: Vec<&str> = after[before.len()..]
            .iter()
            .map(|r| r.detail.as_deref().unwrap_or_default())
            .collect();
        assert_eq!(
            own,
            [
                "copied signing key kid-1 (retired)",
                "copied 2 API keys",
                "copied revocation entry jti j1",
                "copied scope, public=true",
            ]
        );
        assert!(after[before.len()..].iter().all(|r| r.action == ACTION));

        // The target now refuses a second copy.
        let refused = refuse_unless_empty(d).await.unwrap_err();
        assert!(matches!(
            refused,
            CliError::Domain(DomainError::Conflict(_))
        ));
        assert!(refused.to_string().contains("2 API keys"), "{refused}");
    }

    #[tokio::test]
    async fn a_source_written_during_the_copy_fails_it() {
        let src = db("moving").await;
        let dst = db("moving-dst").await;
        let s = &src.store;
        s.insert_keys(&[key("k1", None)], &audit("key.create_many", 1100))
            .await
            .unwrap();
        let snap = Snapshot::read(s, 2000).await.unwrap();
        s.insert_key(&key("k2", None), &audit("key.create", 1500))
            .await
            .unwrap();
        let err = copy(s, &dst.store, &snap, "cli:test", 2000, 100)
            .await
            .unwrap_err();
        assert!(matches!(err, CliError::Domain(DomainError::Conflict(_))));
        assert!(
            err.to_string()
                .contains("changed while it was being copied")
        );
    }

    #[test]
    fn the_summary_counts_in_words() {
        let c = Copied {
            audit: 5,
            signing_keys: 1,
            keys: 3,
            revoked_keys: 1,
            revocations: 2,
            scopes: 1,
            settings: 3,
            serial: Some(4),
        };
        assert_eq!(
            c.to_string(),
            "1 signing key, 3 API keys (1 revoked), 2 revocation entries, 1 scope, 3 settings, \
             the revocation list at serial 4, 5 audit records"
        );
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
