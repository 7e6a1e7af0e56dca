//! What outlives the process: users, sessions and records on SQLite and PostgreSQL, the key
//! cache, and a bad database URL.

use super::*;

/// Users, sessions and records outlive the process: a second gateway on the same database
/// knows the key, the session and the log.
async fn a_restart_keeps_users_sessions_and_records(url: &str) {
    let mut first = Harness::start(Storage::open(url).await.unwrap()).await;
    let (user, key) = first.register("mo@example.com").await;
    let session = first
        .post(
            "/v1/chat/sessions",
            &key,
            &json!({"title": "kept", "model": "gpt-4o"}),
        )
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("{}?session_id={session}", Chat.path(true));
    let answer = first.post(&path, &key, &Chat.body(true, None)).await;
    assert_eq!(answer.status, StatusCode::OK);
    let (_, stats) = first.stop().await;
    assert_eq!((stats.written, stats.failed), (3, 0));
    if let Some(file) = url.strip_prefix("sqlite://") {
        let wal = std::path::PathBuf::from(format!("{file}-wal"));
        assert!(
            !wal.exists(),
            "a clean shutdown closes the database (WAL folded back)"
        );
    }

    let second = Harness::start(Storage::open(url).await.unwrap()).await;
    let login = second.post("/auth/login", &key, &json!({})).await;
    assert_eq!(
        login.json()["user_id"],
        user.as_str(),
        "the key still works"
    );
    let sessions = second.get("/v1/chat/sessions", &key).await.json();
    assert_eq!(sessions["sessions"][0]["id"], session.as_str());
    assert_eq!(sessions["sessions"][0]["model"], "gpt-4o");
    let page = second.log(&key, "kind=request").await;
    assert_eq!(page["total"], 1);
    let r = record(&page["logs"][0]);
    assert_eq!(r.session_id.as_deref(), Some(session.as_str()));
    assert_eq!(
        (r.input_tokens, r.output_tokens),
        (Some(INPUT), Some(OUTPUT))
    );
    let again = second
        .call(
            Method::POST,
            "/auth/register",
            &[],
            json!({"email": "mo@example.com"}).to_string(),
        )
        .await;
    assert_eq!(
        again.status,
        StatusCode::CONFLICT,
        "the address is still taken"
    );
}

#[tokio::test]
async fn sqlite_keeps_everything_across_a_restart() {
    let db = TempDb::new();
    a_restart_keeps_users_sessions_and_records(&db.url()).await;
}

#[tokio::test]
async fn postgres_keeps_everything_across_a_restart() {
    let db = TempPg::new().await;
    a_restart_keeps_users_sessions_and_records(&db.url()).await;
    db.drop_database().await;
}

#[tokio::test]
async fn a_bad_database_url_is_a_one_line_error_naming_it() {
    let err = Storage::open("mysql://localhost/x").await.unwrap_err();
    assert!(
        err.contains("DATABASE_URL=mysql://localhost/x") && err.contains("sqlite://"),
        "{err}"
    );
    let err = Storage::open("postgres://u:secret@127.0.0.1:1/x")
        .await
        .unwrap_err();
    assert!(
        err.contains("DATABASE_URL=postgres://u:***@127.0.0.1:1/x"),
        "{err}"
    );
    assert!(!err.contains("secret") && !err.contains('\n'), "{err}");
    let err = Storage::open("sqlite:///nonexistent-dir/sub/activity.db")
        .await
        .unwrap_err();
    assert!(
        err.contains("DATABASE_URL=sqlite:///nonexistent-dir"),
        "{err}"
    );
}

/// The key cache in front of the SQL account stores: a hit is served from memory, a miss is
/// never remembered (a key registered a moment later, or on another instance, works at once).
#[tokio::test]
async fn key_lookups_are_remembered_but_misses_are_not() {
    use gateway::store::{
        AccountStore, CachedAccounts, ChatSession, KeyDigest, MemoryAccounts, StoreError, User,
    };
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts the key lookups that reach the store.
    #[derive(Default)]
    struct Counting {
        inner: MemoryAccounts,
        lookups: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl AccountStore for Counting {
        async fn migrate(&self) -> Result<(), StoreError> {
            self.inner.migrate().await
        }
        async fn create_user(&self, user: &User, key: &KeyDigest) -> Result<(), StoreError> {
            self.inner.create_user(user, key).await
        }
        async fn user_by_key(&self, key: &KeyDigest) -> Result<Option<User>, StoreError> {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            self.inner.user_by_key(key).await
        }
        async fn user_by_id(&self, user_id: &str) -> Result<Option<User>, StoreError> {
            self.inner.user_by_id(user_id).await
        }
        async fn create_session(&self, user_id: &str, s: &ChatSession) -> Result<(), StoreError> {
            self.inner.create_session(user_id, s).await
        }
        async fn sessions(&self, user_id: &str) -> Result<Vec<ChatSession>, StoreError> {
            self.inner.sessions(user_id).await
        }
        async fn session(&self, u: &str, s: &str) -> Result<Option<ChatSession>, StoreError> {
            self.inner.session(u, s).await
        }
    }

    let store = Arc::new(Counting::default());
    let cached = CachedAccounts::new(store.clone());
    let digest = gateway::auth::key_digest("sk-gw-test");
    assert_eq!(cached.user_by_key(&digest).await.unwrap(), None);
    assert_eq!(
        cached.user_id_at_hand(&digest),
        None,
        "a miss is not remembered"
    );

    let user = User {
        id: "u1".into(),
        email: "u1@example.com".into(),
    };
    // Registered behind the cache's back, as another gateway instance would: the earlier
    // miss was not remembered.
    store.create_user(&user, &digest).await.unwrap();
    assert_eq!(
        cached.user_by_key(&digest).await.unwrap(),
        Some(user.clone())
    );
    assert_eq!(store.lookups.load(Ordering::SeqCst), 2);

    for _ in 0..10 {
        assert_eq!(
            cached.user_by_key(&digest).await.unwrap(),
            Some(user.clone())
        );
    }
    assert_eq!(
        store.lookups.load(Ordering::SeqCst),
        2,
        "hits are served from memory"
    );
    // What every authenticated request asks first: the id, by the digest, without a lookup.
    assert_eq!(cached.user_id_at_hand(&digest).as_deref(), Some("u1"));
    let other = gateway::auth::key_digest("sk-gw-other");
    assert_eq!(cached.user_id_at_hand(&other), None);
    assert_eq!(
        store.user_id_at_hand(&digest),
        None,
        "a store without a cache has none"
    );
    // A miss goes to the store each time.
    assert_eq!(cached.user_by_key(&other).await.unwrap(), None);
    assert_eq!(store.lookups.load(Ordering::SeqCst), 3);
}
