//! keymint-verifier reports through the `metrics` facade (feature `metrics`): any exporter the
//! application installs picks the counters up. Here, the Prometheus one.

mod common;

use common::*;
use keymint_jwks::{Algorithm, Signer, SigningKey};

#[test]
fn outcomes_and_cache_hits_reach_the_installed_exporter() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).unwrap();

    let signer = Signer::new(SigningKey::generate(Algorithm::EdDsa).unwrap());
    let v = verifier_for(&[&signer]);
    let token = signer.sign_access_token(&claims()).unwrap();
    v.verify_at(&token, NOW).unwrap();
    v.verify_at(&token, NOW).unwrap();
    let _ = v.verify_at("not-a-token", NOW);

    let text = handle.render();
    for line in [
        "keymint_verifier_verifications_total{outcome=\"ok\"} 2",
        "keymint_verifier_verifications_total{outcome=\"malformed\"} 1",
        "keymint_verifier_cache_hits_total 1",
        "keymint_verifier_revocation_list_serial 1",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}
