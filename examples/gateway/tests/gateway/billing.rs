//! Every billing case of issue 11 (testkit's: one fixture per dimension and wire format, the
//! cost worked out by hand from LiteLLM 1.110.2) through the gateway: an upstream answers with
//! the fixture in 1-, 7- or 61-byte writes (or whole, or gzip-compressed), the client gets the
//! bytes unchanged, and the log API's row has the exact cost, its parts, the tier and the counts.

use std::io::Write;

use axum::body::Body;
use axum::response::Response;
use testkit::billing::{self, Case};

use super::*;

/// An upstream that answers every request with the fixture its body names
/// (`{"fixture": NAME, "chunk": N, "gzip": BOOL, …}`), written in `chunk`-byte pieces.
async fn fixture_upstream() -> UpstreamUrl {
    async fn answer(body: Bytes) -> Response {
        let asked: Value = serde_json::from_slice(&body).expect("a JSON request");
        let name = asked["fixture"]
            .as_str()
            .expect("the request names its fixture");
        let chunk = asked["chunk"].as_u64().unwrap_or(0) as usize;
        let mut bytes = billing::fixture(name);
        let mut response = Response::builder().header(
            "content-type",
            if billing::is_sse(name) {
                "text/event-stream"
            } else {
                "application/json"
            },
        );
        if asked["gzip"] == true {
            bytes = gzip(&bytes);
            response = response.header("content-encoding", "gzip");
        }
        let pieces: Vec<Result<Bytes, std::io::Error>> = if chunk == 0 {
            vec![Ok(Bytes::from(bytes))]
        } else {
            bytes
                .chunks(chunk)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect()
        };
        response
            .body(Body::from_stream(futures_util::stream::iter(pieces)))
            .unwrap()
    }
    let app = axum::Router::new().fallback(answer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    UpstreamUrl::local(addr)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// One way to send a case: frame size and whether the upstream compresses.
#[derive(Debug, Clone, Copy)]
struct How {
    chunk: usize,
    gzip: bool,
}

const HOWS: [How; 6] = [
    How {
        chunk: 0,
        gzip: false,
    },
    How {
        chunk: 1,
        gzip: false,
    },
    How {
        chunk: 7,
        gzip: false,
    },
    How {
        chunk: 61,
        gzip: false,
    },
    How {
        chunk: 0,
        gzip: true,
    },
    How {
        chunk: 7,
        gzip: true,
    },
];

#[tokio::test]
async fn every_billing_case_is_priced_exactly_through_the_gateway() {
    let upstream = fixture_upstream().await;
    let gw =
        Harness::with_upstream(Storage::memory(), upstream, None, Duration::from_secs(10)).await;
    let (_, key) = gw.register("billing@example.com").await;
    let mut sent: Vec<(String, Case, How)> = Vec::new();
    for case in billing::cases() {
        for how in HOWS {
            let mut body: Value = serde_json::from_str(case.request.unwrap_or("{}")).unwrap();
            body["fixture"] = json!(case.fixture);
            body["chunk"] = json!(how.chunk);
            body["gzip"] = json!(how.gzip);
            let answer = gw.post(case.path, &key, &body).await;
            assert_eq!(answer.status, StatusCode::OK, "{} {how:?}", case.fixture);
            let plain = billing::fixture(case.fixture);
            let want = if how.gzip { gzip(&plain) } else { plain };
            assert_eq!(
                answer.body, want,
                "{} {how:?}: the client gets the upstream's bytes",
                case.fixture
            );
            let id = answer.headers[gateway::RECORD_ID_HEADER]
                .to_str()
                .unwrap()
                .to_owned();
            sent.push((id, case, how));
        }
    }
    let page = gw.log(&key, "kind=request&limit=1000").await;
    let rows: BTreeMap<String, &Value> = page["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| (row["id"].as_str().unwrap().to_owned(), row))
        .collect();
    assert_eq!(rows.len(), sent.len(), "one row per request");
    for (id, case, how) in &sent {
        let row = rows[id];
        let r = record(row);
        let at = format!("gateway, {how:?}");
        assert_eq!(r.outcome, Outcome::Ok, "{} ({at})", case.fixture);
        assert_eq!(
            r.usage_source,
            UsageSource::Reported,
            "{} ({at})",
            case.fixture
        );
        billing::check(case, &r, &at);
        assert!(
            r.metadata["price_table"]["source"]
                .as_str()
                .unwrap()
                .starts_with("embedded: LiteLLM 1.110.2"),
            "{row:#}"
        );
        // The log API shows every money field of the record (the dashboard's row detail
        // reads them from here).
        for field in [
            "service_tier",
            "cost_source",
            "cost_details",
            "usage_details",
        ] {
            assert!(row.get(field).is_some(), "{field} in {row:#}");
        }
    }
}
