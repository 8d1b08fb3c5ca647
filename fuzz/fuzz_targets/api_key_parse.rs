//! Arbitrary text as a presented API key: a typed error, or a key whose parts re-assemble exactly.
#![no_main]

use keymint::domain::keys::api_key::{self, assemble};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(k) = api_key::parse(text) {
            let again = assemble(k.kind, k.env, k.key_id.as_str(), k.secret.expose());
            assert_eq!(again.expose(), text);
        }
    }
});
