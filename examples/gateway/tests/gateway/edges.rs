//! Every way a request can go wrong at the gateway: a client gone, upstream errors, bad
//! input, keys, TLS, metrics and health.

use super::*;

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
        assert_eq!(
            r.upstream,
            Some(port.to_string()),
            "the upstream by its host:port"
        );
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
                r.endpoint.into_owned(),
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
    let echo = Echo::start().await;
    let gw = Harness::with_upstream(
        Storage::memory(),
        UpstreamUrl::parse(&format!("http://{}/prefix", echo.addr)).unwrap(),
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
            "{}{}session_id={session}&key=leak&ke%79=leak2",
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
            ("openai-organization", "org-someone-else"),
            ("openai-project", "proj-someone-else"),
            ("cookie", "session=abc"),
            ("x-forwarded-for", "10.0.0.1"),
            (
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ),
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
        assert!(
            !seen.to_string().contains(&key),
            "{api:?}: the client's key went upstream"
        );
        // Only the API's own headers, the message's, the trace context and the credential.
        let mut names: Vec<&str> = sent.keys().map(String::as_str).collect();
        names.sort_unstable();
        let mut want = vec![
            "content-length",
            "content-type",
            "host",
            "traceparent",
            header,
        ];
        if api == Anthropic {
            want.push("anthropic-version");
        }
        want.sort_unstable();
        assert_eq!(names, want, "{api:?}");
        let uri = seen["uri"].as_str().unwrap();
        let want = match api {
            Gemini => format!("/prefix{}", api.path(true)),
            _ => format!("/prefix{}", api.endpoint(true)),
        };
        assert_eq!(
            uri, want,
            "{api:?}: no session_id or key upstream, encoded or not"
        );
        // Only the documented response headers come back (rate limits: not configured).
        let mut back: Vec<&str> = answer.headers.keys().map(|k| k.as_str()).collect();
        back.sort_unstable();
        assert_eq!(
            back,
            [
                "content-length",
                "content-type",
                "date",
                "x-activity-id",
                "x-request-id"
            ],
            "{api:?}"
        );
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
            .starts_with("application/openmetrics-text; version=1.0.0")
    );
    let text = metrics.text();
    for line in [
        "activity_records_enqueued_total{sink=\"database\"} 2",
        "activity_records_written_total{sink=\"database\"} 2",
        "activity_records_dropped_total{sink=\"database\",reason=\"queue_full\"} 0",
        "activity_records_dropped_total{sink=\"database\",reason=\"closed\"} 0",
        "activity_records_failed_total{sink=\"database\"} 0",
        "activity_sink_retries_total{sink=\"database\"} 0",
        "activity_queue_depth{sink=\"database\"} 0",
        "# TYPE activity_batch_duration_seconds counter",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    let count: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("activity_batches_total{sink=\"database\"} "))
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

#[tokio::test]
async fn unnormalised_paths_are_refused_and_nothing_goes_upstream() {
    let echo = Echo::start().await;
    let gw = Harness::with_upstream(
        Storage::memory(),
        UpstreamUrl::local(echo.addr),
        Some("gateway-key"),
        Duration::from_secs(5),
    )
    .await;
    let (_, key) = gw.register("paths@example.com").await;
    let bearer = format!("Bearer {key}");
    let body = Gemini.body(false, None).to_string();
    for path in [
        "/v1beta/models/../../v1/files:generateContent",
        "/v1beta/models/%2e%2e/%2E%2E/v1/files:generateContent",
        "/v1beta/models/.%2e/x:generateContent",
        "/v1beta/models/./gemini-2.5-flash:generateContent",
        "/v1beta/models/a%2fb:generateContent",
        "/v1beta/models/a%5Cb:generateContent",
        "/v1beta/models/%252e%252e/x:generateContent",
        "/v1beta//models/gemini-2.5-flash:generateContent",
        "/v1/chat/../chat/completions",
        "//v1/chat/completions",
    ] {
        let answer = gw
            .call(
                Method::POST,
                path,
                &[("authorization", &bearer)],
                body.clone(),
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            answer.text()
        );
        assert_eq!(answer.json()["error"]["type"], "invalid_path", "{path}");
    }
    assert!(echo.seen().is_empty(), "sent upstream: {:?}", echo.seen());
    assert_eq!(
        gw.log(&key, "kind=request").await["total"],
        0,
        "nothing recorded"
    );
    // The canonical path still goes through.
    let answer = gw
        .call(
            Method::POST,
            &Gemini.path(false),
            &[("authorization", &bearer)],
            body,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(echo.seen().len(), 1);
}
