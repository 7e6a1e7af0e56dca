//! The example gateway end to end, in-process: the gateway (`examples/support/gateway/`) on
//! an ephemeral port in front of the mock upstream (`examples/support/mock_upstream/`), driven
//! over HTTP like a client would.
//!
//! Every prompt is `Be brief.` (9 characters) + `Count the tokens of this prompt, please.`
//! (40): ⌈49 / 4⌉ = 13 input tokens at the mock. Its reply is 24 words (24 output tokens), or
//! the request's token limit when smaller. Costs are the embedded `PriceTable`'s.

#[path = "../examples/support/gateway/mod.rs"]
mod gateway;
#[path = "support/gateway_harness.rs"]
mod harness;
#[path = "../examples/support/mock_upstream/mod.rs"]
mod mock_upstream;
#[path = "support/wire.rs"]
mod wire;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use gateway::{Storage, UpstreamUrl};
use harness::Harness;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tower_activity::{
    ActivityRecord, FinishReason, Kind, Outcome, PriceTable, TokenUsage, UsageSource,
};
use wire::*;

fn cost(model: &str, output: u64) -> Decimal {
    let usage = TokenUsage {
        input: INPUT,
        output,
        ..TokenUsage::default()
    };
    PriceTable::embedded()
        .cost(model, &usage)
        .unwrap_or_else(|| panic!("{model} has a price"))
}

/// A log row as a record (the legacy fields are extra members serde ignores).
fn record(row: &Value) -> ActivityRecord {
    serde_json::from_value(row.clone()).expect("a log row is an ActivityRecord")
}

/// The request we expect a row for.
#[derive(Debug, Clone)]
struct Sent {
    api: Api,
    stream: bool,
    output: u64,
    session: Option<String>,
}

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
        assert_eq!(r.kind, Kind::Request, "{name}");
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
        assert_eq!(row["metadata"]["endpoint"], r.endpoint.as_str(), "{name}");
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
        assert_eq!(
            (r.app.as_str(), r.user_id.as_deref()),
            (app, Some(alice.as_str()))
        );
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

/// Reads one frame of the body.
async fn first_frame(body: &mut hyper::body::Incoming) -> Bytes {
    loop {
        let frame = body.frame().await.expect("a frame").expect("no error");
        if let Ok(data) = frame.into_data() {
            return data;
        }
    }
}

/// Polls the log until `n` rows are there (the record of a dropped stream is made when the
/// gateway notices the client is gone).
async fn wait_for_rows(gw: &Harness, key: &str, query: &str, n: u64) -> Value {
    for _ in 0..200 {
        let page = gw.log(key, query).await;
        if page["total"].as_u64() >= Some(n) {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{n} rows never arrived: {:#}", gw.log(key, query).await);
}

#[tokio::test]
async fn a_client_that_disconnects_mid_stream_leaves_one_cancelled_record() {
    let gw = Harness::start(Storage::memory()).await;
    let (_, key) = gw.register("carol@example.com").await;
    let bearer = format!("Bearer {key}");
    for api in ALL {
        let headers = [
            ("authorization", bearer.as_str()),
            ("x-mock-delay-ms", "100"),
            ("x-mock-chunks", "8"),
        ];
        let response = gw
            .send(
                Method::POST,
                &api.path(true),
                &headers,
                api.body(true, None).to_string(),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = response.into_body();
        let first = first_frame(&mut body).await;
        assert!(!first.is_empty());
        drop(body); // the client goes away mid-stream
    }
    let page = wait_for_rows(&gw, &key, "kind=request", 4).await;
    // Give a wrong second record time to show up before counting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let page_after = gw.log(&key, "kind=request").await;
    assert_eq!(page_after["total"], page["total"]);
    assert_eq!(page_after["total"], 4, "one record per request");
    for row in page_after["logs"].as_array().unwrap() {
        let r = record(row);
        assert_eq!(r.outcome, Outcome::Cancelled, "{row:#}");
        assert_eq!(r.finish_reason, Some(FinishReason::Cancelled));
        assert!(r.stream);
        assert!(
            r.output_tokens.unwrap_or(0) < OUTPUT,
            "only what was streamed before the drop: {row:#}"
        );
        assert!(
            r.latency_ms.unwrap() < 800.0,
            "recorded at the drop, not at the stream's end"
        );
    }
}

#[tokio::test]
async fn an_upstream_error_passes_through_and_is_an_error_record() {
    let gw = Harness::start(Storage::memory()).await;
    let (_, key) = gw.register("dave@example.com").await;
    let bearer = format!("Bearer {key}");
    for api in ALL {
        for stream in [false, true] {
            let headers = [("authorization", bearer.as_str()), ("x-mock-error", "500")];
            let answer = gw
                .call(
                    Method::POST,
                    &api.path(stream),
                    &headers,
                    api.body(stream, None).to_string(),
                )
                .await;
            assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR, "{api:?}");
            assert!(
                answer.json()["error"].is_object(),
                "the provider's error body passes through"
            );
        }
    }
    let page = gw.log(&key, "kind=request").await;
    assert_eq!(page["total"], 8);
    for row in page["logs"].as_array().unwrap() {
        let r = record(row);
        assert_eq!(
            (r.outcome, r.status_code),
            (Outcome::Error, Some(500)),
            "{row:#}"
        );
        assert!(r.error.is_some(), "the provider's error is kept: {row:#}");
        assert_eq!((r.output_tokens, r.cost_usd), (None, None), "{row:#}");
        assert_eq!(row["tokens"], 0);
        assert_eq!(row["cost"], 0.0);
    }
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_502_json_error_and_an_error_record() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let gw = Harness::with_upstream(
        Storage::memory(),
        UpstreamUrl::local(port),
        None,
        Duration::from_secs(5),
    )
    .await;
    let (_, key) = gw.register("erin@example.com").await;
    for api in [Chat, Anthropic] {
        let answer = gw.post(&api.path(true), &key, &api.body(true, None)).await;
        assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
        let error = &answer.json()["error"];
        assert_eq!(error["type"], "upstream_unreachable");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains(&port.to_string())
        );
    }
    let page = gw.log(&key, "kind=request").await;
    assert_eq!(page["total"], 2);
    for row in page["logs"].as_array().unwrap() {
        let r = record(row);
        assert_eq!((r.outcome, r.status_code), (Outcome::Error, Some(502)));
        assert_eq!(
            r.error.and_then(|e| e.kind).as_deref(),
            Some("upstream_unreachable")
        );
        assert_eq!(r.upstream, Some(format!("http://{port}")));
    }
}

#[tokio::test]
async fn bad_input_gets_clear_json_errors_and_nothing_is_recorded_wrongly() {
    let gw = Harness::start(Storage::memory()).await;
    let (_, key) = gw.register("frank@example.com").await;
    let bearer = format!("Bearer {key}");
    let chat = Chat.body(false, None).to_string();

    // What is sent, and the status, error type and parameter expected.
    type Want = (u16, &'static str, Option<&'static str>);
    type Case<'a> = (Method, &'a str, Vec<(&'a str, String)>, String, Want);
    let me = vec![("authorization", bearer.clone())];
    let with = |name: &'static str, value: &str| vec![(name, value.to_owned())];
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        (Method::POST, "/v1/chat/completions", vec![], chat.clone(), (401, "unauthorized", None)),
        (Method::POST, "/v1/messages", with("authorization", "Bearer sk-gw-nope"), chat.clone(), (401, "unauthorized", None)),
        (Method::POST, "/v1/responses", with("authorization", "Basic Zm9vOmJhcg=="), chat.clone(), (401, "unauthorized", None)),
        (Method::GET, "/user/activity/log", vec![], String::new(), (401, "unauthorized", None)),
        (Method::GET, "/v1/chat/sessions", with("x-api-key", "wrong"), String::new(), (401, "unauthorized", None)),
        (Method::POST, "/auth/login", with("authorization", "Bearer sk-gw-nope"), String::new(), (401, "unauthorized", None)),
        (Method::POST, "/auth/register", vec![], "{\"email\":".into(), (400, "invalid_request", None)),
        (Method::POST, "/auth/register", vec![], "{\"mail\":\"x@y.z\"}".into(), (422, "invalid_request", None)),
        (Method::POST, "/auth/register", vec![], "{\"email\":\"not an email\"}".into(), (400, "invalid_request", Some("email"))),
        (Method::POST, "/auth/register", vec![], "{\"email\":\"FRANK@example.com\"}".into(), (409, "email_taken", Some("email"))),
        (Method::POST, "/v1/chat/sessions", me.clone(), "{\"title\": ".into(), (400, "invalid_request", None)),
        (Method::POST, "/v1/chat/sessions", me.clone(), json!({"title": "x".repeat(201)}).to_string(), (400, "invalid_request", Some("title"))),
        (Method::GET, "/v1/nope", me.clone(), String::new(), (404, "not_found", None)),
        (Method::GET, "/", vec![], String::new(), (404, "not_found", None)),
        (Method::POST, "/v1beta/models/gemini-2.5-flash:countTokens", me.clone(), "{}".into(), (404, "not_found", None)),
        (Method::POST, "/v1/chat/completions?session_id=nope", me.clone(), chat.clone(), (404, "not_found", Some("session_id"))),
        (Method::POST, "/v1/chat/completions?session_id=a", [me.clone(), with("x-session-id", "b")].concat(), chat.clone(), (400, "invalid_request", Some("session_id"))),
        (Method::GET, "/v1/chat/completions", me.clone(), String::new(), (405, "method_not_allowed", None)),
        (Method::GET, "/user/activity/log?limit=0", me.clone(), String::new(), (400, "invalid_parameter", Some("limit"))),
        (Method::GET, "/user/activity/log?page=2&offset=3", me.clone(), String::new(), (400, "invalid_parameter", Some("offset"))),
        (Method::GET, "/user/activity/log?cursor=zz", me.clone(), String::new(), (400, "invalid_parameter", Some("cursor"))),
        (Method::GET, "/user/activity/stats?days=seven", me.clone(), String::new(), (400, "invalid_parameter", Some("days"))),
        (Method::GET, "/user/activity/stats?from=2026-02-01&to=2026-01-01", me.clone(), String::new(), (400, "invalid_parameter", Some("from"))),
        (Method::GET, "/user/activity/stats?days=%ZZ", me.clone(), String::new(), (400, "invalid_parameter", Some("days"))),
    ];
    for (method, path, headers, body, (status, kind, parameter)) in cases {
        let name = format!("{method} {path} {body:.40}");
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let answer = gw.call(method, path, &headers, body).await;
        assert_eq!(answer.status.as_u16(), status, "{name}: {}", answer.text());
        let error = &answer.json()["error"];
        assert_eq!(error["type"], kind, "{name}: {error}");
        assert!(
            error["message"].as_str().is_some_and(|m| m.len() > 10),
            "{name}: {error}"
        );
        assert_eq!(error["parameter"].as_str(), parameter, "{name}: {error}");
    }
    // Without a content type the register body is refused, not guessed.
    let response = gw
        .client_post_raw("/auth/register", "{\"email\":\"g@example.com\"}")
        .await;
    assert_eq!(
        response.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{}",
        response.text()
    );

    // A malformed JSON body on an LLM route goes upstream like any other request: the
    // provider's 400 passes through and is recorded as the failed request it is.
    let answer = gw
        .call(
            Method::POST,
            "/v1/chat/completions",
            &[("authorization", &bearer)],
            "{\"model\":",
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    assert!(answer.json()["error"]["message"].is_string());

    let page = gw.log(&key, "").await;
    let rows = page["logs"].as_array().unwrap();
    let summary: Vec<(String, String, Option<u64>)> = rows
        .iter()
        .map(record)
        .map(|r| {
            (
                r.endpoint,
                r.outcome.as_str().to_owned(),
                r.status_code.map(u64::from),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "/v1/chat/completions".to_owned(),
                "error".to_owned(),
                Some(400)
            ),
            ("register".to_owned(), "ok".to_owned(), None),
        ],
        "refused requests leave no record; the one that reached upstream is an error"
    );
    let r = record(&rows[0]);
    assert_eq!(
        (r.input_tokens, r.output_tokens, r.cost_usd),
        (None, None, None)
    );
    let writer = gw.gateway.writer().stats();
    assert_eq!((writer.failed, writer.dropped_queue_full), (0, 0));
}

#[tokio::test]
async fn the_clients_key_never_goes_upstream_and_the_gateways_key_does() {
    // An upstream that answers with what it received.
    async fn echo(request: axum::extract::Request) -> axum::Json<Value> {
        let headers: BTreeMap<String, String> = request
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        axum::Json(json!({ "uri": request.uri().to_string(), "headers": headers }))
    }
    let echo_app = axum::Router::new().fallback(echo);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, echo_app).await });
    let gw = Harness::with_upstream(
        Storage::memory(),
        UpstreamUrl::parse(&format!("http://{upstream}/prefix")).unwrap(),
        Some("upstream-secret"),
        Duration::from_secs(5),
    )
    .await;
    let (_, key) = gw.register("gina@example.com").await;
    let session = gw
        .post("/v1/chat/sessions", &key, &json!({"title": "t"}))
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (api, header, value) in [
        (Chat, "authorization", "Bearer upstream-secret"),
        (Responses, "authorization", "Bearer upstream-secret"),
        (Anthropic, "x-api-key", "upstream-secret"),
        (Gemini, "x-goog-api-key", "upstream-secret"),
    ] {
        let path = format!(
            "{}{}session_id={session}&key=leak",
            api.path(true),
            if api == Gemini { "&" } else { "?" }
        );
        let bearer = format!("Bearer {key}");
        let headers = [
            ("authorization", bearer.as_str()),
            ("x-api-key", key.as_str()),
            ("x-session-id", session.as_str()),
            ("accept-encoding", "gzip"),
            ("anthropic-version", "2023-06-01"),
        ];
        let answer = gw
            .call(
                Method::POST,
                &path,
                &headers,
                api.body(true, None).to_string(),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{api:?}: {}", answer.text());
        let seen = answer.json();
        let sent: &serde_json::Map<String, Value> = seen["headers"].as_object().unwrap();
        assert_eq!(
            sent.get(header).and_then(Value::as_str),
            Some(value),
            "{api:?}: {sent:?}"
        );
        let credentials = ["authorization", "x-api-key", "x-goog-api-key"];
        for other in credentials.iter().filter(|h| **h != header) {
            assert!(
                !sent.contains_key(*other),
                "{api:?}: {other} forwarded: {sent:?}"
            );
        }
        assert!(
            !seen.to_string().contains(&key),
            "{api:?}: the client's key went upstream"
        );
        assert!(!sent.contains_key("x-session-id") && !sent.contains_key("accept-encoding"));
        assert_eq!(
            sent["anthropic-version"], "2023-06-01",
            "other headers pass"
        );
        let uri = seen["uri"].as_str().unwrap();
        let want = match api {
            Gemini => format!("/prefix{}", api.path(true)),
            _ => format!("/prefix{}", api.endpoint(true)),
        };
        assert_eq!(uri, want, "{api:?}: no session_id or key upstream");
    }
}

#[tokio::test]
async fn metrics_and_health() {
    let mut gw = Harness::start(Storage::memory()).await;
    let (_, key) = gw.register("hana@example.com").await;
    gw.post(&Chat.path(false), &key, &Chat.body(false, None))
        .await;
    gw.flush().await;
    let health = gw.call(Method::GET, "/healthz", &[], "").await;
    assert_eq!(
        (health.status, health.json()["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let metrics = gw.call(Method::GET, "/metrics", &[], "").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(
        metrics.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = metrics.text();
    for line in [
        "activity_records_enqueued_total 2",
        "activity_records_written_total 2",
        "activity_records_dropped_total{reason=\"queue_full\"} 0",
        "activity_records_dropped_total{reason=\"closed\"} 0",
        "activity_records_failed_total 0",
        "activity_sink_retries_total 0",
        "activity_queue_depth 0",
        "# TYPE activity_batch_duration_seconds summary",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    let count: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("activity_batch_duration_seconds_count "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(count >= 1.0);
    // Every line is a comment or `name[{labels}] number`.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (_, value) = line.rsplit_once(' ').unwrap();
        value.parse::<f64>().unwrap_or_else(|_| panic!("{line}"));
    }
    gw.gateway.writer().shutdown(Duration::from_secs(1)).await;
    let health = gw.call(Method::GET, "/healthz", &[], "").await;
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE);
    gw.stop().await;
}

/// Starts `n` slow streams (one per API in turn) and waits for each one's response head.
async fn slow_streams(
    gw: &Harness,
    key: &str,
    n: usize,
    delay_ms: &str,
) -> Vec<hyper::body::Incoming> {
    let bearer = format!("Bearer {key}");
    let mut bodies = Vec::new();
    for i in 0..n {
        let api = ALL[i % 4];
        let headers = [
            ("authorization", bearer.as_str()),
            ("x-mock-delay-ms", delay_ms),
            ("x-mock-chunks", "8"),
        ];
        let response = gw
            .send(
                Method::POST,
                &api.path(true),
                &headers,
                api.body(true, None).to_string(),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        bodies.push(response.into_body());
    }
    bodies
}

/// Reads every body to its end (or its error); returns how many ended cleanly.
async fn read_all(bodies: Vec<hyper::body::Incoming>) -> usize {
    let reads = bodies
        .into_iter()
        .map(|b| async move { b.collect().await.is_ok() });
    futures_util::future::join_all(reads)
        .await
        .into_iter()
        .filter(|ok| *ok)
        .count()
}

#[tokio::test]
async fn shutdown_lets_streams_in_flight_finish_and_loses_no_record() {
    let storage = Storage::memory();
    let mut gw = Harness::with_upstream(
        storage.clone(),
        UpstreamUrl::local(mock_upstream::spawn(Default::default()).await.unwrap().0),
        None,
        Duration::from_secs(10),
    )
    .await;
    let (user, key) = gw.register("ivan@example.com").await;
    // 8 streams of 8 chunks 40 ms apart: each runs about 320 ms.
    let bodies = slow_streams(&gw, &key, 8, "40").await;
    gw.signal_shutdown();
    let readers = tokio::spawn(read_all(bodies));
    let (report, stats) = gw.stop().await;
    assert_eq!(
        readers.await.unwrap(),
        8,
        "every stream in flight ran to its end"
    );
    assert_eq!(report.aborted, 0);
    assert_eq!(stats.enqueued, 9, "8 requests and the register event");
    assert_eq!((stats.written, stats.failed), (9, 0));
    assert_eq!(stats.dropped_queue_full + stats.dropped_closed, 0);
    let page = storage
        .activity
        .log(
            &user,
            &tower_activity::LogQuery::parse([("kind", "request")]).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(page.total, 8);
    assert!(
        page.logs
            .iter()
            .all(|r| r.outcome == Outcome::Ok && r.output_tokens == Some(OUTPUT))
    );
    // The listener is closed.
    assert!(tokio::net::TcpStream::connect(gw.addr).await.is_err());
}

#[tokio::test]
async fn streams_past_the_grace_period_are_cut_and_still_recorded() {
    let storage = Storage::memory();
    let mut gw = Harness::with_upstream(
        storage.clone(),
        UpstreamUrl::local(mock_upstream::spawn(Default::default()).await.unwrap().0),
        None,
        Duration::from_millis(200),
    )
    .await;
    let (user, key) = gw.register("jo@example.com").await;
    // 4 streams of 8 chunks 250 ms apart: 2 s each, far past the 200 ms grace period.
    let bodies = slow_streams(&gw, &key, 4, "250").await;
    let readers = tokio::spawn(read_all(bodies));
    let (report, stats) = gw.stop().await;
    assert_eq!(report.aborted, 4);
    assert_eq!(readers.await.unwrap(), 0, "the cut streams end in an error");
    assert_eq!((stats.enqueued, stats.written, stats.failed), (5, 5, 0));
    assert_eq!(stats.dropped_queue_full + stats.dropped_closed, 0);
    let page = storage
        .activity
        .log(
            &user,
            &tower_activity::LogQuery::parse([("kind", "request")]).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(page.total, 4);
    assert!(
        page.logs.iter().all(|r| r.outcome == Outcome::Cancelled),
        "{:#?}",
        page.logs
    );
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
    if published.kind == Kind::Event {
        published = feed.recv().await.unwrap();
    }
    assert_eq!(
        published.id.to_string(),
        log["logs"][0]["id"].as_str().unwrap()
    );
    assert_eq!(published.user_id.as_deref(), Some(user.as_str()));
}

#[tokio::test]
async fn an_https_upstream_is_spoken_to_over_tls() {
    // The mock speaks plain HTTP: a TLS handshake with it fails, which shows the gateway
    // tried TLS (there is no network here to reach a real https upstream).
    let (mock, _task) = mock_upstream::spawn(Default::default()).await.unwrap();
    let gw = Harness::with_upstream(
        Storage::memory(),
        UpstreamUrl::parse(&format!("https://{mock}")).unwrap(),
        Some("k"),
        Duration::from_secs(5),
    )
    .await;
    let (_, key) = gw.register("lee@example.com").await;
    let answer = gw
        .post(&Chat.path(false), &key, &Chat.body(false, None))
        .await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY, "{}", answer.text());
    let message = answer.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains(&format!("https://{mock}")), "{message}");
    assert!(
        message.contains("corrupt message"),
        "rustls's own complaint: {message}"
    );
}

/// A fresh SQLite file in a fresh directory, removed when dropped.
struct TempDb(std::path::PathBuf);

impl TempDb {
    fn new() -> TempDb {
        let dir = std::env::temp_dir().join(format!("gateway-test-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDb(dir)
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.0.join("activity.db").display())
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn e2e_on_sqlite() {
    let db = TempDb::new();
    let storage = Storage::open(&db.url()).await.expect("SQLite opens");
    assert!(storage.description.starts_with("SQLite"));
    every_api_as_json_and_sse_lands_in_the_users_log(storage).await;
}

/// A fresh PostgreSQL database on the server `DATABASE_URL` names, dropped when done.
struct TempPg {
    admin: String,
    name: String,
}

impl TempPg {
    async fn new() -> TempPg {
        use sqlx::Connection;
        let admin = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("gateway_test_{}", uuid::Uuid::now_v7().simple());
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!("PostgreSQL at DATABASE_URL={admin} is unreachable ({e}): start it or set DATABASE_URL")
        });
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        TempPg { admin, name }
    }

    /// `DATABASE_URL` with the fresh database's name instead.
    fn url(&self) -> String {
        let (server, _) = self
            .admin
            .rsplit_once('/')
            .expect("DATABASE_URL ends in /DBNAME");
        format!("{server}/{}", self.name)
    }

    async fn drop_database(self) {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.admin).await.unwrap();
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn e2e_on_postgres() {
    let db = TempPg::new().await;
    let storage = Storage::open(&db.url()).await.expect("PostgreSQL opens");
    assert!(storage.description.starts_with("PostgreSQL"));
    every_api_as_json_and_sse_lands_in_the_users_log(storage).await;
    db.drop_database().await;
}

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

#[tokio::test]
async fn an_open_live_feed_does_not_hold_the_shutdown() {
    let mut gw = Harness::with_upstream(
        Storage::memory(),
        UpstreamUrl::local(mock_upstream::spawn(Default::default()).await.unwrap().0),
        None,
        Duration::from_secs(20),
    )
    .await;
    let (_, key) = gw.register("ned@example.com").await;
    let bearer = format!("Bearer {key}");
    let response = gw
        .send(
            Method::GET,
            "/user/activity/stream",
            &[("authorization", &bearer)],
            "",
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut feed = response.into_body();
    let ready = first_frame(&mut feed).await;
    assert!(String::from_utf8_lossy(&ready).contains("ready"));
    let started = std::time::Instant::now();
    let (report, stats) = gw.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the feed ended at the signal, not after the 20 s grace period"
    );
    assert_eq!(report.aborted, 0, "the feed's connection closed gracefully");
    assert_eq!((stats.written, stats.failed), (1, 0));
    // The client sees the feed end cleanly.
    while let Some(frame) = feed.frame().await {
        frame.expect("a clean end");
    }
}

/// The key cache in front of the SQL account stores: a hit is served from memory, a miss is
/// never remembered (a key registered a moment later, or on another instance, works at once).
#[tokio::test]
async fn key_lookups_are_remembered_but_misses_are_not() {
    use gateway::store::{
        AccountStore, CachedAccounts, ChatSession, MemoryAccounts, StoreError, User,
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
        async fn create_user(&self, user: &User, key_hash: &str) -> Result<(), StoreError> {
            self.inner.create_user(user, key_hash).await
        }
        async fn user_by_key(&self, key_hash: &str) -> Result<Option<User>, StoreError> {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            self.inner.user_by_key(key_hash).await
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
    let hash = gateway::auth::key_hash("sk-gw-test");
    assert_eq!(cached.user_by_key(&hash).await.unwrap(), None);

    let user = User {
        id: "u1".into(),
        email: "u1@example.com".into(),
    };
    // Registered behind the cache's back, as another gateway instance would: the earlier
    // miss was not remembered.
    store.create_user(&user, &hash).await.unwrap();
    assert_eq!(cached.user_by_key(&hash).await.unwrap(), Some(user.clone()));
    assert_eq!(store.lookups.load(Ordering::SeqCst), 2);

    for _ in 0..10 {
        assert_eq!(cached.user_by_key(&hash).await.unwrap(), Some(user.clone()));
    }
    assert_eq!(
        store.lookups.load(Ordering::SeqCst),
        2,
        "hits are served from memory"
    );
}
