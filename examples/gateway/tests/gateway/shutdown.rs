//! Graceful shutdown: streams in flight finish (or are cut at the grace and still recorded),
//! live feeds end.

use super::*;

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
            &tower_activity::query::LogQuery::parse([("kind", "request")]).unwrap(),
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
            &tower_activity::query::LogQuery::parse([("kind", "request")]).unwrap(),
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
