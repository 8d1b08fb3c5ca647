//! A database is bound to the secrets it was first used with.
//!
//! Every stored API key is an HMAC under the pepper and every private signing key is sealed
//! under the encryption key. A server given other secrets (a restored database without its
//! `pepper.key`, a replica with a stale `KEYMINT_PEPPER`) would not fail at start: it would
//! refuse every customer's key as a wrong secret, or fail on its signing keys, while looking
//! healthy. So the first use stores a fingerprint of each secret (128 bits of an HMAC of a fixed
//! label under it: it tells nothing about the secret) and every later start compares before it
//! writes anything ([`Fingerprints::check`]), and again after storing its own, for two first starts at once
//! ([`Fingerprints::bind`]). A database made before fingerprints is bound by its next start: to
//! an encryption key only if it opens the stored signing keys, and to the pepper given then (no
//! stored value can prove a pepper: give that start the right one).

use crate::domain::keys::key_hash::Pepper;
use crate::domain::signing::secret_box::EncryptionKey;
use crate::store::{Store, StoreResult};

/// The settings rows holding the fingerprints.
pub const PEPPER: &str = "pepper_fingerprint";
/// See [`PEPPER`].
pub const ENCRYPTION_KEY: &str = "encryption_key_fingerprint";
/// Both, for copying a database (`keymint migrate` carries them with the secrets).
pub const STORED: [&str; 2] = [PEPPER, ENCRYPTION_KEY];

/// A secret that is not the one the database is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretMismatch {
    /// The pepper differs.
    #[error(
        "the pepper given (KEYMINT_PEPPER, KEYMINT_PEPPER_FILE or pepper.key in the data dir) is \
         not the one this database was first used with: every stored API key would be refused as \
         a wrong secret"
    )]
    Pepper,
    /// The encryption key differs.
    #[error(
        "the encryption key given (KEYMINT_ENCRYPTION_KEY, KEYMINT_ENCRYPTION_KEY_FILE or \
         encryption.key in the data dir) is not the one this database was first used with: its \
         signing keys could not be decrypted"
    )]
    EncryptionKey,
}

/// The fingerprints of the secrets in use, as settings rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprints {
    pepper: String,
    encryption_key: String,
}

impl Fingerprints {
    /// The fingerprints of `pepper` and `encryption_key`.
    pub fn of(pepper: &Pepper, encryption_key: &EncryptionKey) -> Self {
        Self {
            pepper: pepper.fingerprint(),
            encryption_key: encryption_key.fingerprint().to_owned(),
        }
    }

    fn rows(&self) -> [(&'static str, &str, SecretMismatch); 2] {
        [
            (PEPPER, self.pepper.as_str(), SecretMismatch::Pepper),
            (
                ENCRYPTION_KEY,
                self.encryption_key.as_str(),
                SecretMismatch::EncryptionKey,
            ),
        ]
    }

    /// Compares with the settings rows `stored` (read before anything is written). A secret with
    /// no stored fingerprint passes: nothing is bound yet.
    pub fn check(&self, stored: &[(String, String)]) -> Result<(), SecretMismatch> {
        for (name, mine, mismatch) in self.rows() {
            if stored.iter().any(|(n, v)| n == name && v != mine) {
                return Err(mismatch);
            }
        }
        Ok(())
    }

    /// Stores the fingerprints not stored yet, then compares with what is stored (another server
    /// starting on the same empty database at the same moment may have stored its own first).
    ///
    /// A database made before fingerprints has its signing keys already: the encryption key is
    /// bound only if it opens one of them, so a wrong key given at that first start is refused
    /// rather than bound. (Nothing stored can prove a pepper: see the module docs.)
    pub async fn bind<S: Store + ?Sized>(
        &self,
        store: &S,
        encryption_key: &EncryptionKey,
    ) -> StoreResult<Result<(), SecretMismatch>> {
        if store.setting(ENCRYPTION_KEY).await?.is_none()
            && let Some(sealed) = store
                .signing_keys()
                .await?
                .into_iter()
                .find(|k| !k.encrypted_pkcs8.is_empty())
            && encryption_key
                .open(sealed.kid.as_str(), &sealed.encrypted_pkcs8)
                .is_err()
        {
            return Ok(Err(SecretMismatch::EncryptionKey));
        }
        let rows = self.rows();
        store
            .init_settings(&rows.map(|(name, value, _)| (name, value)))
            .await?;
        for (name, mine, mismatch) in rows {
            if store.setting(name).await?.is_some_and(|v| v != mine) {
                return Ok(Err(mismatch));
            }
        }
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use zeroize::Zeroizing;

    fn secrets(p: u8, e: u8) -> Fingerprints {
        Fingerprints::of(
            &Pepper::new([p; 32]),
            &EncryptionKey::new(&Zeroizing::new([e; 32])).unwrap(),
        )
    }

    fn stored(f: &Fingerprints) -> Vec<(String, String)> {
        f.rows()
            .iter()
            .map(|(n, v, _)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_same_secrets_pass_and_each_other_secret_is_named() {
        let bound = stored(&secrets(1, 2));
        assert_eq!(secrets(1, 2).check(&bound), Ok(()));
        assert_eq!(secrets(9, 2).check(&bound), Err(SecretMismatch::Pepper));
        assert_eq!(
            secrets(1, 9).check(&bound),
            Err(SecretMismatch::EncryptionKey)
        );
        // Nothing stored yet (a new database, or one made before fingerprints): nothing to differ.
        assert_eq!(secrets(9, 9).check(&[]), Ok(()));
    }

    /// A database made before fingerprints, first started with a wrong encryption key: the key
    /// is refused rather than bound (it cannot open the stored signing keys); the right one is
    /// bound, and from then on only it passes.
    #[tokio::test]
    async fn an_unbound_database_binds_only_an_encryption_key_that_opens_its_signing_keys() {
        let dir = std::env::temp_dir().join(format!("keymint-bind-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = crate::store::SqliteStore::open(&dir.join("db"))
            .await
            .unwrap();
        let right = EncryptionKey::new(&Zeroizing::new([1; 32])).unwrap();
        let wrong = EncryptionKey::new(&Zeroizing::new([2; 32])).unwrap();
        crate::domain::signing::ensure_active(
            &store,
            &right,
            keymint_jwks::UnixTime(1_800_000_000),
        )
        .await
        .unwrap();
        let pepper = Pepper::new([3; 32]);
        let with_wrong = Fingerprints::of(&pepper, &wrong);
        assert_eq!(
            with_wrong.bind(&store, &wrong).await.unwrap(),
            Err(SecretMismatch::EncryptionKey)
        );
        assert_eq!(
            store.setting(ENCRYPTION_KEY).await.unwrap(),
            None,
            "nothing bound"
        );
        let with_right = Fingerprints::of(&pepper, &right);
        assert_eq!(with_right.bind(&store, &right).await.unwrap(), Ok(()));
        assert_eq!(
            with_wrong.bind(&store, &wrong).await.unwrap(),
            Err(SecretMismatch::EncryptionKey)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_fingerprint_shows_nothing_of_the_secret_and_differs_per_secret_kind() {
        let f = secrets(7, 7);
        // The same bytes as pepper and as encryption key give unrelated fingerprints.
        assert_ne!(f.pepper, f.encryption_key);
        assert_eq!(f.pepper.len(), 22, "{}", f.pepper);
        let raw = keymint_jwks::jws::encode_segment(&[7; 32]);
        assert!(!raw.contains(&f.pepper) && !f.pepper.contains(&raw[..8]));
    }
}
