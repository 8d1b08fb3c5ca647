//! The push channel: server-sent events (`event: revocations`, `id: <serial>`, `data: <list>`),
//! reconnected with backoff and `Last-Event-ID`.

use std::io::{BufRead as _, Read as _};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::ctx::Ctx;
use super::fetch;

/// Room on an event-stream line for the field name and line ending around a list (`data: ...\r\n`).
const SSE_LINE_ALLOWANCE: u64 = 64;

pub(super) fn events_thread(ctx: Arc<Ctx>, url: String) {
    // Reads block until the next event or keep-alive (every 15 s from keymint).
    let agent = fetch::agent(ctx.cfg.timeout, Duration::from_secs(45), None);
    // No line of a stream we accept is longer than a whole list: reading stops there, so a
    // hostile endpoint cannot grow one line without bound before the list's own cap is checked.
    let max_line = ctx.cfg.max_list_bytes.saturating_add(SSE_LINE_ALLOWANCE);
    let mut last_id: Option<String> = None;
    // Halved once before the first wait: a first refusal waits FIRST_BACKOFF.
    let mut backoff = FIRST_BACKOFF / 2;
    while !ctx.stopped() {
        if !ctx.keys_in.load(Ordering::SeqCst) {
            ctx.sleep(Duration::from_millis(50));
            continue;
        }
        let mut req = agent.get(&url).set("Accept", "text/event-stream");
        if let Some(id) = &last_id {
            req = req.set("Last-Event-ID", id);
        }
        let mut lasted = Duration::ZERO;
        match req.call() {
            Ok(res) => {
                let connected = std::time::Instant::now();
                ctx.push_connected.store(true, Ordering::SeqCst);
                let mut reader = std::io::BufReader::new(res.into_reader());
                let (mut id, mut event, mut data) = (None::<String>, String::new(), String::new());
                let mut line = String::new();
                loop {
                    if ctx.stopped() {
                        return;
                    }
                    line.clear();
                    match reader
                        .by_ref()
                        .take(max_line.saturating_add(1))
                        .read_line(&mut line)
                    {
                        Ok(0) | Err(_) => break,
                        Ok(n) if n as u64 > max_line => {
                            tracing::warn!("revocation event line too long; reconnecting");
                            break;
                        }
                        Ok(_) => {}
                    }
                    let l = line.trim_end_matches(['\r', '\n']);
                    if l.is_empty() {
                        if event == "revocations" && !data.is_empty() {
                            ctx.counters.events.fetch_add(1, Ordering::Relaxed);
                            // The event ID advances only with a list in force: on reconnecting,
                            // a refused list is sent again.
                            if ctx.install_list(&data) && id.is_some() {
                                last_id.clone_from(&id);
                            }
                            backoff = FIRST_BACKOFF / 2;
                        }
                        event.clear();
                        data.clear();
                    } else if let Some(v) = l.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                        if data.len() as u64 > ctx.cfg.max_list_bytes {
                            tracing::warn!("pushed revocation list too large; reconnecting");
                            break;
                        }
                    } else if let Some(v) = l.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = l.strip_prefix("id:") {
                        id = Some(v.trim().to_owned());
                    }
                }
                ctx.push_connected.store(false, Ordering::SeqCst);
                lasted = connected.elapsed();
            }
            Err(e) => tracing::warn!(error = %e, "revocation events unavailable; polling instead"),
        }
        backoff = next_backoff(backoff, lasted);
        ctx.sleep(backoff);
    }
}

/// The first wait before reconnecting, and the longest.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A stream that stayed up this long was working: cut by a proxy's stream limit or a deploy,
/// not refused. An issuer sends nothing on a reconnect whose `Last-Event-ID` is current, so
/// "an event arrived" cannot be the sign: streams cut every minute by a load balancer would
/// otherwise double the wait each time, up to 30 s without push, again and again.
const WORKED_FOR: Duration = Duration::from_secs(5);

/// The wait before the next connection, after one that stayed up `lasted` (zero: refused).
fn next_backoff(previous: Duration, lasted: Duration) -> Duration {
    if lasted >= WORKED_FOR {
        FIRST_BACKOFF
    } else {
        (previous * 2).min(MAX_BACKOFF)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_that_worked_reconnects_at_once_and_refusals_back_off_to_a_cap() {
        // Refused (or cut at once) again and again: doubling, up to the cap.
        let mut b = FIRST_BACKOFF;
        let mut waits = Vec::new();
        for _ in 0..10 {
            b = next_backoff(b, Duration::ZERO);
            waits.push(b.as_millis());
        }
        assert_eq!(
            waits,
            [
                500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000
            ]
        );
        // A stream that stayed up (cut by a proxy's limit, an issuer deploy): back to the first.
        assert_eq!(next_backoff(MAX_BACKOFF, WORKED_FOR), FIRST_BACKOFF);
        assert_eq!(
            next_backoff(MAX_BACKOFF, WORKED_FOR - Duration::from_millis(1)),
            MAX_BACKOFF
        );
    }
}
