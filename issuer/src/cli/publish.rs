//! `keymint publish --out DIR`: static `jwks.json` and `revocations.jws`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use keymint_jwks::{Issuer, UnixTime};

use super::{CliError, Global, open};
use crate::domain::revocation::{self, DEFAULT_LIST_VALIDITY};
use crate::domain::settings;
use crate::domain::signing;

/// Arguments of `keymint publish`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Output directory.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Issuer URL the list is signed for (default: the one the server last ran with).
    #[arg(long)]
    issuer_url: Option<String>,
}

fn write_atomically(path: &Path, contents: &str) -> Result<(), CliError> {
    let tmp = path.with_extension("tmp");
    let fail = |e: std::io::Error| CliError::Usage(format!("writing {}: {e}", path.display()));
    std::fs::write(&tmp, contents).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

pub(crate) async fn run(global: &Global, args: Args) -> Result<ExitCode, CliError> {
    let opened = open(global).await?;
    let store = &*opened.store;
    let stored = settings::stored(store).await?;
    let issuer = match args.issuer_url {
        Some(u) => Issuer::new(u).map_err(|e| CliError::Usage(format!("--issuer-url: {e}")))?,
        None => stored.issuer.ok_or_else(|| {
            CliError::Usage(
                "no issuer known yet: pass --issuer-url (or run `keymint serve` once)".into(),
            )
        })?,
    };
    let validity = stored.list_validity.unwrap_or(DEFAULT_LIST_VALIDITY);
    let now = UnixTime::now();
    signing::ensure_active(store, &opened.secrets.encryption_key, now).await?;
    let set = signing::load(store, &opened.secrets.encryption_key).await?;
    let list = revocation::current_list(store, &set.active, &issuer, now, validity).await?;
    std::fs::create_dir_all(&args.out)
        .map_err(|e| CliError::Usage(format!("creating {}: {e}", args.out.display())))?;
    write_atomically(&args.out.join("jwks.json"), &set.jwks_json)?;
    write_atomically(&args.out.join("revocations.jws"), &list.jws)?;
    say!(
        "wrote {0}/jwks.json ({1} keys) and {0}/revocations.jws (serial {2}, valid until {3}); \
         re-run before it expires",
        args.out.display(),
        set.published.keys().len(),
        list.serial,
        super::when::when(list.exp)
    );
    Ok(ExitCode::SUCCESS)
}
