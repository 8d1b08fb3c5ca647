//! The text log line, written faster than `tracing-subscriber`'s defaults and byte for byte the
//! same: every issuance writes one audit line, and `perf` of the token endpoint under load showed
//! formatting it at about 4 % of the server's CPU, most of it writing string fields through
//! `Debug` (a character-by-character escape) and the date through `Display` on every line.
//!
//! - [`FastFields`] writes a string field that needs no escaping (printable ASCII without `"` or
//!   `\`: key IDs, tenants, scopes, reason codes, `jti`s) as `name="value"` directly, which is what
//!   `Debug` would have written, and any other field but the message as `name=` and its `Debug`,
//!   which is what the default formatter writes without colours; the rest goes to it.
//! - [`CachedSecondClock`] formats the date and time of day once a second per thread and only the
//!   microseconds per line.
//! - [`FastLine`] copies the level and the target into the line where the default writes them
//!   through `write!` (three trips through the formatting machinery a line, about 900
//!   instructions by callgrind: a third of what the fields cost).
//!
//! Only for plain text: a terminal (colours) and `--log-format json` keep the defaults.

use std::cell::RefCell;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::{DefaultVisitor, Format, Full, Writer};
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The text line without colours, `{time} {LEVEL} {target}: {fields}`, as `Format<Full>` writes it
/// with its defaults (target on; no thread, file or line), for an event outside any span; an event
/// inside one goes to `Format<Full>` itself, which writes the spans' context. The metadata is the
/// event's own: this build has no `tracing-log` (events of the `log` crate would name their
/// origin in `log.*` fields that the default formatter reads).
#[derive(Debug, Clone)]
pub(super) struct FastLine<T = CachedSecondClock> {
    timer: T,
    full: Format<Full, T>,
}

impl<T: FormatTime + Clone> FastLine<T> {
    pub(super) fn new(timer: T) -> Self {
        Self {
            full: tracing_subscriber::fmt::format().with_timer(timer.clone()),
            timer,
        }
    }
}

/// The level padded to five and the spaces around it, as the default writes it after the time.
fn level_text(level: Level) -> &'static str {
    match level {
        Level::TRACE => " TRACE ",
        Level::DEBUG => " DEBUG ",
        Level::INFO => "  INFO ",
        Level::WARN => "  WARN ",
        Level::ERROR => " ERROR ",
    }
}

impl<S, N, T> FormatEvent<S, N> for FastLine<T>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    T: FormatTime,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // Spans' context, or colours (this is installed for plain text only, but should it meet a
        // terminal's writer): the default's job.
        if writer.has_ansi_escapes() || ctx.event_scope().is_some() {
            return self.full.format_event(ctx, writer, event);
        }
        let meta = event.metadata();
        if self.timer.format_time(&mut writer).is_err() {
            writer.write_str("<unknown time>")?;
        }
        writer.write_str(level_text(*meta.level()))?;
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        ctx.format_fields(writer.by_ref(), event)?;
        writer.write_char('\n')
    }
}

/// Field formatting with a fast path for plain string values (see the module docs).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct FastFields;

impl<'a> MakeVisitor<Writer<'a>> for FastFields {
    type Visitor = FastVisitor<'a>;

    fn make_visitor(&self, target: Writer<'a>) -> Self::Visitor {
        FastVisitor {
            writer: target,
            is_empty: true,
            result: Ok(()),
        }
    }
}

/// Writes plain string fields itself and hands every other field to [`DefaultVisitor`], telling
/// it whether a field was written before (so the separating spaces come out the same).
pub(super) struct FastVisitor<'a> {
    writer: Writer<'a>,
    is_empty: bool,
    result: fmt::Result,
}

impl FastVisitor<'_> {
    /// Starts a field as the default visitor does: a space unless it is the first, then `name`
    /// and `then` (`=`, or `="` before a quoted value: one write fewer per field). False when an
    /// earlier write failed.
    fn begin(&mut self, name: &str, then: &str) -> bool {
        if self.result.is_err() {
            return false;
        }
        if !self.is_empty {
            self.result = self.writer.write_char(' ');
        }
        self.is_empty = false;
        if self.result.is_ok() {
            self.result = self
                .writer
                .write_str(name)
                .and_then(|()| self.writer.write_str(then));
        }
        self.result.is_ok()
    }

    fn delegate(&mut self, record: impl FnOnce(&mut DefaultVisitor<'_>)) {
        if self.result.is_err() {
            return;
        }
        let mut default = DefaultVisitor::new(self.writer.by_ref(), self.is_empty);
        record(&mut default);
        self.result = default.finish();
        // It writes every field it is given (it skips `log.*` fields only with the `tracing-log`
        // feature, which this build does not enable).
        self.is_empty = false;
    }
}

/// Fields the default visitor treats specially: the message (ANSI escapes sanitized), raw
/// identifiers (`r#type` written as `type`) and, with its `tracing-log` feature, `log.*` metadata.
fn special(name: &str) -> bool {
    name == "message" || name.starts_with("r#") || name.starts_with("log.")
}

/// Whether `{value:?}` is `"value"`: printable ASCII, no quote, no backslash.
fn plain(value: &str) -> bool {
    // Without an early exit the loop is vectorized; values are short and nearly always plain.
    value.bytes().fold(true, |ok, b| {
        ok & (0x20..0x7f).contains(&b) & (b != b'"') & (b != b'\\')
    })
}

impl Visit for FastVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let name = field.name();
        if special(name) || !plain(value) {
            return self.delegate(|d| d.record_str(field, value));
        }
        if self.begin(name, "=\"") {
            self.result = self
                .writer
                .write_str(value)
                .and_then(|()| self.writer.write_char('"'));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.delegate(|d| d.record_error(field, value));
    }

    /// Numbers, booleans and `%`/`?` fields (the audit line's `at` and `client_ip`) come here too.
    /// Without colours the default visitor writes `name=` and the value's `Debug`, through two
    /// styled (empty) paints per field: written directly here.
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = field.name();
        if special(name) {
            return self.delegate(|d| d.record_debug(field, value));
        }
        if self.begin(name, "=") {
            self.result = write!(self.writer, "{value:?}");
        }
    }
}

impl VisitOutput<fmt::Result> for FastVisitor<'_> {
    fn finish(self) -> fmt::Result {
        self.result
    }
}

impl VisitFmt for FastVisitor<'_> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        &mut self.writer
    }
}

/// `2026-12-06T03:04:48.123456Z`, as the default clock writes it, with the part up to the second
/// formatted once a second per thread.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct CachedSecondClock;

thread_local! {
    /// The second last formatted on this thread and its `YYYY-MM-DDTHH:MM:SS`.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

impl FormatTime for CachedSecondClock {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        let Ok(since) = SystemTime::now().duration_since(UNIX_EPOCH) else {
            return tracing_subscriber::fmt::time::SystemTime.format_time(w);
        };
        let secs = since.as_secs();
        let written = SECOND.with(|cell| {
            let mut cached = cell.borrow_mut();
            if cached.0 != secs {
                let text = calendar(secs)?;
                *cached = (secs, text);
            }
            Some(w.write_str(&cached.1))
        });
        match written {
            Some(r) => r?,
            // Beyond year 9999: the default clock knows how to write those.
            None => return tracing_subscriber::fmt::time::SystemTime.format_time(w),
        }
        let frac = fraction(since.subsec_micros());
        w.write_str(std::str::from_utf8(&frac).map_err(|_| fmt::Error)?)
    }
}

/// `.{micros:06}Z` by hand: through `write!` the padding machinery cost more than the date.
fn fraction(mut micros: u32) -> [u8; 8] {
    let mut frac = *b".000000Z";
    for digit in frac.iter_mut().skip(1).take(6).rev() {
        // A digit: `micros % 10` is below 10.
        *digit = b'0' + u8::try_from(micros % 10).unwrap_or(0);
        micros /= 10;
    }
    frac
}

/// `YYYY-MM-DDTHH:MM:SS` (UTC) of Unix second `secs`, for years 0000..=9999.
fn calendar(secs: u64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).ok()?).ok()?;
    if !(0..=9999).contains(&t.year()) {
        return None;
    }
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    ))
}

#[cfg(test)]
mod tests {
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
}
