//! How a body ends and how it is encoded: a stream that ends cleanly after its finish and
//! usage but without its terminal marker is `ok` (and `interrupted` when either is missing);
//! a `Content-Encoding`d body (gzip, deflate, br, zstd) is read from a decoded copy under any
//! framing while the client receives the compressed bytes; an encoding the layer cannot
//! decode, or a corrupt body, gives no usage and says why.

use std::io::Write;

use bytes::Bytes;
use testkit::billing;
use testkit::exchange::{Exchange, run};
use testkit::framed::Ending;
use tower_activity::sink::MemorySink;
use tower_activity::{ActivityLayer, ActivityRecord, Outcome, UsageSource};

const CHAT: &str = "/v1/chat/completions";

async fn record(ex: Exchange) -> (ActivityRecord, Bytes) {
    let sink = MemorySink::new();
    let layer = ActivityLayer::new(sink.clone());
    let seen = run(&layer, ex).await;
    layer.writer().flush().await;
    let mut records = sink.records();
    assert_eq!(records.len(), 1);
    (records.remove(0), seen.received)
}

/// The record without what differs between runs (ids, clocks) or by encoding.
fn stable(mut r: ActivityRecord) -> serde_json::Value {
    r.id = uuid::Uuid::nil();
    r.timestamp = chrono::DateTime::UNIX_EPOCH;
    r.ttft_ms = r.ttft_ms.map(|_| 0.0);
    r.latency_ms = None;
    r.speed = None;
    r.metadata.remove("content_encoding");
    serde_json::to_value(r).unwrap()
}

fn without(body: &str, cut: &str) -> String {
    assert!(body.contains(cut), "{cut}");
    body.replace(cut, "")
}

#[tokio::test]
async fn a_stream_without_its_terminal_marker_is_ok_when_finish_and_usage_came() {
    let body = String::from_utf8(billing::fixture("openai-chat_stream_priority.sse")).unwrap();
    let complete = without(&body, "data: [DONE]\n\n");
    for chunk in [0, 1, 7, 61] {
        let (r, _) = record(Exchange::new(CHAT, complete.clone(), true).chunk(chunk)).await;
        assert_eq!(r.outcome, Outcome::Ok, "{chunk}");
        assert_eq!(r.cost_usd, Some("0.01855".parse().unwrap()));
        assert_eq!(r.metadata["terminal_marker"], "missing");
    }
    // Cut before the usage chunk: the finish came, the usage did not.
    let usage_line = body
        .split("\n\n")
        .find(|e| e.contains("\"usage\":{"))
        .unwrap()
        .to_owned();
    let no_usage = without(&complete, &format!("{usage_line}\n\n"));
    let (r, _) = record(Exchange::new(CHAT, no_usage, true)).await;
    assert_eq!(r.outcome, Outcome::Interrupted);
    assert!(!r.metadata.contains_key("terminal_marker"));
    // Cut before the finish: interrupted.
    let head: String = body.split_inclusive("\n\n").take(2).collect();
    let (r, _) = record(Exchange::new(CHAT, head, true)).await;
    assert_eq!(r.outcome, Outcome::Interrupted);
    // A body error after the finish and the usage is still a cut body.
    let (r, _) =
        record(Exchange::new(CHAT, complete.clone(), true).ending(Ending::Error("reset".into())))
            .await;
    assert_eq!(r.outcome, Outcome::Interrupted);

    // Anthropic without `message_stop`: message_delta had the stop reason and the usage.
    let body = String::from_utf8(billing::fixture("anthropic_stream_cache-1h.sse")).unwrap();
    let stop = "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    let (r, _) = record(Exchange::new("/v1/messages", without(&body, stop), true)).await;
    assert_eq!(r.outcome, Outcome::Ok);
    assert_eq!(r.cost_usd, Some("0.012684".parse().unwrap()));
}

fn encode(encoding: &str, data: &[u8]) -> Vec<u8> {
    match encoding {
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "deflate" => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "br" => {
            let mut out = Vec::new();
            brotli::BrotliCompress(
                &mut &data[..],
                &mut out,
                &brotli::enc::BrotliEncoderParams::default(),
            )
            .unwrap();
            out
        }
        "zstd" => zstd::encode_all(data, 3).unwrap(),
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn an_encoded_body_is_read_from_a_decoded_copy_under_any_framing() {
    for fixture in [
        "openai-chat_stream_priority.sse",
        "anthropic_web-search.json",
        "gemini_stream_audio.sse",
        "openai-responses_stream_web-search.sse",
    ] {
        let case = billing::cases()
            .into_iter()
            .find(|c| c.fixture == fixture)
            .unwrap();
        let plain = billing::fixture(fixture);
        let sse = billing::is_sse(fixture);
        let request = case.request.unwrap_or("{}");
        let (want, _) = record(Exchange::new(case.path, plain.clone(), sse).request(request)).await;
        for encoding in ["gzip", "deflate", "br", "zstd"] {
            let body = encode(encoding, &plain);
            for chunk in [0, 1, 7, 61] {
                let ex = Exchange::new(case.path, body.clone(), sse)
                    .request(request)
                    .header("content-encoding", encoding)
                    .chunk(chunk);
                let (r, received) = record(ex).await;
                assert_eq!(
                    received, body,
                    "{fixture} {encoding}: the client gets it as sent"
                );
                assert_eq!(
                    r.metadata["content_encoding"],
                    format!("content-encoding: {encoding}")
                );
                billing::check(&case, &r, &format!("{encoding}, {chunk}-byte frames"));
                assert_eq!(
                    stable(r),
                    stable(want.clone()),
                    "{fixture} {encoding} {chunk}"
                );
            }
        }
    }
}

#[tokio::test]
async fn an_encoding_the_layer_cannot_decode_gives_no_usage_and_says_why() {
    let plain = billing::fixture("openai-chat_priority.json");
    let ex = Exchange::new(CHAT, plain, false).header("content-encoding", "compress");
    let (r, _) = record(ex).await;
    assert_eq!(r.usage_source, UsageSource::None);
    assert_eq!((r.input_tokens, r.cost_usd), (None, None));
    assert_eq!(
        r.metadata["usage_unavailable"],
        "content-encoding: compress"
    );

    // Bytes that claim to be gzip but are not: no usage, never garbage.
    let mut corrupt = encode("gzip", &billing::fixture("openai-chat_stream_priority.sse"));
    let middle = corrupt.len() / 2;
    corrupt[middle..middle + 8].copy_from_slice(b"garbage!");
    let ex = Exchange::new(CHAT, corrupt, true).header("content-encoding", "gzip");
    let (r, _) = record(ex).await;
    assert_eq!(r.usage_source, UsageSource::None, "{:?}", r.metadata);
    assert_eq!(r.cost_usd, None);
    let why = r.metadata["usage_unavailable"].as_str().unwrap();
    assert!(
        why.starts_with("content-encoding: gzip (cannot decode"),
        "{why}"
    );
}

#[tokio::test]
async fn a_compressed_body_that_ends_short_of_its_encoding_is_not_vouched_for() {
    // The gzip trailer (its checksum) never came: what inflated cannot be told from garbage.
    let plain = billing::fixture("openai-chat_stream_priority.sse");
    let gz = encode("gzip", &plain);
    let cut = gz[..gz.len() - 8].to_vec();
    let ex = Exchange::new(CHAT, cut, true).header("content-encoding", "gzip");
    let (r, _) = record(ex).await;
    assert_eq!(r.usage_source, UsageSource::None);
    assert_eq!(r.cost_usd, None);
    assert!(
        r.metadata["usage_unavailable"]
            .as_str()
            .unwrap()
            .contains("cannot decode")
    );
    // Cut by the connection instead (a body error): read as far as it went, like any cut
    // stream — the finish and the usage were in it, the record says interrupted.
    let ex = Exchange::new(CHAT, gz, true)
        .header("content-encoding", "gzip")
        .ending(Ending::Error("reset".into()));
    let (r, _) = record(ex).await;
    assert_eq!(r.outcome, Outcome::Interrupted);
    assert_eq!(r.usage_source, UsageSource::Reported);
}

#[tokio::test]
async fn an_encoded_stream_is_never_rewritten() {
    // The layer asks for include_usage; a compressed stream cannot be edited, so the client
    // receives it exactly as sent (usage chunk included) and the record still has the usage.
    let plain = billing::fixture("openai-chat_stream_priority.sse");
    let gz = encode("gzip", &plain);
    let ex = Exchange::new(CHAT, gz.clone(), true)
        .request(r#"{"model":"gpt-5","stream":true,"messages":[]}"#)
        .header("content-encoding", "gzip")
        .chunk(7);
    let (r, received) = record(ex).await;
    assert_eq!(received, gz);
    assert_eq!(r.cost_usd, Some("0.01855".parse().unwrap()));
}
