//! The OpenTelemetry export beside the database, against a real OTLP/HTTP receiver: one span
//! per request whose GenAI attributes equal its log row, the caller's `traceparent` as the
//! parent, and a log that keeps every record while the collector is down.

use gateway::telemetry::OtlpConfig;
use gateway::{DATABASE_SINK, GatewayConfig};
use mock_upstream::MockConfig;
use testkit::otlp::{OtlpReceiver, assert_span_is_row, closed_endpoint, hex, str_attr};

use super::*;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN: &str = "00f067aa0ba902b7";

/// A gateway on memory storage in front of the mock upstream, exporting to `endpoint`.
async fn exporting_to(endpoint: String) -> Harness {
    let (mock, _task) = mock_upstream::spawn(MockConfig::default())
        .await
        .expect("the mock upstream starts");
    let mut config = GatewayConfig::for_upstream(UpstreamUrl::local(mock));
    config.otlp = Some(OtlpConfig {
        endpoint: Some(endpoint),
        timeout: Some(Duration::from_secs(2)),
    });
    config.writer = config
        .writer
        .with_batch_interval(Duration::from_millis(10))
        .with_retry_backoff(Duration::from_millis(10))
        .with_max_backoff(Duration::from_millis(50));
    Harness::with_config(Storage::memory(), &config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_one_span_whose_attributes_equal_its_log_row() {
    let receiver = OtlpReceiver::start().await;
    let mut gw = exporting_to(receiver.endpoint()).await;
    let (user, key) = gw.register("otel@example.com").await;
    let bearer = format!("Bearer {key}");
    let traceparent = format!("00-{TRACE_ID}-{PARENT_SPAN}-01");

    // Every API as JSON and SSE, one of them inside the caller's trace; an upstream error; a
    // stream cut before its end.
    let mut parented = None;
    for api in ALL {
        for stream in [false, true] {
            let mut headers = vec![("authorization", bearer.as_str())];
            let in_trace = api == Anthropic && !stream;
            if in_trace {
                headers.push(("traceparent", traceparent.as_str()));
            }
            let body = api.body(stream, None).to_string();
            let answer = gw
                .call(Method::POST, &api.path(stream), &headers, body)
                .await;
            assert_eq!(answer.status, StatusCode::OK, "{api:?}: {}", answer.text());
            if in_trace {
                let id = answer.headers[gateway::RECORD_ID_HEADER].to_str().unwrap();
                parented = Some(id.to_owned());
            }
        }
    }
    let failing = [
        (Chat, false, "429", StatusCode::TOO_MANY_REQUESTS),
        (Anthropic, true, "cut", StatusCode::OK),
    ];
    for (api, stream, mode, status) in failing {
        let headers = [("authorization", bearer.as_str()), ("x-mock-error", mode)];
        let body = api.body(stream, None).to_string();
        let answer = gw
            .call(Method::POST, &api.path(stream), &headers, body)
            .await;
        assert_eq!(answer.status, status, "{api:?} {mode}: {}", answer.text());
    }

    // `log` flushes every sink: the collector has answered for every record.
    let rows = records(&gw, &key, "kind=request&limit=100").await;
    assert_eq!(rows.len(), 10, "{rows:#?}");
    let spans = receiver.spans();
    let requests: Vec<_> = spans
        .iter()
        .filter(|s| str_attr(s, "activity.kind") == Some("request"))
        .collect();
    assert_eq!(requests.len(), rows.len(), "one span per request");
    for row in &rows {
        let id = row.id.to_string();
        let mut matching = requests
            .iter()
            .filter(|s| str_attr(s, "activity.id") == Some(id.as_str()));
        let span = matching
            .next()
            .unwrap_or_else(|| panic!("no span for {id}"));
        assert!(matching.next().is_none(), "{id}: one span");
        assert_span_is_row(span, row);
        assert_eq!(row.user_id.as_deref(), Some(user.as_str()));
        let in_trace = Some(&id) == parented.as_ref();
        if in_trace {
            assert_eq!(hex(&span.trace_id), TRACE_ID, "the caller's trace");
            assert_eq!(hex(&span.parent_span_id), PARENT_SPAN, "the caller's span");
            assert_eq!(row.metadata["traceparent"], traceparent.as_str());
        } else {
            assert!(span.parent_span_id.is_empty(), "{id}: a root span");
            assert_eq!(hex(&span.trace_id), hex(row.id.as_bytes()));
        }
    }
    // What the requests were picked for, so that the comparison above means something.
    assert!(parented.is_some());
    assert!(rows.iter().any(|r| r.outcome == Outcome::Error));
    assert!(rows.iter().any(|r| r.outcome == Outcome::Interrupted));
    assert!(
        rows.iter().any(|r| r.input_tokens.is_none()),
        "unknown counts"
    );
    assert!(rows.iter().any(|r| r.reasoning_tokens.is_none()));
    assert!(rows.iter().filter(|r| r.cost_usd.is_some()).count() >= 8);

    // The register event is a span too, and so are the records' GenAI metrics.
    assert!(spans.iter().any(|s| s.name == "register"));
    let otel = gw.gateway.otel().expect("the export is on");
    otel.flush_metrics().await.expect("metrics exported");
    assert!(!receiver.metric_requests().is_empty());

    let (_, stats) = gw.stop().await;
    assert_eq!(
        (stats.written, stats.failed),
        (11, 0),
        "10 requests and 1 event"
    );
    let otlp = gw
        .gateway
        .writer()
        .sink_stats_of(gateway::telemetry::SINK_NAME)
        .expect("an otlp lane");
    assert_eq!((otlp.written, otlp.failed), (11, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_keeps_every_record_while_the_collector_is_down() {
    let mut gw = exporting_to(closed_endpoint()).await;
    let (_, key) = gw.register("down@example.com").await;
    for api in ALL {
        let answer = gw
            .post(&api.path(false), &key, &api.body(false, None))
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    }
    // The activity API waits for the database only, so it answers while the collector's lane
    // retries.
    assert!(gw.gateway.writer().flush_sink(DATABASE_SINK).await);
    let page = gw.get("/user/activity/log?kind=request", &key).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    assert_eq!(page.json()["total"], 4);
    let writer = gw.gateway.writer().clone();
    let lane = |name: &str| writer.sink_stats_of(name).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while lane(gateway::telemetry::SINK_NAME).retried < 2 && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let otlp = lane(gateway::telemetry::SINK_NAME);
    assert!(otlp.retried >= 2, "the collector's lane retries: {otlp:?}");
    assert_eq!(otlp.written, 0);

    gw.signal_shutdown();
    let stats = gw.gateway.shutdown(Duration::from_millis(300)).await;
    assert_eq!(
        (stats.written, stats.failed),
        (5, 0),
        "the database has every record"
    );
    let otlp = lane(gateway::telemetry::SINK_NAME);
    assert_eq!(
        (otlp.written, otlp.failed),
        (0, 5),
        "the collector's records are counted as failed, not lost silently"
    );
}
