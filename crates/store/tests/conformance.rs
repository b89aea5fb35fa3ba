//! One storage conformance suite, run against every backend: SQLite always, PostgreSQL
//! whenever `COGNATE_TEST_POSTGRES_URL` is set (CI sets it; in CI its absence is a failure).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cognate_store::{
    AccessKeyRow, AccountRow, Backend, BucketDeletion, BucketRow, CreateAccountRequestRow,
    EntityRow, InlinePolicyRow, ObjectRow, OrganizationRow, PartRow, PolicyVersionRow, Removed,
    RemovedVersion, SessionKeyRow, Store, StoreError, UploadRow, Version, VersionEntry, Written,
};
use cognate_store::{
    ClientRow, GroupRow, PoolRow, RefreshTokenRow, SigningKeyRow, UserConflict, UserRow,
};
use cognate_store::{DatasetRow, DatasetWrite, SyncRecordRow};
use cognate_store::{IdentityKeyRow, IdentityPoolRow, IdentityRow, Login};

async fn suite(open: impl AsyncFn() -> Store) {
    let store = open().await;
    settings_keep_the_first_value(&store).await;
    accounts_round_trip_and_conflict(&store).await;
    access_keys_round_trip_and_conflict(&store).await;
    session_keys_are_ordered(&store).await;
    iam_entities(&store).await;
    iam_relations(&store).await;
    organizations(&store).await;
    s3_rows(&store).await;
    user_pool_rows(&store).await;
    identity_pool_rows(&store).await;
    sync_rows(&store).await;
    store.close().await;
    // Reopening runs the migrations again, which must be a no-op that keeps the data.
    let reopened = open().await;
    assert_eq!(
        reopened
            .account("111122223333")
            .await
            .unwrap()
            .unwrap()
            .name,
        "alpha"
    );
    reopened.close().await;
}

async fn settings_keep_the_first_value(store: &Store) {
    assert_eq!(store.setting("default_account").await.unwrap(), None);
    assert_eq!(
        store
            .setting_or_insert("default_account", "111122223333")
            .await
            .unwrap(),
        "111122223333"
    );
    assert_eq!(
        store
            .setting_or_insert("default_account", "999999999999")
            .await
            .unwrap(),
        "111122223333"
    );
    assert_eq!(
        store.setting("default_account").await.unwrap().as_deref(),
        Some("111122223333")
    );
}

async fn accounts_round_trip_and_conflict(store: &Store) {
    let a = AccountRow {
        account_id: "111122223333".into(),
        name: "alpha".into(),
        email: None,
        created_at: 1_700_000_000,
    };
    let b = AccountRow {
        account_id: "444455556666".into(),
        name: "beta".into(),
        email: Some("b@example.com".into()),
        created_at: 1_700_000_001,
    };
    store.create_account(&a).await.unwrap();
    store.create_account(&b).await.unwrap();
    assert_eq!(
        store.account("111122223333").await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(store.account("444455556666").await.unwrap(), Some(b));
    assert_eq!(store.account("000000000000").await.unwrap(), None);
    assert!(matches!(
        store.create_account(&a).await,
        Err(StoreError::Conflict)
    ));
}

async fn access_keys_round_trip_and_conflict(store: &Store) {
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    let root = AccessKeyRow {
        access_key_id: "AKIAAAAAAAAAAAAAAAAA".into(),
        account_id: "111122223333".into(),
        user_name: None,
        secret_sealed: all_bytes,
        status: "Active".into(),
        created_at: 1_700_000_000,
    };
    store.create_access_key(&root).await.unwrap();
    assert_eq!(
        store.access_key("AKIAAAAAAAAAAAAAAAAA").await.unwrap(),
        Some(root.clone())
    );
    assert_eq!(
        store.access_key("AKIAZZZZZZZZZZZZZZZZ").await.unwrap(),
        None
    );
    assert!(matches!(
        store.create_access_key(&root).await,
        Err(StoreError::Conflict)
    ));
    store
        .replace_access_key_secret(&root.access_key_id, b"resealed")
        .await
        .unwrap();
    assert_eq!(
        store
            .access_key(&root.access_key_id)
            .await
            .unwrap()
            .unwrap()
            .secret_sealed,
        b"resealed"
    );
    let orphan = AccessKeyRow {
        access_key_id: "AKIABBBBBBBBBBBBBBBB".into(),
        account_id: "000000000000".into(),
        ..root.clone()
    };
    assert!(
        matches!(
            store.create_access_key(&orphan).await,
            Err(StoreError::Database(_))
        ),
        "a key of an unknown account violates the foreign key"
    );
}

async fn session_keys_are_ordered(store: &Store) {
    assert!(store.session_keys().await.unwrap().is_empty());
    for id in [2, 1, 3] {
        store
            .add_session_key(&SessionKeyRow {
                key_id: id,
                key_sealed: vec![id as u8; 60],
                created_at: id,
            })
            .await
            .unwrap();
    }
    let ids: Vec<i64> = store
        .session_keys()
        .await
        .unwrap()
        .iter()
        .map(|k| k.key_id)
        .collect();
    assert_eq!(ids, vec![1, 2, 3]);
    let dup = SessionKeyRow {
        key_id: 2,
        key_sealed: vec![],
        created_at: 0,
    };
    assert!(matches!(
        store.add_session_key(&dup).await,
        Err(StoreError::Conflict)
    ));
}

#[tokio::test]
async fn sqlite_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cognate.db");
    suite(async || {
        let store = Store::open_sqlite(&path).await.unwrap();
        assert_eq!(store.backend(), Backend::Sqlite);
        store
    })
    .await;
}

/// The PostgreSQL URL for tests, or `None` outside CI when it is not configured.
fn postgres_url() -> Option<String> {
    match std::env::var("COGNATE_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("COGNATE_TEST_POSTGRES_URL must be set in CI: the PostgreSQL suite may not skip")
        }
        _ => {
            eprintln!(
                "COGNATE_TEST_POSTGRES_URL is not set: skipping the PostgreSQL conformance run"
            );
            None
        }
    }
}

#[tokio::test]
async fn postgres_conformance() {
    let Some(url) = postgres_url() else { return };
    // Each run gets its own schema, so runs never see each other's rows.
    let schema = format!("conformance_{}", uuid::Uuid::new_v4().simple());
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&url)
        .await
        .expect("PostgreSQL at COGNATE_TEST_POSTGRES_URL must be reachable");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    suite(async || {
        let store = Store::open(&scoped).await.unwrap();
        assert_eq!(store.backend(), Backend::Postgres);
        store
    })
    .await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
}

fn user(name: &str, path: &str) -> EntityRow {
    EntityRow {
        account_id: "111122223333".into(),
        kind: "user".into(),
        name: name.into(),
        id: format!("AIDA{}", name.to_uppercase()),
        path: path.into(),
        arn: format!("arn:aws:iam::111122223333:user{path}{name}"),
        attrs: "{}".into(),
        created_at: 1,
    }
}

async fn iam_entities(store: &Store) {
    for (name, path) in [
        ("alice", "/"),
        ("Bob", "/eng/"),
        ("carol", "/eng/ops/"),
        ("dave", "/"),
    ] {
        store.create_entity(&user(name, path)).await.unwrap();
    }
    // Names are unique regardless of case.
    let dup = EntityRow {
        id: "AIDAOTHER".into(),
        arn: "arn:aws:iam::111122223333:user/ALICE".into(),
        ..user("ALICE", "/")
    };
    assert!(matches!(
        store.create_entity(&dup).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store
            .entity("111122223333", "user", "BOB")
            .await
            .unwrap()
            .unwrap()
            .name,
        "Bob"
    );
    assert_eq!(
        store.entity("111122223333", "group", "bob").await.unwrap(),
        None
    );
    assert_eq!(
        store
            .entity_by_arn("arn:aws:iam::111122223333:user/eng/ops/carol")
            .await
            .unwrap()
            .unwrap()
            .name,
        "carol"
    );

    let names = |rows: Vec<EntityRow>| rows.into_iter().map(|r| r.name).collect::<Vec<_>>();
    assert_eq!(
        names(
            store
                .list_entities("111122223333", "user", "/", None, 10)
                .await
                .unwrap()
        ),
        ["alice", "Bob", "carol", "dave"]
    );
    assert_eq!(
        names(
            store
                .list_entities("111122223333", "user", "/eng/", None, 10)
                .await
                .unwrap()
        ),
        ["Bob", "carol"]
    );
    assert_eq!(
        names(
            store
                .list_entities("111122223333", "user", "/", None, 2)
                .await
                .unwrap()
        ),
        ["alice", "Bob"]
    );
    assert_eq!(
        names(
            store
                .list_entities("111122223333", "user", "/", Some("Bob"), 2)
                .await
                .unwrap()
        ),
        ["carol", "dave"]
    );

    assert!(
        store
            .update_entity_attrs("111122223333", "user", "dave", "{}", r#"{"x":1}"#)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .entity("111122223333", "user", "dave")
            .await
            .unwrap()
            .unwrap()
            .attrs,
        r#"{"x":1}"#
    );
    assert!(
        store
            .delete_entity("111122223333", "user", "DAVE")
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_entity("111122223333", "user", "dave")
            .await
            .unwrap()
    );
}

async fn iam_relations(store: &Store) {
    let group = EntityRow {
        kind: "group".into(),
        id: "AGPAOPS".into(),
        arn: "arn:aws:iam::111122223333:group/ops".into(),
        ..user("ops", "/")
    };
    store.create_entity(&group).await.unwrap();
    store
        .add_group_member("111122223333", "ops", "alice")
        .await
        .unwrap();
    store
        .add_group_member("111122223333", "OPS", "ALICE")
        .await
        .unwrap();
    store
        .add_group_member("111122223333", "ops", "bob")
        .await
        .unwrap();
    let members: Vec<String> = store
        .group_members("111122223333", "ops")
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(members, ["alice", "Bob"]);
    assert_eq!(
        store
            .groups_for_user("111122223333", "alice")
            .await
            .unwrap()[0]
            .name,
        "ops"
    );
    assert!(
        store
            .remove_group_member("111122223333", "ops", "bob")
            .await
            .unwrap()
    );
    assert!(
        !store
            .remove_group_member("111122223333", "ops", "bob")
            .await
            .unwrap()
    );
    store
        .remove_memberships("111122223333", "user", "alice")
        .await
        .unwrap();
    assert!(
        store
            .group_members("111122223333", "ops")
            .await
            .unwrap()
            .is_empty()
    );

    let arn = "arn:aws:iam::111122223333:policy/p";
    store
        .attach_policy("111122223333", "user", "alice", arn)
        .await
        .unwrap();
    store
        .attach_policy("111122223333", "user", "alice", arn)
        .await
        .unwrap();
    store
        .attach_policy("111122223333", "group", "ops", arn)
        .await
        .unwrap();
    assert_eq!(
        store
            .attached_policies("111122223333", "user", "ALICE")
            .await
            .unwrap(),
        [arn]
    );
    assert_eq!(store.attachment_count(arn).await.unwrap(), 2);
    assert!(
        store
            .detach_policy("111122223333", "group", "ops", arn)
            .await
            .unwrap()
    );
    assert_eq!(store.attachment_count(arn).await.unwrap(), 1);

    let doc = |d: &str| InlinePolicyRow {
        policy_name: "Read".into(),
        document: d.into(),
    };
    store
        .put_inline_policy("111122223333", "user", "alice", &doc("v1"))
        .await
        .unwrap();
    store
        .put_inline_policy("111122223333", "user", "alice", &doc("v2"))
        .await
        .unwrap();
    assert_eq!(
        store
            .inline_policies("111122223333", "user", "alice")
            .await
            .unwrap(),
        [doc("v2")]
    );
    assert!(
        store
            .delete_inline_policy("111122223333", "user", "alice", "READ")
            .await
            .unwrap()
    );
    assert!(
        store
            .inline_policies("111122223333", "user", "alice")
            .await
            .unwrap()
            .is_empty()
    );

    for (v, t) in [("v2", 20), ("v1", 10)] {
        store
            .put_policy_version(&PolicyVersionRow {
                policy_arn: arn.into(),
                version_id: v.into(),
                document: "{}".into(),
                created_at: t,
            })
            .await
            .unwrap();
    }
    let versions: Vec<String> = store
        .policy_versions(arn)
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.version_id)
        .collect();
    assert_eq!(versions, ["v1", "v2"]);
    assert!(store.delete_policy_version(arn, "v1").await.unwrap());

    // A version and its policy's counter are written together, or neither is.
    let mut policy = user("vp", "/");
    policy.kind = "policy".into();
    policy.arn = "arn:aws:iam::111122223333:policy/vp".into();
    store.create_entity(&policy).await.unwrap();
    let version = |v: &str| PolicyVersionRow {
        policy_arn: policy.arn.clone(),
        version_id: v.into(),
        document: "{}".into(),
        created_at: 30,
    };
    let owner = ("111122223333", "vp");
    assert!(
        store
            .add_policy_version(&version("v2"), owner, "{}", r#"{"n":3}"#)
            .await
            .unwrap()
    );
    // Stale attributes: no version row is left behind.
    assert!(
        !store
            .add_policy_version(&version("v3"), owner, "{}", r#"{"n":4}"#)
            .await
            .unwrap()
    );
    // An existing version: nothing changes.
    assert!(
        !store
            .add_policy_version(&version("v2"), owner, r#"{"n":3}"#, r#"{"n":9}"#)
            .await
            .unwrap()
    );
    let ids: Vec<String> = store
        .policy_versions(&policy.arn)
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.version_id)
        .collect();
    assert_eq!(ids, ["v2"]);
    assert_eq!(
        store
            .entity("111122223333", "policy", "vp")
            .await
            .unwrap()
            .unwrap()
            .attrs,
        r#"{"n":3}"#
    );

    let key = AccessKeyRow {
        access_key_id: "AKIAUSERUSERUSERUSER".into(),
        account_id: "111122223333".into(),
        user_name: Some("alice".into()),
        secret_sealed: vec![1, 2, 3],
        status: "Active".into(),
        created_at: 5,
    };
    store.create_access_key(&key).await.unwrap();
    assert_eq!(
        store
            .access_keys_of("111122223333", Some("alice"))
            .await
            .unwrap(),
        std::slice::from_ref(&key)
    );
    assert_eq!(
        store
            .access_keys_of("111122223333", None)
            .await
            .unwrap()
            .len(),
        1,
        "the root key from earlier"
    );
    assert_eq!(store.key_last_used(&key.access_key_id).await.unwrap(), None);
    store
        .record_key_use(&key.access_key_id, 100, "iam", "us-east-1")
        .await
        .unwrap();
    store
        .record_key_use(&key.access_key_id, 50, "sts", "us-east-1")
        .await
        .unwrap();
    assert_eq!(
        store.key_last_used(&key.access_key_id).await.unwrap(),
        Some((100, "iam".into(), "us-east-1".into()))
    );
    assert!(
        store
            .set_access_key_status(&key.access_key_id, "Inactive")
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .access_key(&key.access_key_id)
            .await
            .unwrap()
            .unwrap()
            .status,
        "Inactive"
    );
    assert!(store.delete_access_key(&key.access_key_id).await.unwrap());
    assert!(!store.delete_access_key(&key.access_key_id).await.unwrap());
}

async fn organizations(store: &Store) {
    let org = OrganizationRow {
        org_id: "o-abcdefghij".into(),
        management_account_id: "111122223333".into(),
        feature_set: "ALL".into(),
        created_at: 7,
    };
    assert_eq!(store.organization_of("111122223333").await.unwrap(), None);
    store.create_organization(&org).await.unwrap();
    assert_eq!(
        store.organization_of("111122223333").await.unwrap(),
        Some(org.clone())
    );
    let again = OrganizationRow {
        org_id: "o-zzzzzzzzzz".into(),
        ..org.clone()
    };
    assert!(matches!(
        store.create_organization(&again).await,
        Err(StoreError::Conflict)
    ));

    let member = AccountRow {
        account_id: "777788889999".into(),
        name: "logs".into(),
        email: Some("logs@example.com".into()),
        created_at: 9,
    };
    store
        .create_member_account(&org.org_id, &member)
        .await
        .unwrap();
    assert!(matches!(
        store.create_member_account(&org.org_id, &member).await,
        Err(StoreError::Conflict)
    ));
    let members = store.organization_accounts(&org.org_id).await.unwrap();
    let ids: Vec<&str> = members
        .iter()
        .map(|m| m.account.account_id.as_str())
        .collect();
    assert_eq!(ids, ["111122223333", "777788889999"]);
    assert_eq!(members[1].joined_method, "CREATED");
    assert_eq!(
        store
            .organization_of("777788889999")
            .await
            .unwrap()
            .unwrap()
            .org_id,
        org.org_id
    );

    let request = CreateAccountRequestRow {
        request_id: "car-0123456789".into(),
        org_id: org.org_id.clone(),
        account_name: "logs".into(),
        account_id: Some("777788889999".into()),
        state: "SUCCEEDED".into(),
        requested_at: 9,
        completed_at: Some(9),
    };
    store.put_create_account_request(&request).await.unwrap();
    assert_eq!(
        store
            .create_account_request("car-0123456789")
            .await
            .unwrap(),
        Some(request)
    );
    assert_eq!(
        store.create_account_request("car-missing").await.unwrap(),
        None
    );
}

fn object(bucket: &str, key: &str, blob: &str) -> ObjectRow {
    ObjectRow {
        bucket: bucket.into(),
        key: key.into(),
        blob: blob.into(),
        size: 3,
        etag: "\"e\"".into(),
        last_modified: 1_700_000_000_000,
        headers: "[]".into(),
        version_id: format!("v-{blob}"),
    }
}

fn unversioned(unreferenced: Vec<String>) -> Option<Written> {
    Some(Written {
        version_id: None,
        unreferenced,
    })
}

async fn s3_rows(store: &Store) {
    let bucket = BucketRow {
        name: "conf-bucket".into(),
        account_id: "111122223333".into(),
        region: "us-east-1".into(),
        created_at: 1,
        policy: None,
        cors: None,
        versioning: None,
        tags: None,
    };
    store.create_bucket(&bucket).await.unwrap();
    assert!(
        store
            .set_bucket_cors("conf-bucket", Some("<CORSConfiguration/>"))
            .await
            .unwrap()
    );
    assert!(!store.set_bucket_cors("nope", Some("<x/>")).await.unwrap());
    assert!(
        store
            .set_bucket_tags("conf-bucket", Some("a=1"))
            .await
            .unwrap()
    );
    assert!(!store.set_bucket_tags("nope", Some("a=1")).await.unwrap());
    let tagged = store.bucket("conf-bucket").await.unwrap().unwrap();
    assert_eq!(tagged.tags.as_deref(), Some("a=1"));
    assert!(store.set_bucket_tags("conf-bucket", None).await.unwrap());
    let stored = store.bucket("conf-bucket").await.unwrap().unwrap();
    assert_eq!(stored.cors.as_deref(), Some("<CORSConfiguration/>"));
    assert!(store.set_bucket_cors("conf-bucket", None).await.unwrap());
    assert!(matches!(
        store.create_bucket(&bucket).await,
        Err(StoreError::Conflict)
    ));
    assert!(
        store
            .set_bucket_policy("conf-bucket", Some("{}"))
            .await
            .unwrap()
    );
    assert!(!store.set_bucket_policy("nope", Some("{}")).await.unwrap());
    assert_eq!(
        store
            .bucket("conf-bucket")
            .await
            .unwrap()
            .unwrap()
            .policy
            .as_deref(),
        Some("{}")
    );
    // Keys list in byte order on every backend (not a locale's collation).
    for (i, key) in ["b", "B", "a/x", "a/", "a", "é", "Z", "a-b"]
        .iter()
        .enumerate()
    {
        assert_eq!(
            store
                .put_object(&object("conf-bucket", key, &format!("blob{i}")))
                .await
                .unwrap(),
            unversioned(vec![])
        );
    }
    let keys: Vec<String> = store
        .list_objects("conf-bucket", "", true, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(keys, ["B", "Z", "a", "a-b", "a/", "a/x", "b", "é"]);
    let after: Vec<String> = store
        .list_objects("conf-bucket", "a/", false, 2)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(after, ["a/x", "b"]);
    // Replacing returns the old file; a missing bucket stores nothing.
    assert_eq!(
        store
            .put_object(&object("conf-bucket", "b", "blob-new"))
            .await
            .unwrap(),
        unversioned(vec!["blob0".into()])
    );
    assert_eq!(
        store.put_object(&object("nope", "k", "x")).await.unwrap(),
        None
    );
    assert_eq!(
        store.delete_bucket("conf-bucket").await.unwrap(),
        BucketDeletion::NotEmpty
    );

    let upload = UploadRow {
        upload_id: "up1".into(),
        bucket: "conf-bucket".into(),
        key: "big".into(),
        initiator: "arn:aws:iam::111122223333:root".into(),
        initiated: 5,
        headers: "[]".into(),
    };
    assert!(store.create_upload(&upload).await.unwrap());
    let part = |n: i64, blob: &str| PartRow {
        upload_id: "up1".into(),
        part_number: n,
        blob: blob.into(),
        size: 10,
        etag: "\"p\"".into(),
        last_modified: 6,
    };
    assert_eq!(store.put_part(&part(2, "p2")).await.unwrap(), Some(None));
    assert_eq!(store.put_part(&part(1, "p1")).await.unwrap(), Some(None));
    assert_eq!(
        store.put_part(&part(1, "p1b")).await.unwrap(),
        Some(Some("p1".into()))
    );
    let parts = store.list_parts("up1", 0, 10).await.unwrap();
    assert_eq!(
        parts.iter().map(|p| p.part_number).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(
        store.list_uploads("conf-bucket", "", "", 10).await.unwrap(),
        vec![upload.clone()]
    );
    let mut referenced = store.referenced_blobs().await.unwrap();
    referenced.sort();
    assert!(referenced.contains(&"p1b".to_owned()) && referenced.contains(&"blob-new".to_owned()));
    let mut freed = store
        .complete_upload("up1", &object("conf-bucket", "big", "joined"))
        .await
        .unwrap()
        .unwrap()
        .unreferenced;
    freed.sort();
    assert_eq!(freed, ["p1b", "p2"]);
    assert_eq!(store.upload("up1").await.unwrap(), None);
    assert_eq!(store.abort_upload("up1").await.unwrap(), None);
    assert_eq!(
        store
            .object("conf-bucket", "big")
            .await
            .unwrap()
            .unwrap()
            .blob,
        "joined"
    );
    for key in ["b", "B", "a/x", "a/", "a", "é", "Z", "a-b", "big"] {
        let removed = store
            .delete_object("conf-bucket", key, "m", 7)
            .await
            .unwrap();
        assert_eq!((removed.marker, removed.unreferenced.len()), (None, 1));
    }
    assert_eq!(
        store
            .delete_object("conf-bucket", "b", "m", 7)
            .await
            .unwrap(),
        Removed::default()
    );
    s3_versions(store).await;
    assert_eq!(
        store.delete_bucket("conf-bucket").await.unwrap(),
        BucketDeletion::Deleted(vec![])
    );
    assert_eq!(
        store.delete_bucket("conf-bucket").await.unwrap(),
        BucketDeletion::Missing
    );
}

/// Versioning: versions pile up under one key in order, delete markers hide a key, deleting
/// the current version brings the previous one back, and suspending replaces only the
/// `null` version.
async fn s3_versions(store: &Store) {
    let listed = |entries: Vec<VersionEntry>| -> Vec<(String, String, bool, bool)> {
        entries
            .into_iter()
            .map(|e| (e.key, e.version_id, e.delete_marker, e.latest))
            .collect()
    };
    let v = |k: &str, id: &str, marker: bool, latest: bool| {
        (k.to_owned(), id.to_owned(), marker, latest)
    };
    // Written before versioning: the `null` version.
    assert_eq!(
        store
            .put_object(&object("conf-bucket", "k", "b0"))
            .await
            .unwrap(),
        unversioned(vec![])
    );
    assert!(
        store
            .set_bucket_versioning("conf-bucket", "Enabled")
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_bucket_versioning("nope", "Enabled")
            .await
            .unwrap()
    );
    for blob in ["b1", "b2"] {
        let written = store
            .put_object(&object("conf-bucket", "k", blob))
            .await
            .unwrap();
        assert_eq!(
            written,
            Some(Written {
                version_id: Some(format!("v-{blob}")),
                unreferenced: vec![]
            })
        );
    }
    assert_eq!(
        store
            .object("conf-bucket", "k")
            .await
            .unwrap()
            .unwrap()
            .blob,
        "b2"
    );
    assert_eq!(
        listed(
            store
                .list_versions("conf-bucket", "", i64::MAX, 100)
                .await
                .unwrap()
        ),
        [
            v("k", "v-b2", false, true),
            v("k", "v-b1", false, false),
            v("k", "null", false, false)
        ]
    );
    match store
        .object_version("conf-bucket", "k", "v-b1")
        .await
        .unwrap()
    {
        Some(Version::Object(row)) => assert_eq!(row.blob, "b1"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store
            .object_version("conf-bucket", "k", "v-x")
            .await
            .unwrap(),
        None
    );
    // A delete hides the key behind a marker and frees nothing.
    let removed = store
        .delete_object("conf-bucket", "k", "m1", 9)
        .await
        .unwrap();
    assert_eq!(
        removed,
        Removed {
            marker: Some("m1".into()),
            unreferenced: vec![]
        }
    );
    assert_eq!(store.object("conf-bucket", "k").await.unwrap(), None);
    assert_eq!(
        store.latest_marker("conf-bucket", "k").await.unwrap(),
        Some(("m1".into(), 9))
    );
    assert_eq!(
        store
            .object_version("conf-bucket", "k", "m1")
            .await
            .unwrap(),
        Some(Version::Marker {
            version_id: "m1".into(),
            last_modified: 9
        })
    );
    assert_eq!(
        store.delete_bucket("conf-bucket").await.unwrap(),
        BucketDeletion::NotEmpty
    );
    // Paging resumes after a version.
    let seq = store
        .version_seq("conf-bucket", "k", "v-b2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        listed(
            store
                .list_versions("conf-bucket", "k", seq, 1)
                .await
                .unwrap()
        ),
        [v("k", "v-b1", false, false)]
    );
    // Deleting the marker brings the newest version back.
    let gone = store
        .delete_version("conf-bucket", "k", "m1")
        .await
        .unwrap();
    assert_eq!(
        gone,
        Some(RemovedVersion {
            was_marker: true,
            unreferenced: vec![]
        })
    );
    assert_eq!(store.latest_marker("conf-bucket", "k").await.unwrap(), None);
    assert_eq!(
        store
            .object("conf-bucket", "k")
            .await
            .unwrap()
            .unwrap()
            .blob,
        "b2"
    );
    // Deleting the current version makes the previous one current and frees its file.
    let gone = store
        .delete_version("conf-bucket", "k", "v-b2")
        .await
        .unwrap();
    assert_eq!(
        gone,
        Some(RemovedVersion {
            was_marker: false,
            unreferenced: vec!["b2".into()]
        })
    );
    assert_eq!(
        store
            .object("conf-bucket", "k")
            .await
            .unwrap()
            .unwrap()
            .blob,
        "b1"
    );
    assert_eq!(
        store
            .delete_version("conf-bucket", "k", "v-b2")
            .await
            .unwrap(),
        None
    );
    // Suspended: a write replaces the `null` version and keeps the others.
    assert!(
        store
            .set_bucket_versioning("conf-bucket", "Suspended")
            .await
            .unwrap()
    );
    let written = store
        .put_object(&object("conf-bucket", "k", "b3"))
        .await
        .unwrap();
    assert_eq!(
        written,
        Some(Written {
            version_id: Some("null".into()),
            unreferenced: vec!["b0".into()]
        })
    );
    let written = store
        .put_object(&object("conf-bucket", "k", "b4"))
        .await
        .unwrap();
    assert_eq!(
        written,
        Some(Written {
            version_id: Some("null".into()),
            unreferenced: vec!["b3".into()]
        })
    );
    let removed = store
        .delete_object("conf-bucket", "k", "m2", 10)
        .await
        .unwrap();
    assert_eq!(
        removed,
        Removed {
            marker: Some("null".into()),
            unreferenced: vec!["b4".into()]
        }
    );
    assert_eq!(
        listed(
            store
                .list_versions("conf-bucket", "", i64::MAX, 100)
                .await
                .unwrap()
        ),
        [v("k", "null", true, true), v("k", "v-b1", false, false)]
    );
    let mut referenced = store.referenced_blobs().await.unwrap();
    referenced.sort();
    assert_eq!(referenced, ["b1"]);
    for id in ["null", "v-b1"] {
        assert!(
            store
                .delete_version("conf-bucket", "k", id)
                .await
                .unwrap()
                .is_some()
        );
    }
    assert_eq!(
        store
            .list_versions("conf-bucket", "", i64::MAX, 100)
            .await
            .unwrap(),
        []
    );
}

async fn user_pool_rows(store: &Store) {
    let pool = PoolRow {
        pool_id: "us-east-1_conf".into(),
        account_id: "111122223333".into(),
        name: "conf".into(),
        config: "{}".into(),
        created_at: 1,
        updated_at: 1,
    };
    let key = SigningKeyRow {
        pool_id: pool.pool_id.clone(),
        kid: "k1".into(),
        key_sealed: vec![1, 2, 3],
        created_at: 1,
    };
    store.create_pool(&pool, &key).await.unwrap();
    assert_eq!(
        store.user_pool("us-east-1_conf").await.unwrap(),
        Some(pool.clone())
    );
    assert_eq!(
        store.signing_keys("us-east-1_conf").await.unwrap(),
        vec![key]
    );
    assert_eq!(
        store
            .user_pools_of("111122223333", "", 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .update_user_pool("us-east-1_conf", "{}", "{\"a\":1}", 2)
            .await
            .unwrap()
    );
    // A change computed from settings another change replaced writes nothing.
    assert!(
        !store
            .update_user_pool("us-east-1_conf", "{}", "{\"b\":1}", 3)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .user_pool("us-east-1_conf")
            .await
            .unwrap()
            .unwrap()
            .config,
        "{\"a\":1}"
    );
    let second = SigningKeyRow {
        pool_id: pool.pool_id.clone(),
        kid: "k2".into(),
        key_sealed: vec![4, 5],
        created_at: 2,
    };
    assert!(store.add_signing_key(&second).await.unwrap());
    assert!(
        !store
            .add_signing_key(&SigningKeyRow {
                pool_id: "us-east-1_none".into(),
                ..second.clone()
            })
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .signing_keys("us-east-1_conf")
            .await
            .unwrap()
            .iter()
            .map(|k| k.kid.as_str())
            .collect::<Vec<_>>(),
        ["k1", "k2"]
    );
    store
        .delete_signing_key("us-east-1_conf", "k1")
        .await
        .unwrap();
    assert_eq!(
        store.signing_keys("us-east-1_conf").await.unwrap(),
        vec![second]
    );
    let client = ClientRow {
        client_id: "client1".into(),
        pool_id: pool.pool_id.clone(),
        secret_sealed: Some(vec![9; 40]),
        config: "{}".into(),
        created_at: 1,
        updated_at: 1,
    };
    assert!(store.create_app_client(&client).await.unwrap());
    assert!(
        !store
            .create_app_client(&ClientRow {
                client_id: "orphan".into(),
                pool_id: "us-east-1_none".into(),
                ..client.clone()
            })
            .await
            .unwrap()
    );
    assert_eq!(
        store.app_client("client1").await.unwrap(),
        Some(client.clone())
    );
    let user = |key: &str, sub: &str| UserRow {
        pool_id: pool.pool_id.clone(),
        username_key: key.into(),
        sub: sub.into(),
        record: "{}".into(),
        secrets_sealed: vec![7; 10],
        created_at: 1,
        updated_at: 1,
        version: 0,
    };
    let alice = user("alice", "sub-a");
    assert_eq!(
        store
            .create_pool_user(&alice, &["email:a@example.com".into()])
            .await
            .unwrap(),
        Ok(())
    );
    assert_eq!(
        store.create_pool_user(&alice, &[]).await.unwrap(),
        Err(UserConflict::Username)
    );
    assert_eq!(
        store
            .create_pool_user(&user("bob", "sub-b"), &["email:a@example.com".into()])
            .await
            .unwrap(),
        Err(UserConflict::Alias("email:a@example.com".into()))
    );
    // The failed insert left nothing behind.
    assert_eq!(
        store.pool_user("us-east-1_conf", "bob").await.unwrap(),
        None
    );
    assert_eq!(
        store
            .pool_user_by_alias("us-east-1_conf", "email:a@example.com")
            .await
            .unwrap()
            .unwrap()
            .username_key,
        "alice"
    );
    assert_eq!(
        store
            .pool_user_by_alias("us-east-1_conf", "sub:sub-a")
            .await
            .unwrap()
            .unwrap()
            .username_key,
        "alice"
    );
    let mut changed = alice.clone();
    changed.record = "{\"x\":1}".into();
    assert_eq!(
        store
            .update_pool_user(&changed, &["email:new@example.com".into()])
            .await
            .unwrap(),
        Ok(true)
    );
    assert_eq!(
        store
            .pool_user_by_alias("us-east-1_conf", "email:a@example.com")
            .await
            .unwrap(),
        None
    );
    // Updates are compare-and-swap on the version: a change computed from version 0 after
    // another change from version 0 landed writes nothing.
    let stored = store
        .pool_user("us-east-1_conf", "alice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.version, 1);
    assert_eq!(stored.record, "{\"x\":1}");
    let mut lost = alice.clone();
    lost.record = "{\"lost\":1}".into();
    assert_eq!(
        store.update_pool_user(&lost, &[]).await.unwrap(),
        Err(UserConflict::Stale)
    );
    let kept = store
        .pool_user("us-east-1_conf", "alice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((kept.version, kept.record.as_str()), (1, "{\"x\":1}"));
    assert_eq!(
        store
            .pool_user_by_alias("us-east-1_conf", "email:new@example.com")
            .await
            .unwrap()
            .unwrap()
            .username_key,
        "alice",
        "a stale update leaves the aliases alone too"
    );
    // Of many concurrent changes from the same version, exactly one lands.
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            let mut row = kept.clone();
            row.record = format!("{{\"racer\":{i}}}");
            tokio::spawn(async move { store.update_pool_user(&row, &[]).await.unwrap() })
        })
        .collect();
    let mut landed = 0;
    for r in racers {
        match r.await.unwrap() {
            Ok(true) => landed += 1,
            Err(UserConflict::Stale) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(landed, 1);
    assert_eq!(
        store
            .pool_user("us-east-1_conf", "alice")
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
    let mut gone = kept.clone();
    gone.username_key = "nobody".into();
    assert_eq!(store.update_pool_user(&gone, &[]).await.unwrap(), Ok(false));
    let refresh = RefreshTokenRow {
        token_hash: "h1".into(),
        pool_id: pool.pool_id.clone(),
        username_key: "alice".into(),
        client_id: "client1".into(),
        origin_jti: "o1".into(),
        issued_at: 1,
        expires_at: 100,
        previous_hash: None,
        rotated_at_ms: None,
        current_sealed: None,
    };
    store.insert_refresh_token(&refresh).await.unwrap();
    assert!(store.sign_in_live("o1").await.unwrap());
    let (found, live) = store
        .pool_user_for_token("us-east-1_conf", "sub-a", "o1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.username_key.as_str(), live), ("alice", true));
    let (_, live) = store
        .pool_user_for_token("us-east-1_conf", "sub-a", "other")
        .await
        .unwrap()
        .unwrap();
    assert!(!live);
    assert_eq!(
        store
            .pool_user_for_token("us-east-1_conf", "sub-x", "o1")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.refresh_token("h1").await.unwrap(),
        Some(refresh.clone())
    );
    // Rotation replaces the token in place; the old one is found as the previous one, and a
    // rotation from a token that is no longer current changes nothing.
    assert!(
        store
            .rotate_refresh_token("h1", "h2", b"sealed-2", 5000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .rotate_refresh_token("h1", "h3", b"sealed-3", 6000)
            .await
            .unwrap()
    );
    let rotated = RefreshTokenRow {
        token_hash: "h2".into(),
        previous_hash: Some("h1".into()),
        rotated_at_ms: Some(5000),
        current_sealed: Some(b"sealed-2".to_vec()),
        ..refresh.clone()
    };
    assert_eq!(
        store.refresh_token("h1").await.unwrap(),
        Some(rotated.clone())
    );
    assert_eq!(store.refresh_token("h2").await.unwrap(), Some(rotated));
    assert_eq!(store.refresh_token("h3").await.unwrap(), None);
    assert!(store.sign_in_live("o1").await.unwrap());
    let other = RefreshTokenRow {
        token_hash: "g1".into(),
        origin_jti: "o2".into(),
        ..refresh.clone()
    };
    store.insert_refresh_token(&other).await.unwrap();
    assert!(store.revoke_sign_in("o2").await.unwrap());
    assert!(!store.revoke_sign_in("o2").await.unwrap());
    assert!(!store.sign_in_live("o2").await.unwrap());
    assert_eq!(
        store
            .revoke_user_refresh_tokens("us-east-1_conf", "alice")
            .await
            .unwrap(),
        1
    );
    assert!(!store.sign_in_live("o1").await.unwrap());
    let group = GroupRow {
        pool_id: pool.pool_id.clone(),
        name: "admins".into(),
        record: "{}".into(),
        created_at: 1,
        updated_at: 1,
    };
    store.create_pool_group(&group).await.unwrap();
    assert!(matches!(
        store.create_pool_group(&group).await,
        Err(StoreError::Conflict)
    ));
    for _ in 0..2 {
        store
            .add_pool_group_member("us-east-1_conf", "admins", "alice")
            .await
            .unwrap();
    }
    assert_eq!(
        store
            .pool_groups_of_user("us-east-1_conf", "alice")
            .await
            .unwrap(),
        vec![group.clone()]
    );
    assert_eq!(
        store
            .pool_group_members("us-east-1_conf", "admins", "", 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .delete_pool_user("us-east-1_conf", "alice")
            .await
            .unwrap()
    );
    assert_eq!(
        store.pool_users("us-east-1_conf", "", 10).await.unwrap(),
        vec![]
    );
    // Deleting the user ended its memberships.
    assert!(
        store
            .pool_group_members("us-east-1_conf", "admins", "", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .delete_pool_group("us-east-1_conf", "admins")
            .await
            .unwrap()
    );
    // Deleting the pool takes its clients and keys with it.
    assert!(store.delete_user_pool("us-east-1_conf").await.unwrap());
    assert_eq!(store.app_client("client1").await.unwrap(), None);
    assert!(
        store
            .signing_keys("us-east-1_conf")
            .await
            .unwrap()
            .is_empty()
    );
}

fn login(provider: &str, subject: &str) -> Login {
    Login {
        provider: provider.into(),
        subject: subject.into(),
    }
}

async fn identity_pool_rows(store: &Store) {
    let pool = IdentityPoolRow {
        pool_id: "us-east-1:0001".into(),
        account_id: "111122223333".into(),
        name: "conf".into(),
        config: "{}".into(),
        created_at: 1,
        updated_at: 1,
    };
    store.create_identity_pool(&pool).await.unwrap();
    assert!(matches!(
        store.create_identity_pool(&pool).await,
        Err(StoreError::Conflict)
    ));
    let mut other = pool.clone();
    other.pool_id = "us-east-1:0002".into();
    store.create_identity_pool(&other).await.unwrap();
    let page = store
        .identity_pools_of("111122223333", "", 1)
        .await
        .unwrap();
    assert_eq!(page, vec![pool.clone()]);
    let page = store
        .identity_pools_of("111122223333", &pool.pool_id, 10)
        .await
        .unwrap();
    assert_eq!(page, vec![other.clone()]);
    let mut renamed = pool.clone();
    renamed.name = "renamed".into();
    renamed.config = "{\"Roles\":{}}".into();
    renamed.updated_at = 2;
    assert!(store.update_identity_pool(&renamed, "{}").await.unwrap());
    // A change computed from settings that have changed since is refused.
    assert!(!store.update_identity_pool(&renamed, "{}").await.unwrap());
    assert_eq!(
        store.identity_pool(&pool.pool_id).await.unwrap(),
        Some(renamed)
    );

    // GetId: a new identity with two logins; a third login linked later; a login is unique.
    let alice = IdentityRow {
        identity_id: "us-east-1:a".into(),
        pool_id: pool.pool_id.clone(),
        record: "{}".into(),
        created_at: 5,
        updated_at: 5,
    };
    let pool_login = login("cognito-idp/pool", "sub-a");
    store
        .link_logins(
            Some(&alice),
            &alice.identity_id,
            &pool.pool_id,
            &[pool_login.clone(), login("accounts.google.com", "g-1")],
            5,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .identity_of_login(&pool.pool_id, &pool_login)
            .await
            .unwrap()
            .as_deref(),
        Some("us-east-1:a")
    );
    assert_eq!(
        store
            .identity_of_login(&other.pool_id, &pool_login)
            .await
            .unwrap(),
        None
    );
    store
        .link_logins(
            None,
            &alice.identity_id,
            &pool.pool_id,
            &[login("dev", "u1")],
            6,
            None,
        )
        .await
        .unwrap();
    // One login per provider, and guests only while they have none.
    assert!(matches!(
        store
            .link_logins(
                None,
                &alice.identity_id,
                &pool.pool_id,
                &[login("dev", "u7")],
                6,
                None
            )
            .await,
        Err(StoreError::Conflict)
    ));
    assert!(matches!(
        store
            .link_logins_to_guest(&alice.identity_id, &pool.pool_id, &[login("x", "1")], 6)
            .await,
        Err(StoreError::Conflict)
    ));
    let guest = IdentityRow {
        identity_id: "us-east-1:g".into(),
        ..alice.clone()
    };
    store
        .link_logins(
            Some(&guest),
            &guest.identity_id,
            &pool.pool_id,
            &[],
            6,
            None,
        )
        .await
        .unwrap();
    store
        .link_logins_to_guest(&guest.identity_id, &pool.pool_id, &[login("x", "1")], 6)
        .await
        .unwrap();
    assert!(matches!(
        store
            .link_logins_to_guest(&guest.identity_id, &pool.pool_id, &[login("y", "1")], 6)
            .await,
        Err(StoreError::Conflict)
    ));
    assert!(store.delete_identity(&guest.identity_id).await.unwrap());
    let bob = IdentityRow {
        identity_id: "us-east-1:b".into(),
        ..alice.clone()
    };
    assert!(matches!(
        store
            .link_logins(
                Some(&bob),
                &bob.identity_id,
                &pool.pool_id,
                std::slice::from_ref(&pool_login),
                6,
                None
            )
            .await,
        Err(StoreError::Conflict)
    ));
    // The failed transaction left no identity behind.
    assert_eq!(store.identity(&bob.identity_id).await.unwrap(), None);
    assert!(matches!(
        store
            .link_logins(
                None,
                "us-east-1:missing",
                &pool.pool_id,
                &[login("dev", "u9")],
                6,
                None
            )
            .await,
        Err(StoreError::Conflict)
    ));
    let (row, logins) = store.identity(&alice.identity_id).await.unwrap().unwrap();
    assert_eq!(row.updated_at, 6);
    assert_eq!(
        logins,
        vec![
            login("accounts.google.com", "g-1"),
            pool_login.clone(),
            login("dev", "u1")
        ]
    );

    // Unlink, merge, list, delete.
    assert_eq!(
        store
            .unlink_logins(
                &alice.identity_id,
                &[login("dev", "u1"), login("dev", "nobody")],
                7,
                "{}"
            )
            .await
            .unwrap(),
        1
    );
    store
        .link_logins(
            Some(&bob),
            &bob.identity_id,
            &pool.pool_id,
            &[login("dev", "u2")],
            8,
            None,
        )
        .await
        .unwrap();
    store
        .merge_identities(&bob.identity_id, &alice.identity_id, 9, None)
        .await
        .unwrap();
    assert_eq!(store.identity(&bob.identity_id).await.unwrap(), None);
    // Merging identities that hold logins of one provider is refused, unless it may repeat.
    let carol = IdentityRow {
        identity_id: "us-east-1:c".into(),
        ..alice.clone()
    };
    store
        .link_logins(
            Some(&carol),
            &carol.identity_id,
            &pool.pool_id,
            &[login("dev", "u5")],
            9,
            None,
        )
        .await
        .unwrap();
    assert!(matches!(
        store
            .merge_identities(&carol.identity_id, &alice.identity_id, 9, None)
            .await,
        Err(StoreError::Conflict)
    ));
    assert!(matches!(
        store
            .merge_identities("us-east-1:gone", &alice.identity_id, 9, Some("dev"))
            .await,
        Err(StoreError::Conflict)
    ));
    store
        .merge_identities(&carol.identity_id, &alice.identity_id, 9, Some("dev"))
        .await
        .unwrap();
    assert_eq!(
        store
            .unlink_logins(&alice.identity_id, &[login("dev", "u5")], 9, "{}")
            .await
            .unwrap(),
        1
    );
    let listed = store
        .identities_of_pool(&pool.pool_id, "", 10)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].1.len(), 3);
    assert!(store.delete_identity(&alice.identity_id).await.unwrap());
    assert!(!store.delete_identity(&alice.identity_id).await.unwrap());
    assert_eq!(
        store
            .identity_of_login(&pool.pool_id, &pool_login)
            .await
            .unwrap(),
        None
    );

    // Deleting a pool takes its identities along.
    store
        .link_logins(
            Some(&bob),
            &bob.identity_id,
            &pool.pool_id,
            &[login("dev", "u3")],
            10,
            None,
        )
        .await
        .unwrap();
    // Unlinking the last login marks the identity in the same transaction.
    store
        .unlink_logins(
            &bob.identity_id,
            &[login("dev", "u3")],
            11,
            "{\"Disabled\":true}",
        )
        .await
        .unwrap();
    let (row, logins) = store.identity(&bob.identity_id).await.unwrap().unwrap();
    assert!(logins.is_empty());
    assert_eq!(row.record, "{\"Disabled\":true}");
    assert!(store.delete_identity_pool(&pool.pool_id).await.unwrap());
    assert!(!store.delete_identity_pool(&pool.pool_id).await.unwrap());
    assert_eq!(store.identity(&bob.identity_id).await.unwrap(), None);
    assert!(store.delete_identity_pool(&other.pool_id).await.unwrap());

    let key = |kid: &str, at: i64| IdentityKeyRow {
        kid: kid.into(),
        key_sealed: vec![7; 4],
        created_at: at,
    };
    store.add_identity_key(&key("k2", 2)).await.unwrap();
    store.add_identity_key(&key("k1", 1)).await.unwrap();
    assert!(matches!(
        store.add_identity_key(&key("k1", 3)).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store.identity_keys().await.unwrap(),
        vec![key("k1", 1), key("k2", 2)]
    );
}

fn dataset(identity: &str, name: &str, count: i64) -> DatasetRow {
    DatasetRow {
        identity_id: identity.into(),
        dataset_name: name.into(),
        pool_id: "us-east-1:sync".into(),
        live: true,
        sync_count: count,
        deleted_at: 0,
        created_ms: 1,
        modified_ms: count,
        modified_by: "111122223333".into(),
        data_storage: 0,
        num_records: 0,
        merged_from: None,
    }
}

fn sync_record(key: &str, value: Option<&str>, count: i64) -> SyncRecordRow {
    SyncRecordRow {
        key: key.into(),
        value: value.map(str::to_owned),
        sync_count: count,
        modified_ms: count,
        modified_by: "111122223333".into(),
        device_modified_ms: Some(7),
    }
}

async fn sync_rows(store: &Store) {
    let pool = IdentityPoolRow {
        pool_id: "us-east-1:sync".into(),
        account_id: "111122223333".into(),
        name: "sync".into(),
        config: "{}".into(),
        created_at: 1,
        updated_at: 1,
    };
    store.create_identity_pool(&pool).await.unwrap();
    for id in ["us-east-1:s1", "us-east-1:s2"] {
        let row = IdentityRow {
            identity_id: id.into(),
            pool_id: pool.pool_id.clone(),
            record: "{}".into(),
            created_at: 1,
            updated_at: 1,
        };
        store
            .link_logins(Some(&row), id, &pool.pool_id, &[], 1, None)
            .await
            .unwrap();
    }
    let a = "us-east-1:s1";
    // Created (no row expected), then changed only from the count the writer read.
    let first = dataset(a, "profile", 1);
    let written = store
        .write_sync_dataset(&first, None, &[sync_record("k", Some("v"), 1)], 20)
        .await
        .unwrap();
    assert_eq!(written, DatasetWrite::Written);
    assert_eq!(
        store
            .write_sync_dataset(&first, None, &[], 20)
            .await
            .unwrap(),
        DatasetWrite::Lost
    );
    let second = dataset(a, "profile", 2);
    let tomb = sync_record("k", None, 2);
    assert_eq!(
        store
            .write_sync_dataset(
                &second,
                Some(1),
                &[tomb.clone(), sync_record("j", Some("w"), 2)],
                20
            )
            .await
            .unwrap(),
        DatasetWrite::Written
    );
    assert_eq!(
        store
            .write_sync_dataset(&second, Some(1), &[], 20)
            .await
            .unwrap(),
        DatasetWrite::Lost
    );
    assert_eq!(
        store.sync_dataset(a, "profile").await.unwrap(),
        Some(second.clone())
    );
    // Changes since a count, in (count, key) order, paged.
    let since = store
        .sync_records_since(a, "profile", 0, (0, ""), 10)
        .await
        .unwrap();
    assert_eq!(since, vec![sync_record("j", Some("w"), 2), tomb.clone()]);
    let page = store
        .sync_records_since(a, "profile", 0, (2, "j"), 10)
        .await
        .unwrap();
    assert_eq!(page, vec![tomb.clone()]);
    assert!(
        store
            .sync_records_since(a, "profile", 2, (2, ""), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .sync_records(a, "profile", &["k".into(), "x".into()])
            .await
            .unwrap(),
        vec![tomb]
    );
    // The identity's live datasets stay under the limit; a missing identity writes nothing.
    assert_eq!(
        store
            .write_sync_dataset(&dataset(a, "second", 1), None, &[], 1)
            .await
            .unwrap(),
        DatasetWrite::TooManyDatasets
    );
    assert_eq!(store.sync_dataset(a, "second").await.unwrap(), None);
    assert_eq!(
        store
            .write_sync_dataset(&dataset("us-east-1:none", "x", 1), None, &[], 20)
            .await
            .unwrap(),
        DatasetWrite::NoIdentity
    );
    // Deletion keeps the row (not live) and drops the records.
    let deleted = DatasetRow {
        live: false,
        sync_count: 3,
        deleted_at: 3,
        ..second.clone()
    };
    assert_eq!(
        store
            .write_sync_dataset(&deleted, Some(2), &[], 20)
            .await
            .unwrap(),
        DatasetWrite::Written
    );
    assert!(store.sync_datasets(a, "", 10).await.unwrap().is_empty());
    assert!(
        store
            .sync_records_since(a, "profile", 0, (0, ""), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let usage = store.sync_identity_usage(a).await.unwrap();
    assert_eq!((usage.dataset_count, usage.data_storage), (0, 0));
    // A merge moves the datasets of the identity that goes, renamed, with their records.
    let b = "us-east-1:s2";
    let mut theirs = dataset(b, "profile", 1);
    theirs.data_storage = 2;
    store
        .write_sync_dataset(&theirs, None, &[sync_record("t", Some("x"), 1)], 20)
        .await
        .unwrap();
    store.merge_identities(b, a, 9, None).await.unwrap();
    let name = format!("profile.{b}");
    assert_eq!(
        store.sync_merged_names(a, "profile").await.unwrap(),
        vec![name.clone()]
    );
    let moved = store.sync_dataset(a, &name).await.unwrap().unwrap();
    assert_eq!(moved.merged_from.as_deref(), Some("profile"));
    assert_eq!(
        store
            .sync_records_since(a, &name, 0, (0, ""), 10)
            .await
            .unwrap(),
        vec![sync_record("t", Some("x"), 1)]
    );
    let usage = store.sync_usage_of_pool(&pool.pool_id).await.unwrap();
    assert_eq!((usage.data_storage, usage.sync_sessions), (2, 4));
    let listed = store
        .sync_pool_usage("111122223333", "", 100)
        .await
        .unwrap();
    assert!(
        listed
            .iter()
            .any(|p| p.pool_id == pool.pool_id && p.data_storage == 2)
    );
    // A pool's settings are written only over what the writer read.
    let p = pool.pool_id.as_str();
    assert_eq!(store.sync_pool_setting(p, "events").await.unwrap(), None);
    assert!(
        store
            .write_sync_pool_setting(p, "events", None, "{\"a\":1}")
            .await
            .unwrap()
    );
    assert!(
        !store
            .write_sync_pool_setting(p, "events", None, "{}")
            .await
            .unwrap()
    );
    assert!(
        !store
            .write_sync_pool_setting(p, "events", Some("{}"), "{}")
            .await
            .unwrap()
    );
    assert!(
        store
            .write_sync_pool_setting(p, "events", Some("{\"a\":1}"), "{}")
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .sync_pool_setting(p, "events")
            .await
            .unwrap()
            .as_deref(),
        Some("{}")
    );
    assert_eq!(
        store.sync_pool_setting(p, "configuration").await.unwrap(),
        None
    );
    // Devices: registering one endpoint twice gives the first id; subscriptions per dataset.
    let device = store
        .register_sync_device("dev-1", a, "GCM", "arn:e1")
        .await
        .unwrap();
    assert_eq!(device, "dev-1");
    assert_eq!(
        store
            .register_sync_device("dev-2", a, "GCM", "arn:e1")
            .await
            .unwrap(),
        "dev-1"
    );
    store
        .register_sync_device("dev-3", a, "GCM", "arn:e3")
        .await
        .unwrap();
    assert_eq!(
        store.sync_device("dev-3").await.unwrap(),
        Some((a.to_owned(), "arn:e3".to_owned()))
    );
    store
        .set_sync_subscription(a, "profile", "dev-1", true)
        .await
        .unwrap();
    store
        .set_sync_subscription(a, "profile", "dev-1", true)
        .await
        .unwrap();
    store
        .set_sync_subscription(a, "profile", "dev-3", true)
        .await
        .unwrap();
    store
        .set_sync_subscription(a, "profile", "dev-3", false)
        .await
        .unwrap();
    assert_eq!(
        store.sync_subscribers(a, "profile").await.unwrap(),
        vec![("dev-1".to_owned(), "arn:e1".to_owned())]
    );
    // Deleting the identity deletes its datasets and records.
    assert!(store.delete_identity(a).await.unwrap());
    assert_eq!(store.sync_dataset(a, &name).await.unwrap(), None);
}
