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
    let mut backoff = Duration::from_millis(250);
    while !ctx.stopped() {
        if !ctx.keys_in.load(Ordering::SeqCst) {
            ctx.sleep(Duration::from_millis(50));
            continue;
        }
        let mut req = agent.get(&url).set("Accept", "text/event-stream");
        if let Some(id) = &last_id {
            req = req.set("Last-Event-ID", id);
        }
        match req.call() {
            Ok(res) => {
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
                            backoff = Duration::from_millis(250);
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
            }
            Err(e) => tracing::warn!(error = %e, "revocation events unavailable; polling instead"),
        }
        ctx.sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}
