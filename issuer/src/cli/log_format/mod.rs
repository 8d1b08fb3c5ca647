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
mod tests;
