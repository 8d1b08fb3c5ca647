//! The key set in force: `kid` → public key, swapped atomically.

use std::collections::HashMap;
use std::sync::Arc;

use keymint_jwks::{Jwks, Kid, PublicKey};

/// A key set indexed by `kid` for O(1) lookup.
#[derive(Debug)]
pub(crate) struct KeySet {
    pub(crate) jwks: Jwks,
    by_kid: HashMap<Kid, Arc<PublicKey>>,
}

impl KeySet {
    pub(crate) fn new(jwks: Jwks) -> Self {
        let by_kid = jwks
            .keys()
            .iter()
            .map(|k| (k.kid().clone(), Arc::new(k.key().clone())))
            .collect();
        Self { jwks, by_kid }
    }

    pub(crate) fn get(&self, kid: &str) -> Option<(&Kid, &Arc<PublicKey>)> {
        self.by_kid.get_key_value(kid)
    }

    /// Whether `kid` still names exactly `key`.
    pub(crate) fn still_has(&self, kid: &str, key: &PublicKey) -> bool {
        self.by_kid.get(kid).is_some_and(|k| **k == *key)
    }
}
