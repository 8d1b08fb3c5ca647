//! API keys and scopes on both backends: round trips, paging, revocation, rotation, tenants.

use super::*;

both_backends!(
    keys_round_trip_and_list_by_tenant,
    keys_page_through_in_the_lists_order,
    revoking_a_key_happens_once_and_records_its_entry,
    rotation_cuts_the_old_expiry_and_inserts_the_successor_atomically,
    revoking_a_tenant_revokes_each_key_and_lists_them,
    scopes_upsert_and_publishable_origins_skip_dead_keys,
);

async fn keys_round_trip_and_list_by_tenant(s: &impl Store) {
    let a = key("a1", "acme");
    let mut b = key("b1", "beta");
    b.created_at += 10;
    b.is_admin = false;
    b.allow_origins = "https://app.beta.example".into();
    s.insert_key(&a, &audit("key.create", 1)).await.unwrap();
    s.insert_key(&b, &audit("key.create", 2)).await.unwrap();
    assert_eq!(s.key(&id_of("a1")).await.unwrap(), Some(a.clone()));
    assert_eq!(s.key(&id_of("nope")).await.unwrap(), None);
    assert!(matches!(
        s.insert_key(&a, &audit("key.create", 3)).await,
        Err(StoreError::Conflict)
    ));
    let all = s.keys(None).await.unwrap();
    assert_eq!(
        all.iter().map(|k| k.key_id.as_str()).collect::<Vec<_>>(),
        ["b1", "a1"]
    );
    assert_eq!(s.keys(Some(&tenant_of("acme"))).await.unwrap(), vec![a]);
    let tenants = s.tenants(1_800_000_000).await.unwrap();
    assert_eq!(
        tenants
            .iter()
            .map(|t| (t.tenant.as_str(), t.keys, t.active_keys))
            .collect::<Vec<_>>(),
        [("acme", 1, 1), ("beta", 1, 1)]
    );
}

/// Keys a page at a time, in the list's order (newest first, then by ID), each key once, with a
/// tenant filter, whatever the page size.
async fn keys_page_through_in_the_lists_order(s: &impl Store) {
    // Two keys share a creation time: the ID decides between them.
    for (id, tenant, at) in [
        ("k1", "acme", 10),
        ("k2", "beta", 20),
        ("k3", "acme", 20),
        ("k4", "acme", 30),
        ("k5", "beta", 40),
    ] {
        let mut k = key(id, tenant);
        k.created_at = at;
        s.insert_key(&k, &audit("key.create", at)).await.unwrap();
    }
    let ids = |v: &[KeyRecord]| v.iter().map(|k| k.key_id.clone()).collect::<Vec<_>>();
    let all = ids(&s.keys(None).await.unwrap());
    assert_eq!(all, ["k5", "k4", "k2", "k3", "k1"]);
    for size in 1..=6 {
        let mut seen = Vec::new();
        let mut after: Option<(i64, String)> = None;
        loop {
            let page = s
                .keys_page(None, after.as_ref().map(|(c, k)| (*c, k.as_str())), size)
                .await
                .unwrap();
            seen.extend(ids(&page));
            match page.last() {
                Some(last) if page.len() == usize::try_from(size).unwrap() => {
                    after = Some((last.created_at, last.key_id.clone()));
                }
                _ => break,
            }
        }
        assert_eq!(seen, all, "pages of {size}");
    }
    let acme = s
        .keys_page(Some(&tenant_of("acme")), Some((30, "k4")), 10)
        .await
        .unwrap();
    assert_eq!(ids(&acme), ["k3", "k1"]);
}

async fn revoking_a_key_happens_once_and_records_its_entry(s: &impl Store) {
    s.insert_key(&key("k1", "acme"), &audit("key.create", 1))
        .await
        .unwrap();
    let e = entry("key", "k1", 100, 5000);
    assert!(
        s.revoke_key(&id_of("k1"), &e, &audit("key.revoke", 100))
            .await
            .unwrap()
            .changed()
    );
    assert!(
        !s.revoke_key(&id_of("k1"), &e, &audit("key.revoke", 101))
            .await
            .unwrap()
            .changed()
    );
    assert!(
        !s.revoke_key(&id_of("zz"), &e, &audit("key.revoke", 102))
            .await
            .unwrap()
            .changed()
    );
    assert_eq!(
        s.key(&id_of("k1")).await.unwrap().unwrap().revoked_at,
        Some(100)
    );
    assert_eq!(s.revocations(0).await.unwrap(), vec![e]);
    assert_eq!(s.tenants(0).await.unwrap()[0].active_keys, 0);
}

async fn rotation_cuts_the_old_expiry_and_inserts_the_successor_atomically(s: &impl Store) {
    s.insert_key(&key("old", "acme"), &audit("key.create", 1))
        .await
        .unwrap();
    let next = key("new", "acme");
    assert!(
        s.rotate_key(&id_of("old"), 1_900_000_000, &next, &audit("key.rotate", 2))
            .await
            .unwrap()
            .changed()
    );
    let old = s.key(&id_of("old")).await.unwrap().unwrap();
    assert_eq!(
        (old.expires_at, old.rotated_to.as_deref()),
        (1_900_000_000, Some("new"))
    );
    // A second rotation of the same key is refused, and a grace longer than the remaining
    // lifetime never extends a key.
    assert!(
        !s.rotate_key(
            &id_of("old"),
            1_950_000_000,
            &key("x", "acme"),
            &audit("key.rotate", 3)
        )
        .await
        .unwrap()
        .changed()
    );
    assert_eq!(s.key(&id_of("x")).await.unwrap(), None);
    assert!(
        s.rotate_key(
            &id_of("new"),
            2_100_000_000,
            &key("newer", "acme"),
            &audit("key.rotate", 4)
        )
        .await
        .unwrap()
        .changed()
    );
    assert_eq!(
        s.key(&id_of("new")).await.unwrap().unwrap().expires_at,
        2_000_000_000
    );
    // A failed insert of the successor (its ID exists) leaves the old key untouched.
    assert!(
        s.rotate_key(
            &id_of("newer"),
            1,
            &key("old", "acme"),
            &audit("key.rotate", 5)
        )
        .await
        .is_err()
    );
    assert_eq!(
        s.key(&id_of("newer")).await.unwrap().unwrap().rotated_to,
        None
    );
}

async fn revoking_a_tenant_revokes_each_key_and_lists_them(s: &impl Store) {
    for id in ["t1", "t2"] {
        s.insert_key(&key(id, "acme"), &audit("key.create", 1))
            .await
            .unwrap();
    }
    s.insert_key(&key("o1", "other"), &audit("key.create", 1))
        .await
        .unwrap();
    let n = s
        .revoke_tenant(
            &tenant_of("acme"),
            &entry("tenant", "acme", 50, 900),
            &audit("tenant.revoke", 50),
        )
        .await
        .unwrap();
    assert_eq!(n, 2);
    let listed: Vec<(String, String)> = s
        .revocations(0)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.target.kind().to_owned(), e.target.id().to_owned()))
        .collect();
    assert_eq!(
        listed,
        [
            ("key".to_owned(), "t1".to_owned()),
            ("key".to_owned(), "t2".to_owned()),
            ("tenant".to_owned(), "acme".to_owned())
        ]
    );
    assert_eq!(s.key(&id_of("o1")).await.unwrap().unwrap().revoked_at, None);
}

async fn scopes_upsert_and_publishable_origins_skip_dead_keys(s: &impl Store) {
    s.put_scope(
        &scope_of("read"),
        Visibility::Private,
        &audit("scope.put", 1),
    )
    .await
    .unwrap();
    s.put_scope(
        &scope_of("read"),
        Visibility::Public,
        &audit("scope.put", 2),
    )
    .await
    .unwrap();
    s.put_scope(
        &scope_of("admin-only"),
        Visibility::Private,
        &audit("scope.put", 3),
    )
    .await
    .unwrap();
    assert_eq!(
        s.scopes()
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.name.to_string(), r.visibility))
            .collect::<Vec<_>>(),
        [
            ("admin-only".to_owned(), Visibility::Private),
            ("read".to_owned(), Visibility::Public)
        ]
    );
    let mut live = key("p1", "acme");
    live.kind = "pk".into();
    live.allow_origins = "https://b.example https://a.example".into();
    let mut expired = live.clone();
    expired.key_id = "p2".into();
    expired.expires_at = 10;
    expired.allow_origins = "https://gone.example".into();
    for k in [&live, &expired] {
        s.insert_key(k, &audit("key.create", 1)).await.unwrap();
    }
    assert_eq!(
        s.publishable_origins(100).await.unwrap(),
        ["https://a.example", "https://b.example"]
    );
}
