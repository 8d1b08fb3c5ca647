#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::net::IpAddr;
use std::time::Duration;

use keymint_jwks::UnixTime;

use super::*;
use crate::store::{AuditQuery, AuditRecord, SqliteStore, UsageCount};

fn granted<'a>(at: i64, key: &'a str, ip: &str) -> (Usage<'a>, IpAddr) {
    granted_in("acme", at, key, ip)
}

fn granted_in<'a>(tenant: &'a str, at: i64, key: &'a str, ip: &str) -> (Usage<'a>, IpAddr) {
    let ip: IpAddr = ip.parse().unwrap();
    (
        Usage {
            at,
            action: "token.issue",
            outcome: Outcome::Granted,
            code: "",
            reason: None,
            key: Presented::Known(key),
            tenant: Some(tenant),
            scopes: Some("a"),
            client: ip,
            origin: None,
            issued: None,
        },
        ip,
    )
}

/// A request at 7200 naming `key` with a wrong secret, from `origin` (a key ID is not secret).
fn wrong_secret<'a>(key: &'a str, origin: &'a str) -> Usage<'a> {
    Usage {
        at: 7200,
        action: "token.issue",
        outcome: Outcome::Refused,
        code: "wrong_secret",
        reason: Some("wrong secret"),
        key: Presented::Claimed(key),
        tenant: Some("acme"),
        scopes: None,
        client: IpAddr::from([198, 51, 100, 1]),
        origin: Some(origin),
        issued: None,
    }
}

fn sorted(mut rows: Vec<UsageCount>) -> Vec<UsageCount> {
    rows.sort_by(|a, b| {
        (&a.key_id, a.bucket, &a.client, &a.origin, &a.reason)
            .cmp(&(&b.key_id, b.bucket, &b.client, &b.origin, &b.reason))
    });
    rows
}

#[test]
fn uses_add_up_per_key_hour_client_and_outcome() {
    let mut t = Tally::default();
    for at in [7200, 7250, 7210] {
        t.add(&granted(at, "k1", "192.0.2.1").0);
    }
    // An IPv6 client is its /64: two addresses of one /64 are one row.
    t.add(&granted(7300, "k1", "2001:db8::1").0);
    t.add(&granted(7301, "k1", "2001:db8::2:3").0);
    // Another hour is another row.
    t.add(&granted(10_800, "k1", "192.0.2.1").0);
    let mut refused = granted(7400, "k1", "192.0.2.1").0;
    refused.outcome = Outcome::Refused;
    refused.code = "invalid_scope";
    t.add(&refused);
    let rows = sorted(t.take());
    let brief: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.bucket,
                r.client.as_str(),
                r.outcome.as_str(),
                r.reason.as_str(),
                r.count,
                r.first_seen,
                r.last_seen,
            )
        })
        .collect();
    assert_eq!(
        brief,
        [
            (7200, "192.0.2.1", "granted", "", 3, 7200, 7250),
            (7200, "192.0.2.1", "refused", "invalid_scope", 1, 7400, 7400),
            (7200, "2001:db8::", "granted", "", 2, 7300, 7301),
            (10_800, "192.0.2.1", "granted", "", 1, 10_800, 10_800),
        ]
    );
    assert!(t.take().is_empty(), "taken counts are gone");
}

#[test]
fn a_key_keeps_its_share_of_clients_apart_and_counts_the_rest_as_other() {
    let mut t = Tally::default();
    let n = u32::from(PER_KEY_KINDS) + 36;
    for i in 0..n {
        t.add(
            &granted(
                7200,
                "k1",
                &std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string(),
            )
            .0,
        );
    }
    // A second key is not squeezed out by the first one's flood.
    t.add(&granted(7200, "k2", "192.0.2.7").0);
    let rows = t.take();
    let k1: Vec<_> = rows.iter().filter(|r| r.key_id == "k1").collect();
    assert_eq!(k1.len(), usize::from(PER_KEY_KINDS) + 1);
    let other: Vec<_> = k1.iter().filter(|r| r.client == OTHER).collect();
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].count, 36);
    assert_eq!(other[0].origin, OTHER);
    assert_eq!(k1.iter().map(|r| r.count).sum::<i64>(), i64::from(n));
    assert!(
        rows.iter()
            .any(|r| r.key_id == "k2" && r.client == "192.0.2.7")
    );
    // The share is per hour, not per flush: after a flush the flood is still `other`.
    t.add(&granted(7201, "k1", "198.51.100.1").0);
    assert_eq!(t.take()[0].client, OTHER);
    t.add(&granted(10_800, "k1", "198.51.100.1").0);
    assert_eq!(
        t.take()[0].client,
        "198.51.100.1",
        "a new hour, a new share"
    );
}

#[test]
fn guessed_key_ids_and_forged_origins_fold_into_one_bounded_row() {
    let mut t = Tally::default();
    let n = u32::from(PER_UNKNOWN_KINDS) + 500;
    let ids: Vec<String> = (0..n).map(|i| format!("guess{i:011}")).collect();
    let origins: Vec<String> = (0..n).map(|i| format!("https://o{i}.example")).collect();
    for i in 0..n as usize {
        t.add(&Usage {
            at: 7200,
            action: "token.issue",
            outcome: Outcome::Refused,
            code: "unknown_key",
            reason: Some("unknown key"),
            key: Presented::Unknown(&ids[i]),
            tenant: None,
            scopes: None,
            client: IpAddr::from(std::net::Ipv6Addr::from(
                (0x2001_0db8_u128 << 96) + ((i as u128) << 64),
            )),
            origin: Some(&origins[i]),
            issued: None,
        });
    }
    let rows = t.take();
    // No guessed ID is a row of its own; past the share, one `other` row holds the rest.
    assert!(
        rows.iter().all(|r| r.key_id == "unknown"),
        "{:?}",
        &rows[..2]
    );
    assert_eq!(rows.len(), usize::from(PER_UNKNOWN_KINDS) + 1);
    let other: Vec<_> = rows.iter().filter(|r| r.client == OTHER).collect();
    assert_eq!((other.len(), other[0].count), (1, 500));
    assert_eq!(
        (other[0].origin.as_str(), other[0].reason.as_str()),
        (OTHER, OTHER)
    );
}

/// Found in review: key IDs are not secret, so anyone could send a key's ID with a wrong secret
/// from 64 forged origins and fill the key's share: its real clients then fell into `other` for
/// the hour. Such refusals have a share of their own; the holder's clients keep theirs.
#[test]
fn wrong_secret_refusals_cannot_crowd_the_holders_clients_out_of_the_rollups() {
    let mut t = Tally::default();
    let origins: Vec<String> = (0..200).map(|i| format!("https://o{i}.example")).collect();
    for origin in &origins {
        t.add(&wrong_secret("k1", origin));
    }
    for n in 0..PER_KEY_KINDS {
        t.add(&granted(7200, "k1", &format!("192.0.2.{n}")).0);
    }
    let rows = t.take();
    let (refused, granted): (Vec<_>, Vec<_>) = rows.iter().partition(|r| r.outcome == "refused");
    // Every client of the holder has its own row...
    assert_eq!(granted.len(), usize::from(PER_KEY_KINDS));
    assert!(
        granted
            .iter()
            .all(|r| r.client != OTHER && r.key_id == "k1")
    );
    // ...and the forged origins were a share of their own, the rest one `other` row (its reason
    // code kept: it is the issuer's, not the client's).
    assert_eq!(refused.len(), usize::from(PER_CLAIMED_KINDS) + 1);
    let other: Vec<_> = refused.iter().filter(|r| r.origin == OTHER).collect();
    assert_eq!(other.len(), 1);
    assert_eq!(
        (other[0].count, other[0].reason.as_str()),
        (200 - i64::from(PER_CLAIMED_KINDS), "wrong_secret")
    );
}

#[test]
fn an_hour_never_keeps_more_than_its_bound_of_kinds_apart() {
    let mut t = Tally::default();
    // MAX_KINDS keys of several tenants, each with one client, then one more key: it has no
    // room left apart.
    let ids: Vec<String> = (0..=MAX_KINDS).map(|i| format!("k{i}")).collect();
    let tenants: Vec<String> = (0..8).map(|i| format!("t{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        t.add(&granted_in(&tenants[i % 8], 7200, id, "192.0.2.1").0);
    }
    let rows = t.take();
    assert_eq!(rows.len(), MAX_KINDS + 1);
    let last = rows.iter().find(|r| r.key_id == ids[MAX_KINDS]).unwrap();
    assert_eq!(last.client, OTHER);
}

/// Found in review: the hour's bound was one pool for every tenant, so one large tenant (1,600
/// keys with 64 clients each) pushed every other tenant's new clients into `other` for the rest
/// of the hour. A tenant's keys now keep at most a quarter of it apart.
#[test]
fn one_tenant_cannot_take_the_hours_bound_from_the_others() {
    let mut t = Tally::default();
    let n = PER_TENANT_KINDS + 10;
    let ids: Vec<String> = (0..n).map(|i| format!("big{i}")).collect();
    for id in &ids {
        t.add(&granted_in("big", 7200, id, "192.0.2.1").0);
    }
    t.add(&granted_in("small", 7200, "small1", "192.0.2.1").0);
    let rows = t.take();
    let big_apart = rows
        .iter()
        .filter(|r| r.key_id.starts_with("big") && r.client != OTHER)
        .count();
    assert_eq!(big_apart, PER_TENANT_KINDS);
    let big_other: i64 = rows
        .iter()
        .filter(|r| r.key_id.starts_with("big") && r.client == OTHER)
        .map(|r| r.count)
        .sum();
    assert_eq!(big_other, 10, "beyond its share, still counted");
    let small = rows.iter().find(|r| r.key_id == "small1").unwrap();
    assert_eq!(small.client, "192.0.2.1");
}

/// Key IDs are not secret: wrong-secret requests naming many keys, from forged origins, keep at
/// most [`MAX_CLAIMED_KINDS`] apart in all, and take nothing from the tenant's share.
#[test]
fn wrong_secret_refusals_across_many_keys_keep_a_bounded_share_of_the_hour() {
    let mut t = Tally::default();
    let per_key = usize::from(PER_CLAIMED_KINDS);
    let keys = MAX_CLAIMED_KINDS / per_key + 10;
    let ids: Vec<String> = (0..keys).map(|i| format!("k{i}")).collect();
    let origins: Vec<String> = (0..per_key)
        .map(|i| format!("https://o{i}.example"))
        .collect();
    for id in &ids {
        for origin in &origins {
            t.add(&wrong_secret(id, origin));
        }
    }
    t.add(&granted(7200, "holder", "192.0.2.7").0);
    let rows = t.take();
    let apart = rows
        .iter()
        .filter(|r| r.outcome == "refused" && r.origin != OTHER)
        .count();
    assert_eq!(apart, MAX_CLAIMED_KINDS);
    let holder = rows.iter().find(|r| r.key_id == "holder").unwrap();
    assert_eq!(holder.client, "192.0.2.7");
}

#[test]
fn a_long_origin_is_cut_on_a_character_boundary() {
    let mut t = Tally::default();
    let origin = format!("https://{}.example", "é".repeat(300));
    let mut u = granted(7200, "k1", "192.0.2.1").0;
    u.origin = Some(&origin);
    t.add(&u);
    let rows = t.take();
    assert!(rows[0].origin.len() <= 256 && origin.starts_with(&rows[0].origin));
}

async fn store(name: &str) -> (SqliteStore, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("keymint-usage-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    (SqliteStore::open(&dir.join("db")).await.unwrap(), dir)
}

#[tokio::test]
async fn counts_the_database_refuses_are_kept_and_added_to() {
    let (s, dir) = store("restore").await;
    let log = UsageLog::new();
    log.record(&granted(7200, "k1", "192.0.2.1").0);
    log.flush(&s).await;
    log.record(&granted(7201, "k1", "192.0.2.1").0);
    // As the writer does when the database fails: the rows go back, later uses add to them.
    let taken = log.lock().take();
    log.record(&granted(7202, "k1", "192.0.2.1").0);
    log.lock().restore(taken);
    assert_eq!(log.lock().pending(), 1);
    log.flush(&s).await;
    let lines = s.usage("k1", 0, 10).await.unwrap();
    assert_eq!(
        (lines[0].count, lines[0].first_seen, lines[0].last_seen),
        (3, 7200, 7202)
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn retention_prunes_what_is_older_and_keeps_the_hour_it_cuts_through() {
    let (s, dir) = store("prune").await;
    let day: i64 = 24 * 3600;
    let now = UnixTime(100 * 24 * 3600 + 1800);
    let retention = Duration::from_secs(90 * 24 * 3600);
    let cutoff = 10 * day + 1800;
    let rec = |at: i64| AuditRecord {
        at,
        action: "key.create".into(),
        outcome: "ok".into(),
        ..AuditRecord::default()
    };
    // More than a batch of old admin rows, and rows either side of the cutoff.
    let old: Vec<AuditRecord> = (0..super::PRUNE_BATCH + 5).map(rec).collect();
    s.insert_audit(&old).await.unwrap();
    s.insert_audit(&[rec(cutoff - 1), rec(cutoff), rec(cutoff + 1)])
        .await
        .unwrap();
    let log = UsageLog::new();
    for at in [cutoff - 3600 - 1, cutoff - 1, cutoff + 7200] {
        log.record(&granted(at, "k1", "192.0.2.1").0);
    }
    log.flush(&s).await;
    // Keys dead since just before the cutoff go; dead since the cutoff, or alive, they stay.
    for (id, expires_at, revoked_at) in [
        ("expired-before", cutoff - 1, None),
        ("revoked-before", cutoff + day, Some(cutoff - 1)),
        ("expired-at-cutoff", cutoff, None),
        ("revoked-at-cutoff", cutoff + day, Some(cutoff)),
        ("alive", cutoff + day, None),
    ] {
        let key = crate::store::KeyRecord {
            expires_at,
            revoked_at,
            ..crate::store::tests::key(id, "acme")
        };
        s.insert_key(&key, &rec(cutoff + 2)).await.unwrap();
    }
    let pruned = prune(&s, now, retention).await.unwrap();
    assert_eq!(pruned.audit, u64::try_from(old.len()).unwrap() + 1);
    assert_eq!(
        pruned.usage, 1,
        "only the hour that ended before the cutoff"
    );
    assert_eq!(pruned.keys, 2, "the keys dead since before the cutoff");
    assert_eq!(
        crate::store::tests::key_ids(&s).await,
        ["alive", "expired-at-cutoff", "revoked-at-cutoff"]
    );
    let left: Vec<i64> = s
        .audit(&AuditQuery {
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .iter()
        .map(|e| e.record.at)
        .collect();
    // Five key.create rows at cutoff + 2 besides.
    assert_eq!(left[5..], [cutoff + 1, cutoff]);
    let rows = s.usage_rows(0, 10).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        prune(&s, now, retention).await.unwrap(),
        retention::Pruned::default()
    );
    let _ = std::fs::remove_dir_all(dir);
}
