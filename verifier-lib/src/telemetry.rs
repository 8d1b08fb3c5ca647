//! Counters and gauges through the `metrics` facade (feature `metrics`); no-ops without it.

#[cfg(feature = "metrics")]
mod on {
    use crate::VerifyError;

    pub(crate) fn outcome(result: &Result<crate::VerifiedToken, VerifyError>) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(e) => e.code(),
        };
        metrics::counter!("keymint_verifier_verifications_total", "outcome" => outcome)
            .increment(1);
    }

    pub(crate) fn cache_hit() {
        metrics::counter!("keymint_verifier_cache_hits_total").increment(1);
    }

    /// A verified token not cached: its key's share of the cache is full.
    pub(crate) fn cache_share_full() {
        metrics::counter!("keymint_verifier_cache_share_refusals_total").increment(1);
    }

    #[cfg_attr(not(feature = "live"), allow(dead_code))]
    pub(crate) fn refreshed(source: &'static str, now: keymint_jwks::UnixTime) {
        metrics::gauge!("keymint_verifier_source_refreshed_timestamp_seconds", "source" => source)
            .set(now.as_secs() as f64);
    }

    #[cfg_attr(not(feature = "live"), allow(dead_code))]
    pub(crate) fn refresh_failed(source: &'static str) {
        metrics::counter!("keymint_verifier_refresh_failures_total", "source" => source)
            .increment(1);
    }

    pub(crate) fn list_serial(serial: u64) {
        metrics::gauge!("keymint_verifier_revocation_list_serial").set(serial as f64);
    }
}

#[cfg(not(feature = "metrics"))]
#[allow(dead_code)]
mod on {
    use crate::VerifyError;

    pub(crate) fn outcome(_: &Result<crate::VerifiedToken, VerifyError>) {}
    pub(crate) fn cache_hit() {}
    pub(crate) fn cache_share_full() {}
    pub(crate) fn refreshed(_: &'static str, _: keymint_jwks::UnixTime) {}
    pub(crate) fn refresh_failed(_: &'static str) {}
    pub(crate) fn list_serial(_: u64) {}
}

pub(crate) use on::*;
