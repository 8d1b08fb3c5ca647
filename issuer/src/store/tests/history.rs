//! The store's history: audit rows, usage rollups, last-used times, and what the retention
//! prunes (audit rows, rollups, dead keys), on both backends.

use super::*;

both_backends!(
    audit_filters_and_pages_newest_first,
    usage_counts_add_up_and_prune_in_batches,
    keys_dead_before_the_cutoff_prune_in_batches,
    audit_rows_prune_by_time_in_batches,
    last_used_only_moves_forward,
);

async fn audit_filters_and_pages_newest_first(s: &impl Store) {
    let records: Vec<AuditRecord> = (0..25)
        .map(|i| AuditRecord {
            at: 1000 + i,
            action: if i % 5 == 0 {
                "key.revoke"
            } else {
                "token.issue"
            }
            .into(),
            outcome: if i % 2 == 0 { "granted" } else { "refused" }.into(),
            key_id: Some(format!("k{}", i % 3)),
            tenant: Some("acme".into()),
            reason: (i % 2 == 1).then(|| "invalid_scope".into()),
            ..AuditRecord::default()
        })
        .collect();
    s.insert_audit(&records).await.unwrap();
    let page = |q: AuditQuery| async move { s.audit(&q).await.unwrap() };
    let first = page(AuditQuery {
        limit: 10,
        ..AuditQuery::default()
    })
    .await;
    assert_eq!(first.len(), 10);
    assert_eq!(first[0].record, records[24]);
    let second = page(AuditQuery {
        limit: 10,
        before: Some(first[9].id),
        ..AuditQuery::default()
    })
    .await;
    assert_eq!(second[0].record, records[14]);
    let revokes = page(AuditQuery {
        limit: 100,
        action: Some("key.revoke".into()),
        ..AuditQuery::default()
    })
    .await;
    assert_eq!(revokes.len(), 5);
    let k1_refused_window = page(AuditQuery {
        limit: 100,
        key_id: Some("k1".into()),
        outcome: Some("refused".into()),
        since: Some(1005),
        until: Some(1020),
        tenant: Some("acme".into()),
        ..AuditQuery::default()
    })
    .await;
    let ats: Vec<i64> = k1_refused_window.iter().map(|e| e.record.at).collect();
    assert_eq!(ats, [1019, 1013, 1007]);
}

async fn last_used_only_moves_forward(s: &impl Store) {
    s.insert_key(&key("u1", "acme"), &audit("key.create", 1))
        .await
        .unwrap();
    s.touch_keys(&[(id_of("u1"), 500), (id_of("missing"), 1)])
        .await
        .unwrap();
    s.touch_keys(&[(id_of("u1"), 400)]).await.unwrap();
    assert_eq!(
        s.key(&id_of("u1")).await.unwrap().unwrap().last_used_at,
        Some(500)
    );
}

async fn usage_counts_add_up_and_prune_in_batches(s: &impl Store) {
    let count = |key: &str, bucket: i64, client: &str, n: i64, first: i64, last: i64| {
        crate::store::UsageCount {
            key_id: key.into(),
            bucket,
            action: "token.issue".into(),
            outcome: "granted".into(),
            reason: String::new(),
            client: client.into(),
            origin: String::new(),
            count: n,
            first_seen: first,
            last_seen: last,
        }
    };
    s.add_usage(&[count("k1", 3600, "192.0.2.1", 3, 3700, 3710)])
        .await
        .unwrap();
    s.add_usage(&[
        count("k1", 3600, "192.0.2.1", 2, 3650, 3705),
        count("k1", 3600, "192.0.2.2", 1, 3800, 3800),
        count("k1", 7200, "192.0.2.1", 4, 7300, 7400),
        count("k2", 7200, "192.0.2.9", 9, 7300, 7300),
    ])
    .await
    .unwrap();
    // Summed over the hours, per client: the same row added to, never a row per addition.
    let lines = s.usage("k1", 0, 100).await.unwrap();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!((lines[0].client.as_str(), lines[0].count), ("192.0.2.1", 9));
    assert_eq!((lines[0].first_seen, lines[0].last_seen), (3650, 7400));
    assert_eq!((lines[1].client.as_str(), lines[1].count), ("192.0.2.2", 1));
    assert_eq!(s.usage_rows(0, 100).await.unwrap().len(), 4);
    // From an hour on.
    let later = s.usage("k1", 7200, 100).await.unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].count, 4);
    // Pruning takes at most a batch, oldest hours only.
    assert_eq!(s.prune_usage(7200, 1).await.unwrap(), 1);
    assert_eq!(s.prune_usage(7200, 10).await.unwrap(), 1);
    assert_eq!(s.prune_usage(7200, 10).await.unwrap(), 0);
    assert_eq!(s.usage_rows(0, 100).await.unwrap().len(), 2);
}

/// Keys revoked or expired before the cutoff go, a batch at a time; keys alive at the cutoff,
/// revoked or expired after it, or still named by usage rows (a dead key clients still present),
/// stay.
async fn keys_dead_before_the_cutoff_prune_in_batches(s: &impl Store) {
    let with = |id: &str, expires_at: i64, revoked_at: Option<i64>| KeyRecord {
        expires_at,
        revoked_at,
        ..key(id, "acme")
    };
    for k in [
        with("expired-long-ago", 100, None),
        with("revoked-long-ago", 5_000, Some(200)),
        with("both-long-ago", 300, Some(250)),
        with("expired-at-cutoff", 1_000, None),
        with("revoked-after", 5_000, Some(1_500)),
        with("expired-after", 2_000, None),
        with("alive", 5_000, None),
        with("revoked-still-tried", 5_000, Some(300)),
    ] {
        s.insert_key(&k, &audit("key.create", 1)).await.unwrap();
    }
    s.add_usage(&[crate::store::UsageCount {
        key_id: "revoked-still-tried".into(),
        bucket: 3600,
        action: "token.issue".into(),
        outcome: "refused".into(),
        reason: "revoked_key".into(),
        client: "192.0.2.1".into(),
        origin: String::new(),
        count: 1,
        first_seen: 3601,
        last_seen: 3601,
    }])
    .await
    .unwrap();
    assert_eq!(s.prune_keys(1_000, 2).await.unwrap(), 2);
    assert_eq!(s.prune_keys(1_000, 2).await.unwrap(), 1);
    assert_eq!(s.prune_keys(1_000, 2).await.unwrap(), 0);
    assert_eq!(
        key_ids(s).await,
        [
            "alive",
            "expired-after",
            "expired-at-cutoff",
            "revoked-after",
            "revoked-still-tried"
        ]
    );
}

async fn audit_rows_prune_by_time_in_batches(s: &impl Store) {
    let rec = |at: i64| AuditRecord {
        at,
        action: "key.create".into(),
        outcome: "ok".into(),
        ..AuditRecord::default()
    };
    s.insert_audit(&[rec(10), rec(20), rec(30), rec(40)])
        .await
        .unwrap();
    assert_eq!(s.prune_audit(35, 2).await.unwrap(), 2);
    assert_eq!(s.prune_audit(35, 2).await.unwrap(), 1);
    assert_eq!(s.prune_audit(35, 2).await.unwrap(), 0);
    let left = s
        .audit(&AuditQuery {
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].record.at, 40);
}
