#![allow(clippy::unwrap_used)]
use super::*;
use crate::log_capture::LogBuffer;

/// A clock that always writes the same time, so that two formatters' lines can be compared.
#[derive(Debug, Clone, Copy)]
struct Fixed;

impl FormatTime for Fixed {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        w.write_str("2026-12-06T03:04:48.123456Z")
    }
}

/// A clock that cannot tell the time: the line says `<unknown time>`.
#[derive(Debug, Clone, Copy)]
struct Broken;

impl FormatTime for Broken {
    fn format_time(&self, _: &mut Writer<'_>) -> fmt::Result {
        Err(fmt::Error)
    }
}

fn lines(fast: bool, emit: impl Fn()) -> String {
    lines_with(Fixed, fast, emit)
}

fn lines_with<T: FormatTime + Clone + Send + Sync + 'static>(
    timer: T,
    fast: bool,
    emit: impl Fn(),
) -> String {
    let out = LogBuffer::default();
    let sink = out.clone();
    let builder = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_timer(timer.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone());
    if fast {
        let fast = builder
            .fmt_fields(FastFields)
            .event_format(FastLine::new(timer));
        tracing::subscriber::with_default(fast.finish(), emit);
    } else {
        tracing::subscriber::with_default(builder.finish(), emit);
    }
    out.text()
}

#[test]
fn a_clock_that_fails_and_explicit_parents_come_out_as_the_default_writes_them() {
    let emit = || {
        tracing::info!(target: "keymint::audit", action = "token.issue", "audit");
        let outer = tracing::info_span!("request", method = "POST");
        {
            let _in = outer.enter();
            tracing::info!(parent: None, "no parent although a span is entered");
        }
        tracing::info!(parent: &outer, "an explicit parent, none entered");
    };
    let default = lines_with(Broken, false, emit);
    assert_eq!(lines_with(Broken, true, emit), default);
    assert!(
        default.starts_with("<unknown time>  INFO keymint::audit: audit"),
        "{default}"
    );
    assert!(
        default.contains("request{method=\"POST\"}: "),
        "the explicit parent is written: {default}"
    );
    assert_eq!(default.matches("request{").count(), 1, "{default}");
}

#[test]
fn fields_come_out_byte_for_byte_as_the_default_formatter_writes_them() {
    let emit = || {
        let ip: std::net::IpAddr = "2001:db8::1".parse().unwrap();
        let none: Option<&str> = None;
        tracing::info!(
            target: "keymint::audit",
            at = 1_796_528_265_i64,
            action = "token.issue",
            outcome = "granted",
            reason = none,
            key_id = "8wvKmFOcGFDLwubE",
            quoted = "say \"hi\"",
            backslash = r"a\b",
            newline = "two\nlines",
            unicode = "café \u{200b}",
            control = "bell\u{7}",
            empty = "",
            client_ip = %ip,
            debug = ?("x", 1),
            ok = true,
            delta = -3_i64,
            zero = 0_u64,
            max = u64::MAX,
            min = i64::MIN,
            ten = 10_i64,
            ratio = 0.5_f64,
            big = u128::MAX,
            "audit"
        );
        tracing::warn!(error = %"disk full", rows = 3_u64, "usage counts not written");
        tracing::info!(r#type = "Bearer", "raw name first");
        tracing::info!("message only with \"quotes\" and \u{1b}[31m escape");
        tracing::info!(first = "plain", "message after a field");
        tracing::error!(target: "keymint::store", "every level");
        tracing::debug!("every level");
        tracing::trace!("every level");
        // Inside spans the default writes their context: the fast line hands it over.
        let outer = tracing::info_span!("request", method = "POST");
        let _outer = outer.enter();
        let inner = tracing::warn_span!("inner");
        let _inner = inner.enter();
        tracing::warn!(rows = 3_u64, "in two spans");
    };
    let default = lines(false, emit);
    let fast = lines(true, emit);
    assert_eq!(fast, default);
    assert!(
        default.starts_with(
            "2026-12-06T03:04:48.123456Z  INFO keymint::audit: audit at=1796528265 \
             action=\"token.issue\" outcome=\"granted\""
        ),
        "{default}"
    );
    for shown in [
        " ERROR keymint::store: ",
        " DEBUG ",
        " TRACE ",
        "  WARN request{",
    ] {
        assert!(default.contains(shown), "{shown}: {default}");
    }
    assert_eq!(default.lines().count(), 9, "{default}");
}

#[test]
fn plain_means_debug_would_write_it_unchanged() {
    for s in [
        "",
        "abc",
        "a b",
        "jti=Ungl-QXUN aud=https://api.example ttl=600",
        "~!@#$%^&*()",
    ] {
        assert!(plain(s));
        assert_eq!(format!("{s:?}"), format!("\"{s}\""));
    }
    for s in ["\"", "\\", "\n", "\u{7f}", "é", "\t"] {
        assert!(!plain(s), "{s:?}");
    }
}

#[test]
fn the_clock_writes_what_the_default_clock_writes() {
    // The calendar part for fixed seconds, against the default clock's own arithmetic
    // (checked through `time` here, which the default does not use: two implementations).
    assert_eq!(calendar(0).unwrap(), "1970-01-01T00:00:00");
    assert_eq!(calendar(951_782_400).unwrap(), "2000-02-29T00:00:00");
    assert_eq!(calendar(1_796_528_265).unwrap(), "2026-12-06T03:37:45");
    assert_eq!(calendar(253_402_300_799).unwrap(), "9999-12-31T23:59:59");
    assert_eq!(
        calendar(253_402_300_800),
        None,
        "year 10000: the default clock writes it"
    );
    for micros in [0, 7, 123_456, 999_999] {
        assert_eq!(
            fraction(micros).to_vec(),
            format!(".{micros:06}Z").into_bytes()
        );
    }
    // And a line's whole timestamp has the default's shape.
    let mut s = String::new();
    CachedSecondClock
        .format_time(&mut Writer::new(&mut s))
        .unwrap();
    CachedSecondClock
        .format_time(&mut Writer::new(&mut s))
        .unwrap();
    let re = regex::Regex::new(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z){2}$").unwrap();
    assert!(re.is_match(&s), "{s}");
}
