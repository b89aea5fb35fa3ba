//! One storage conformance suite, run against every backend: SQLite always, PostgreSQL
//! whenever `COGNATE_TEST_POSTGRES_URL` is set (CI sets it; in CI its absence is a failure).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cognate_store::{AccessKeyRow, AccountRow, Backend, SessionKeyRow, Store, StoreError};

async fn suite(open: impl AsyncFn() -> Store) {
    let store = open().await;
    settings_keep_the_first_value(&store).await;
    accounts_round_trip_and_conflict(&store).await;
    access_keys_round_trip_and_conflict(&store).await;
    session_keys_are_ordered(&store).await;
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
