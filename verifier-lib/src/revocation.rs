//! The revocation list in force, indexed so that a lookup costs O(1) whatever its size.

use std::collections::{HashMap, HashSet};

use keymint_jwks::{
    ApiKeyId, Claims, Jti, Kid, PROPAGATION_BOUND, RevocationList, RevocationTarget,
    SignedRevocationList, TenantId, UnixTime,
};

/// Hash indexes over a list's entries, one per kind.
#[derive(Debug, Default)]
pub struct RevocationIndex {
    keys: HashSet<ApiKeyId>,
    jtis: HashSet<Jti>,
    /// Tenant → tokens issued strictly before this instant are revoked.
    tenants: HashMap<TenantId, UnixTime>,
    kids: HashSet<Kid>,
}

impl RevocationIndex {
    /// Indexes every entry of `list`.
    pub fn new(list: &RevocationList) -> Self {
        let mut index = Self::default();
        for entry in &list.entries {
            match &entry.target {
                RevocationTarget::Key(id) => {
                    index.keys.insert(id.clone());
                }
                RevocationTarget::Jti(id) => {
                    index.jtis.insert(id.clone());
                }
                RevocationTarget::Tenant(id) => {
                    let cutoff = entry.revoked_at.saturating_add(PROPAGATION_BOUND);
                    let slot = index.tenants.entry(id.clone()).or_insert(cutoff);
                    *slot = (*slot).max(cutoff);
                }
                RevocationTarget::Kid(id) => {
                    index.kids.insert(id.clone());
                }
            }
        }
        index
    }

    /// The entry that revokes a token with these claims signed by `kid`, if any. Four hash
    /// lookups, independent of the number of entries.
    pub fn check(&self, claims: &Claims, kid: &Kid) -> Result<(), RevocationTarget> {
        if self.keys.contains(claims.sub.as_str()) {
            return Err(RevocationTarget::Key(claims.sub.clone()));
        }
        if self.jtis.contains(claims.jti.as_str()) {
            return Err(RevocationTarget::Jti(claims.jti.clone()));
        }
        if let Some(cutoff) = self.tenants.get(claims.tenant.as_str())
            && claims.iat < *cutoff
        {
            return Err(RevocationTarget::Tenant(claims.tenant.clone()));
        }
        if self.kids.contains(kid.as_str()) {
            return Err(RevocationTarget::Kid(kid.clone()));
        }
        Ok(())
    }

    /// Whether `kid` is revoked.
    pub fn kid_revoked(&self, kid: &str) -> bool {
        self.kids.contains(kid)
    }

    /// Number of indexed entries.
    pub fn len(&self) -> usize {
        self.keys.len() + self.jtis.len() + self.tenants.len() + self.kids.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A verified signed list and its index.
#[derive(Debug)]
pub(crate) struct RevocationState {
    pub(crate) signed: SignedRevocationList,
    pub(crate) index: RevocationIndex,
    /// Which installation this is, unique within the verifier (never 0): a cached token remembers
    /// the generation it was last found unrevoked in, and is looked up again only when the list
    /// changes.
    pub(crate) generation: u64,
}

impl RevocationState {
    pub(crate) fn new(signed: SignedRevocationList, generation: u64) -> Self {
        let index = RevocationIndex::new(signed.list());
        Self {
            signed,
            index,
            generation,
        }
    }
}
