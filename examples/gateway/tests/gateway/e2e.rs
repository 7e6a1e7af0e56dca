//! The end-to-end scenario on memory, SQLite and PostgreSQL, and read-your-writes.

use super::*;

/// The end-to-end scenario, on any storage: two users, one chat session, every API as JSON
/// and SSE through the gateway; the log and the stats hold exactly those requests, attributed
/// and priced, and the second user sees none of them.
async fn every_api_as_json_and_sse_lands_in_the_users_log(storage: Storage) {
    let gw = Harness::start(storage).await;
    let (alice, alice_key) = gw.register("alice@example.com").await;
    let (bob, bob_key) = gw.register("bob@example.com").await;
    assert_ne!(alice, bob);

    let login = gw.post("/auth/login", &alice_key, &json!({})).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text());
    assert_eq!(login.json()["user_id"], alice);

    let created = gw
        .post(
            "/v1/chat/sessions",
            &alice_key,
            &json!({"title": "Tokens", "model": "gpt-4o-mini"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let session = created.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(created.json()["title"], "Tokens");
    assert_eq!(created.json()["model"], "gpt-4o-mini");
    let listed = gw.get("/v1/chat/sessions", &alice_key).await.json();
    assert_eq!(listed["sessions"][0]["id"], session.as_str());
    let listed = gw.get("/v1/chat/sessions", &bob_key).await.json();
    assert_eq!(listed["sessions"], json!([]), "sessions are per user");

    let mut sent = Vec::new();
    for api in ALL {
        for stream in [false, true] {
            // Streams are cut to 5 tokens, so every row differs from its JSON twin.
            let limit = stream.then_some(5);
            let output = limit.unwrap_or(OUTPUT);
            let bearer = format!("Bearer {alice_key}");
            // Each SDK's own key header works too.
            let mut headers: Vec<(&str, &str)> = match api {
                Anthropic => vec![("x-api-key", &alice_key)],
                Gemini if !stream => vec![("x-goog-api-key", &alice_key)],
                _ => vec![("authorization", &bearer)],
            };
            let mut path = api.path(stream);
            let session_for = match (api, stream) {
                (Chat, false) => {
                    path.push_str(&format!("?session_id={session}"));
                    Some(session.clone())
                }
                (Anthropic, true) => {
                    headers.push(("x-session-id", &session));
                    Some(session.clone())
                }
                _ => None,
            };
            let answer = gw
                .call(
                    Method::POST,
                    &path,
                    &headers,
                    api.body(stream, limit).to_string(),
                )
                .await;
            let name = format!("{api:?} stream={stream}");
            assert_eq!(answer.status, StatusCode::OK, "{name}: {}", answer.text());
            let content_type = answer.headers["content-type"].to_str().unwrap();
            assert_eq!(
                content_type.starts_with("text/event-stream"),
                stream,
                "{name}: {content_type}"
            );
            let text = answer.text();
            assert!(
                text.contains("quick"),
                "{name}: the reply reaches the client"
            );
            if api == Chat && stream {
                assert!(
                    !text.contains("usage"),
                    "{name}: the usage chunk the client did not ask for is removed"
                );
            }
            sent.push(Sent {
                api,
                stream,
                output,
                session: session_for,
            });
        }
    }

    // The log: exactly those requests, newest first, each attributed and priced.
    let page = gw.log(&alice_key, "kind=request&limit=100").await;
    assert_eq!(page["total"], 8, "{page:#}");
    assert_eq!(page["has_more"], false);
    let rows = page["logs"].as_array().unwrap();
    assert_eq!(rows.len(), 8);
    for (row, want) in rows.iter().zip(sent.iter().rev()) {
        let r = record(row);
        let name = format!("{:?} stream={}", want.api, want.stream);
        assert_eq!(r.kind, RecordKind::Request, "{name}");
        assert_eq!(r.user_id.as_deref(), Some(alice.as_str()), "{name}");
        assert_eq!(r.session_id, want.session, "{name}");
        assert_eq!(r.endpoint, want.api.endpoint(want.stream), "{name}");
        assert_eq!(r.api.as_str(), want.api.api(), "{name}");
        assert_eq!(r.model.as_deref(), Some(want.api.model()), "{name}");
        assert_eq!(r.stream, want.stream, "{name}");
        assert_eq!(r.status_code, Some(200), "{name}");
        assert_eq!(r.outcome, Outcome::Ok, "{name}");
        assert_eq!(r.usage_source, UsageSource::Reported, "{name}");
        assert_eq!(r.input_tokens, Some(INPUT), "{name}");
        assert_eq!(r.output_tokens, Some(want.output), "{name}");
        let finish = if want.stream {
            FinishReason::Length
        } else {
            FinishReason::Stop
        };
        assert_eq!(r.finish_reason, Some(finish), "{name}");
        let want_cost = cost(want.api.model(), want.output);
        assert_eq!(r.cost_usd, Some(want_cost), "{name}");
        assert!(r.upstream.is_some(), "{name}: the upstream is named");
        // The original API's field names, for the existing dashboard.
        assert_eq!(row["tokens"], INPUT + want.output, "{name}");
        assert_eq!(
            row["cost"].as_f64(),
            want_cost.to_string().parse().ok(),
            "{name}"
        );
        assert!(
            row["cost"].is_number() && row["cost_usd"].is_string(),
            "{name}"
        );
        assert_eq!(row["metadata"]["prompt_tokens"], INPUT, "{name}");
        assert_eq!(row["metadata"]["completion_tokens"], want.output, "{name}");
        assert_eq!(row["metadata"]["endpoint"], &*r.endpoint, "{name}");
        assert_eq!(row["metadata"]["session_id"], json!(want.session), "{name}");
        assert_eq!(row["app"], "API", "{name}");
        assert!(row["speed"].is_number(), "{name}");
        assert_eq!(row["finish_reason"], finish.as_str(), "{name}");
    }

    // The events: register, login, session created — and not counted as requests.
    let events = gw.log(&alice_key, "kind=event").await;
    let mut names: Vec<&str> = events["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["endpoint"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["login", "register", "session_created"]);
    for row in events["logs"].as_array().unwrap() {
        let r = record(row);
        let app = if r.endpoint == "session_created" {
            "Chat"
        } else {
            "Auth"
        };
        assert_eq!((&*r.app, r.user_id.as_deref()), (app, Some(alice.as_str())));
        if r.endpoint == "session_created" {
            assert_eq!(r.session_id.as_deref(), Some(session.as_str()));
        }
    }

    // The stats agree with the log.
    let stats = gw.stats(&alice_key, "days=1").await;
    let want_spend: Decimal = sent.iter().map(|s| cost(s.api.model(), s.output)).sum();
    let want_tokens: u64 = sent.iter().map(|s| INPUT + s.output).sum();
    assert_eq!(stats.total_requests, 8);
    assert_eq!(stats.total_tokens, want_tokens);
    assert_eq!(stats.total_spend, want_spend.normalize());
    assert_eq!(stats.daily_stats.len(), 1);
    assert_eq!(stats.daily_stats[0].requests, 8);
    let by_model: BTreeMap<&str, u64> = stats
        .by_model
        .iter()
        .map(|(m, b)| (m.as_str(), b.requests))
        .collect();
    assert_eq!(
        by_model,
        BTreeMap::from([
            ("claude-sonnet-4-5", 2),
            ("gemini-2.5-flash", 2),
            ("gpt-4o", 2),
            ("gpt-4o-mini", 2)
        ])
    );
    assert_eq!(stats.by_provider["OpenAI"].requests, 4);
    let with_events = gw.stats(&alice_key, "days=1&include_events=true").await;
    assert_eq!(with_events.total_requests, 11);
    assert_eq!(with_events.total_tokens, want_tokens);

    // Bob sees none of it.
    let page = gw.log(&bob_key, "kind=request").await;
    assert_eq!(
        (
            page["total"].as_u64(),
            page["logs"].as_array().map(Vec::len)
        ),
        (Some(0), Some(0))
    );
    let stats = gw.stats(&bob_key, "days=1").await;
    assert_eq!((stats.total_requests, stats.total_tokens), (0, 0));
    assert_eq!(stats.total_spend, Decimal::ZERO);
    // Alice's session is not Bob's to use.
    let bearer = format!("Bearer {bob_key}");
    let path = format!("/v1/chat/completions?session_id={session}");
    let answer = gw
        .call(
            Method::POST,
            &path,
            &[("authorization", &bearer)],
            Chat.body(false, None).to_string(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.text());
    assert_eq!(answer.json()["error"]["parameter"], "session_id");
    assert_eq!(
        gw.log(&bob_key, "").await["total"],
        1,
        "only Bob's register event"
    );
}

#[tokio::test]
async fn e2e_on_memory() {
    every_api_as_json_and_sse_lands_in_the_users_log(Storage::memory()).await;
}

#[tokio::test]
async fn reads_see_the_callers_own_writes_without_waiting_for_a_batch() {
    let gw = Harness::start(Storage::memory()).await;
    let (user, key) = gw.register("kim@example.com").await;
    let mut feed = gw.gateway.state().live.subscribe();
    let answer = gw
        .post(&Chat.path(true), &key, &Chat.body(true, None))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    // No flush from the test: the handler waits for the queued record itself.
    let log = gw.get("/user/activity/log?kind=request", &key).await.json();
    assert_eq!(log["total"], 1, "{log:#}");
    assert_eq!(
        answer.headers["x-activity-id"].to_str().unwrap(),
        log["logs"][0]["id"],
        "the response names its record"
    );
    let stats = gw.get("/user/activity/stats?days=1", &key).await.json();
    assert_eq!(stats["total_requests"], 1);
    // The live feed publishes the stored record (after the register event, if that was
    // stored after the subscription).
    let mut published = feed.recv().await.unwrap();
    if published.kind == RecordKind::Event {
        published = feed.recv().await.unwrap();
    }
    assert_eq!(
        published.id.to_string(),
        log["logs"][0]["id"].as_str().unwrap()
    );
    assert_eq!(published.user_id.as_deref(), Some(user.as_str()));
}

#[tokio::test]
async fn e2e_on_sqlite() {
    let db = TempDb::new();
    let storage = Storage::open(&db.url()).await.expect("SQLite opens");
    assert!(storage.description.starts_with("SQLite"));
    every_api_as_json_and_sse_lands_in_the_users_log(storage).await;
}

#[tokio::test]
async fn e2e_on_postgres() {
    let db = TempPg::new().await;
    let storage = Storage::open(&db.url()).await.expect("PostgreSQL opens");
    assert!(storage.description.starts_with("PostgreSQL"));
    every_api_as_json_and_sse_lands_in_the_users_log(storage).await;
    db.drop_database().await;
}
