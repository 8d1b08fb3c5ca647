//! The source as it was read, before anything is written: what the copy copies, and what tells
//! afterwards whether the source changed meanwhile.

use std::fmt;

use crate::domain::DomainError;
use crate::domain::refusal::InvalidInput;
use crate::domain::signing::secret_box::EncryptionKey;
use crate::store::{
    AuditQuery, KeyRecord, RevocationRecord, ScopeRecord, SigningKeyRecord, Store, StoreResult,
    StoredList, TenantPolicyRecord,
};

/// Everything read from the source before anything is written.
#[derive(Debug)]
pub struct Snapshot {
    /// Oldest first.
    pub(super) keys: Vec<KeyRecord>,
    pub(super) signing_keys: Vec<SigningKeyRecord>,
    pub(super) revocations: Vec<RevocationRecord>,
    pub(super) scopes: Vec<ScopeRecord>,
    pub(super) policies: Vec<TenantPolicyRecord>,
    pub(super) settings: Vec<(&'static str, String)>,
    pub(super) list: Option<StoredList>,
    /// To tell, at the end, whether anything wrote to the source meanwhile.
    pub(super) last_change: i64,
    pub(super) newest_audit: Option<i64>,
}

impl Snapshot {
    /// The private keys are copied sealed: makes sure that `key`, the one the replicas will be
    /// given, opens every one of them ([`DomainError::Invalid`] if not). `key_name` says where
    /// `key` comes from, for the message (never the key itself).
    pub fn check_encryption_key(
        &self,
        key: &EncryptionKey,
        key_name: &dyn fmt::Display,
    ) -> Result<(), DomainError> {
        // Removed and revoked keys have no private key left (an empty blob).
        for k in self
            .signing_keys
            .iter()
            .filter(|k| !k.encrypted_pkcs8.is_empty())
        {
            if key.open(k.kid.as_str(), &k.encrypted_pkcs8).is_err() {
                return Err(DomainError::Invalid(InvalidInput::WrongEncryptionKey {
                    key: key_name.to_string(),
                    kid: k.kid.clone(),
                }));
            }
        }
        Ok(())
    }

    /// Whether `source` is as it was when read.
    pub(super) async fn unchanged<S: Store>(&self, source: &S) -> StoreResult<bool> {
        Ok(source.last_change().await? == self.last_change
            && newest_audit(source).await? == self.newest_audit)
    }
}

pub(super) async fn newest_audit<S: Store>(store: &S) -> StoreResult<Option<i64>> {
    let newest = store
        .audit(&AuditQuery {
            limit: 1,
            ..AuditQuery::default()
        })
        .await?;
    Ok(newest.first().map(|e| e.id))
}
