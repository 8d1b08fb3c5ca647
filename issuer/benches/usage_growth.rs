//! How much the database grows with usage rollups (issue #15), measured on a real SQLite file:
//!
//! 1. 1,000,000 issuances from 1,000 keys x 10 client addresses within one hour, counted and
//!    flushed as the server does (one batch a second; 20,000 issuances a second here);
//! 2. one client using one key in every hour of a day: the bytes per key per day;
//! 3. pruning that day in batches of `PRUNE_BATCH`: how long one batch holds the write lock.
//!
//! `cargo bench -p keymint --bench usage_growth` prints the figures quoted in
//! docs/operations.md. Not a timed test: it asserts nothing about speed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::indexing_slicing,
    clippy::cast_precision_loss
)]
#![allow(clippy::disallowed_methods)]

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use keymint::domain::usage::{Outcome, Presented, Usage, UsageLog};
use keymint::store::{SqliteStore, Store};

fn size(dir: &Path) -> u64 {
    ["keymint.db", "keymint.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

async fn checkpoint(store: &SqliteStore, dir: &Path) -> u64 {
    // Fold the write-ahead log in, so the file size is the data's.
    store.checkpoint().await.unwrap();
    size(dir)
}

fn usage<'a>(at: i64, key: &'a str, client: IpAddr) -> Usage<'a> {
    Usage {
        at,
        action: "token.issue",
        outcome: Outcome::Granted,
        code: "",
        reason: None,
        key: Presented::Known(key),
        tenant: Some("bench"),
        scopes: Some("orders:read"),
        client,
        origin: None,
        issued: None,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dir = std::env::temp_dir().join(format!("keymint-usage-growth-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = SqliteStore::open(&dir.join("keymint.db")).await.unwrap();
    let empty = checkpoint(&store, &dir).await;

    // 1. A million issuances, 1,000 keys x 10 clients, one hour.
    let keys: Vec<String> = (0..1000).map(|k| format!("{k:016}")).collect();
    let clients: Vec<IpAddr> = (0..10u8).map(|c| IpAddr::from([198, 51, 100, c])).collect();
    let log = UsageLog::new();
    let started = Instant::now();
    // The start of an hour.
    let hour: i64 = 1_800_000_000 / 3600 * 3600;
    for n in 0..1_000_000usize {
        let at = hour + i64::try_from(n / 20_000).unwrap();
        log.record(&usage(at, &keys[n % 1000], clients[(n / 1000) % 10]));
        if n % 20_000 == 19_999 {
            log.flush(&store).await;
        }
    }
    log.flush(&store).await;
    let counted = started.elapsed();
    let rows = store.usage_rows(0, 1_000_000).await.unwrap().len();
    let after = checkpoint(&store, &dir).await;
    let grown = after - empty;
    println!("1,000,000 issuances, 1,000 keys x 10 clients, one hour:");
    println!("  rollup rows          {rows}");
    println!(
        "  database growth      {:.2} MB ({grown} bytes)",
        grown as f64 / 1e6
    );
    println!("  bytes per row        {}", grown / rows as u64);
    // A million issuances: the seconds are the microseconds per issuance (no log subscriber
    // here, so this is the counting and the writes alone).
    println!(
        "  counting + 50 flushes {:.2} s, {:.2} us per issuance",
        counted.as_secs_f64(),
        counted.as_secs_f64()
    );

    // 2. 1,000 keys, each used by one client in every hour of a day (many keys, so that whole
    // pages are measured, not the first page of a table).
    let before = checkpoint(&store, &dir).await;
    let day = hour + 7 * 24 * 3600;
    let day_keys: Vec<String> = (0..1000).map(|k| format!("day{k:013}")).collect();
    for h in 0..24 {
        for k in &day_keys {
            for s in 0..10 {
                log.record(&usage(day + h * 3600 + s, k, clients[0]));
            }
        }
        log.flush(&store).await;
    }
    let per_day = (checkpoint(&store, &dir).await - before) / 1000;
    println!("one key used by one client in every hour of a day: {per_day} bytes per key per day");

    // 3. Pruning the first hour's rows in batches: the longest a batch held the write lock.
    let mut longest = Duration::ZERO;
    let mut batches = 0;
    loop {
        let t = Instant::now();
        let n = store
            .prune_usage(hour + 3600, keymint::domain::usage::PRUNE_BATCH)
            .await
            .unwrap();
        longest = longest.max(t.elapsed());
        batches += 1;
        if n == 0 {
            break;
        }
    }
    println!(
        "pruning {rows} rows: {batches} batches of at most {}, the longest {:.1} ms",
        keymint::domain::usage::PRUNE_BATCH,
        longest.as_secs_f64() * 1e3
    );
    let _ = std::fs::remove_dir_all(&dir);
}
