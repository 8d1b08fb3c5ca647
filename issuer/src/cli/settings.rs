//! `keymint settings show|set`: the settings every server on one database shares, and the
//! check `serve` makes against them before it writes anything.

use std::path::Path;
use std::process::ExitCode;

use keymint_jwks::UnixTime;

use super::remote::{Remote, enc};
use super::{CliError, Global, actor, open, print_json};
use crate::domain::DomainError;
use crate::domain::refusal::ConflictReason;
use crate::domain::settings::{self, Partial, SettingName, SettingsView};
use crate::store::{PeekAt, PgStore, SqliteStore};

/// `keymint settings` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Show the stored settings.
    Show {
        /// Print JSON (durations in seconds).
        #[arg(long)]
        json: bool,
    },
    /// Change one setting. Running servers adopt it within a second: a new issuer URL goes into
    /// new tokens, discovery and a re-signed revocation list at once (tokens already issued keep
    /// the old `iss` until they expire); a longer maximum token lifetime keeps listed revocations
    /// long enough for it.
    Set {
        /// The setting.
        #[arg(value_enum)]
        name: Name,
        /// The value: a URL for issuer-url, a duration (30s, 10m, 2h, 7d) for the others.
        value: String,
    },
}

/// The settings, as `keymint settings set` names them.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Name {
    /// The issuer URL: `iss` of every token and list, base of the published URLs.
    IssuerUrl,
    /// The longest lifetime any token may get.
    MaxTokenTtl,
    /// The JWKS cache period; signing-key rotations wait it out.
    JwksMaxAge,
    /// How long each signed revocation list is valid (1m to 7d).
    RevocationListValidity,
}

impl From<Name> for SettingName {
    fn from(n: Name) -> Self {
        match n {
            Name::IssuerUrl => Self::IssuerUrl,
            Name::MaxTokenTtl => Self::MaxTokenTtl,
            Name::JwksMaxAge => Self::JwksMaxAge,
            Name::RevocationListValidity => Self::RevocationListValidity,
        }
    }
}

pub(crate) async fn run(global: &Global, cmd: Command) -> Result<ExitCode, CliError> {
    if let Some(url) = &global.issuer_url {
        let api = Remote::connect(url)?;
        print_json(&match cmd {
            Command::Show { .. } => api.call("GET", "/v1/admin/settings", None)?,
            Command::Set { name, value } => api.call(
                "PUT",
                &format!(
                    "/v1/admin/settings/{}",
                    enc(SettingName::from(name).as_str())
                ),
                Some(&serde_json::json!({ "value": value })),
            )?,
        });
        return Ok(ExitCode::SUCCESS);
    }
    match cmd {
        Command::Show { json } => {
            let opened = open(global).await?;
            let stored = settings::stored(&*opened.store).await?;
            if json {
                print_json(&serde_json::to_value(SettingsView::from(&stored)).unwrap_or_default());
            } else {
                for name in SettingName::ALL {
                    let value = stored.shown(name).unwrap_or_else(|| {
                        "(not stored yet: the first `keymint serve` stores it)".into()
                    });
                    say!("{:<26}{value}", name.as_str());
                }
                for warning in SettingsView::from(&stored).warnings {
                    eprintln!("keymint: warning: {warning}");
                }
            }
        }
        Command::Set { name, value } => {
            let name = SettingName::from(name);
            // Checked before the database is opened: a typo changes nothing.
            let parsed = Partial::one(name, &value)?;
            let opened = open(global).await?;
            let view =
                settings::change(&*opened.store, name, &parsed, UnixTime::now(), &actor()).await?;
            let shown = parsed.shown(name).unwrap_or(value);
            say!("{name} is now {shown}; running servers adopt it within a second");
            if let Some(warning) = parsed
                .issuer
                .as_ref()
                .and_then(settings::plain_http_warning)
            {
                eprintln!("keymint: warning: {warning}");
            }
            if name == SettingName::IssuerUrl {
                say!(
                    "tokens issued before carry the old iss until they expire (at most \
                     max-token-ttl, {}): verifiers configured only for the new issuer refuse \
                     them until then",
                    view.max_token_ttl.map_or_else(
                        || "not stored yet".to_owned(),
                        |s| humantime::format_duration(std::time::Duration::from_secs(s))
                            .to_string()
                    )
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The stored settings, read before anything is created, migrated or written (see
/// `SqliteStore::peek_settings`): nothing stored yet for a data dir or database that does not
/// exist.
pub(crate) async fn stored_before_open(
    global: &Global,
    data_dir: Option<&Path>,
) -> Result<Partial, CliError> {
    Ok(Partial::from_rows(&peek(global, data_dir).await?)?)
}

/// Every settings row of the database the options name, read without writing anything (none for
/// a database that does not exist yet).
pub(crate) async fn peek(
    global: &Global,
    data_dir: Option<&Path>,
) -> Result<Vec<(String, String)>, CliError> {
    Ok(match global.database_url.as_deref() {
        Some(url) if url.starts_with("sqlite:") => {
            SqliteStore::peek_settings(PeekAt::Url(url)).await?
        }
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            PgStore::peek_settings(url).await?
        }
        Some(_) => {
            return Err(CliError::Usage(
                "--database-url must start with postgres://, postgresql:// or sqlite:".into(),
            ));
        }
        None => match data_dir {
            Some(dir) => SqliteStore::peek_settings(PeekAt::Path(&dir.join("keymint.db"))).await?,
            None => return Err(CliError::Usage(super::NO_DATABASE.into())),
        },
    })
}

/// A conflict between a flag and the stored value, said with the command that changes it;
/// anything else as it is.
pub(crate) fn refusal(e: DomainError, global: &Global, data_dir: Option<&Path>) -> CliError {
    let DomainError::Conflict(ConflictReason::Setting {
        name,
        stored,
        given,
    }) = e
    else {
        return e.into();
    };
    let location = match global.database_url.as_deref() {
        Some(url) => format!("--database-url {}", shell_word(&without_password(url))),
        None => format!(
            "--data-dir {}",
            shell_word(&super::data_shown(global, data_dir))
        ),
    };
    CliError::SettingConflict {
        name,
        command: format!(
            "keymint settings set {name} {} {location}",
            shell_word(&given)
        ),
        stored,
        given,
    }
}

/// A database URL fit for a message: the password left out (the operator has it).
fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(None);
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// `s` as one shell word: as it is when it is plain, else single-quoted.
fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:@%+=,-".contains(c));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_in_a_refusal_is_one_the_shell_reads_back_and_names_no_password() {
        assert_eq!(
            shell_word("https://issuer.example"),
            "https://issuer.example"
        );
        assert_eq!(shell_word("1h 30m"), "'1h 30m'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(
            without_password("postgres://keymint:s3cret@db/keymint"),
            "postgres://keymint@db/keymint"
        );
    }
}
