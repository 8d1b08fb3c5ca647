//! Where state lives and where the two server secrets come from.
//!
//! - Data dir: `--data-dir`, else `KEYMINT_DATA_DIR`, else `$XDG_DATA_HOME/keymint`, else
//!   `$HOME/.local/share/keymint`. Created with mode 0700.
//! - Database: `--database-url` / `KEYMINT_DATABASE_URL`, else `<data dir>/keymint.db` (SQLite).
//! - Encryption key (AES-256-GCM for private signing keys) and pepper (HMAC for API key secrets):
//!   `KEYMINT_ENCRYPTION_KEY` / `KEYMINT_PEPPER` (base64url of 32 bytes), or the files named by
//!   `KEYMINT_ENCRYPTION_KEY_FILE` / `KEYMINT_PEPPER_FILE`; with SQLite they default to
//!   `<data dir>/encryption.key` and `<data dir>/pepper.key`, created with mode 0600 on first use;
//!   with Postgres the operator must supply them (a named file must exist; nothing is generated).

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::domain::keys::key_hash::Pepper;
use crate::domain::signing::secret_box::EncryptionKey;

/// Configuration problems, reported before anything starts.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No data dir could be determined.
    #[error("no data directory: set --data-dir or KEYMINT_DATA_DIR")]
    NoDataDir,
    /// A file or directory could not be used.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A secret is malformed.
    #[error("{name} must be 32 bytes, base64url-encoded (43 characters)")]
    BadSecret {
        /// Which secret.
        name: &'static str,
    },
    /// A secret the database needs was not supplied.
    #[error(
        "{name} is not set: a shared (Postgres) database needs the operator's secrets, identical on \
         every replica. Set {name} or {name}_FILE to 32 random bytes, base64url-encoded; generate \
         them with `head -c 32 /dev/urandom | basenc --base64url | tr -d =` and keep a copy with \
         your backups (losing the pepper invalidates every API key)"
    )]
    MissingSecret {
        /// Which secret.
        name: &'static str,
    },
    /// The data dir's database exists but the secret file made with it does not.
    #[error(
        "{path} is missing, but the database it belongs to exists: every stored key was made \
         under it. Restore {path} from the backup of this data dir (or set {name} or \
         {name}_FILE to it); a new one would make every API key fail (pepper) or the signing \
         keys unreadable (encryption key). To start afresh instead, use an empty data dir"
    )]
    LostSecret {
        /// Which secret.
        name: &'static str,
        /// The file expected.
        path: String,
    },
    /// A secret file is readable by others.
    #[error("{path} is readable by group or others; run `chmod 600 {path}`")]
    Permissions {
        /// The path.
        path: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ConfigError + '_ {
    move |source| ConfigError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Resolves the data dir.
pub fn data_dir(explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
    if let Some(p) = explicit {
        return Ok(p.to_owned());
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(x).join("keymint"));
    }
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(|h| PathBuf::from(h).join(".local/share/keymint"))
        .ok_or(ConfigError::NoDataDir)
}

/// Creates the data dir (0700) if needed.
pub fn ensure_data_dir(dir: &Path) -> Result<(), ConfigError> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
    }
    Ok(())
}

/// The two server secrets.
#[derive(Debug)]
pub struct Secrets {
    /// Encrypts private signing keys.
    pub encryption_key: EncryptionKey,
    /// Keys the API-key hash.
    pub pepper: Pepper,
}

/// Loads (or, when `create_in` is given, creates) the secrets.
pub fn load_secrets(create_in: Option<&Path>) -> Result<Secrets, ConfigError> {
    load(create_in, true)
}

/// Loads the secrets of a database that already exists: from the environment, else from the files
/// in `dir`, which must be there. A missing file is not created: a new pepper or encryption key
/// would quietly make every stored key or signing key unusable.
pub fn load_existing_secrets(dir: &Path) -> Result<Secrets, ConfigError> {
    load(Some(dir), false)
}

fn load(dir: Option<&Path>, create: bool) -> Result<Secrets, ConfigError> {
    let enc = secret(
        "KEYMINT_ENCRYPTION_KEY",
        "KEYMINT_ENCRYPTION_KEY_FILE",
        dir.map(|d| d.join("encryption.key")),
        create,
    )?;
    let pepper = secret(
        "KEYMINT_PEPPER",
        "KEYMINT_PEPPER_FILE",
        dir.map(|d| d.join("pepper.key")),
        create,
    )?;
    Ok(Secrets {
        encryption_key: EncryptionKey::new(&enc).map_err(|_| ConfigError::BadSecret {
            name: "KEYMINT_ENCRYPTION_KEY",
        })?,
        pepper: Pepper::new(*pepper),
    })
}

fn decode(name: &'static str, text: &str) -> Result<Zeroizing<[u8; 32]>, ConfigError> {
    let bytes = Zeroizing::new(
        URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|_| ConfigError::BadSecret { name })?,
    );
    let mut out = Zeroizing::new([0u8; 32]);
    if bytes.len() != 32 {
        return Err(ConfigError::BadSecret { name });
    }
    out.copy_from_slice(&bytes);
    Ok(out)
}

fn secret(
    env: &'static str,
    env_file: &'static str,
    default_file: Option<PathBuf>,
    create: bool,
) -> Result<Zeroizing<[u8; 32]>, ConfigError> {
    if let Ok(v) = std::env::var(env) {
        let v = Zeroizing::new(v);
        return decode(env, &v);
    }
    let named = std::env::var_os(env_file).map(PathBuf::from);
    let path = match (named, default_file) {
        // A file the operator named must exist: creating it here would give each replica its own.
        (Some(path), _) => path,
        (None, Some(path)) => {
            if !path.exists() {
                if !create {
                    return Err(ConfigError::LostSecret {
                        name: env,
                        path: path.display().to_string(),
                    });
                }
                create_secret_file(&path)?;
            }
            path
        }
        (None, None) => return Err(ConfigError::MissingSecret { name: env }),
    };
    check_private(&path)?;
    let text = Zeroizing::new(fs::read_to_string(&path).map_err(io(&path))?);
    decode(env, &text)
}

fn create_secret_file(path: &Path) -> Result<(), ConfigError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    SystemRandom::new()
        .fill(&mut bytes[..])
        .map_err(|_| ConfigError::BadSecret { name: "random" })?;
    let text = Zeroizing::new(URL_SAFE_NO_PAD.encode(&bytes[..]));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut f) => {
            f.write_all(text.as_bytes()).map_err(io(path))?;
            f.write_all(b"\n").map_err(io(path))?;
            f.sync_all().map_err(io(path))
        }
        // Another keymint process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io(path)(e)),
    }
}

fn check_private(path: &Path) -> Result<(), ConfigError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path).map_err(io(path))?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(ConfigError::Permissions {
                path: path.display().to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_the_server_secrets_shows_no_byte_of_them() {
        let enc = [0x5au8; 32];
        let pepper = [0xa5u8; 32];
        let secrets = Secrets {
            encryption_key: EncryptionKey::new(&Zeroizing::new(enc))
                .unwrap_or_else(|_| unreachable!()),
            pepper: Pepper::new(pepper),
        };
        let hasher = crate::domain::keys::key_hash::KeyHasher::new(&secrets.pepper);
        let dbg = format!("{secrets:?} {hasher:?} {:#?}", secrets.pepper);
        for bytes in [enc, pepper] {
            for form in [URL_SAFE_NO_PAD.encode(bytes), format!("{bytes:?}")] {
                assert!(!dbg.contains(&form), "{form} in {dbg}");
            }
        }
        assert!(dbg.contains("***"));
    }
}
