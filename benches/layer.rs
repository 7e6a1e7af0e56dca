//! Bare service vs the same service behind `ActivityLayer` (no-op sink), for a 1 KB JSON
//! response and a 100-event SSE stream (one event per frame). The difference is the layer's
//! cost per request; divided by 100 for the stream, its cost per SSE event.
//!
//! `cargo bench --bench layer`; figures in BENCHMARKS.md.

use std::convert::Infallible;
use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use testkit::framed::{Ending, FramedBody};
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_activity::sink::NoopSink;
use tower_activity::{ActivityLayer, ActivityRequestBody};

fn json_body() -> Bytes {
    let content = "lorem ipsum dolor sit amet ".repeat(25);
    let body = format!(
        r#"{{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{{"index":0,"message":{{"role":"assistant","content":"{}"}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":120,"completion_tokens":170,"total_tokens":290,"prompt_tokens_details":{{"cached_tokens":0}},"completion_tokens_details":{{"reasoning_tokens":0}}}}}}"#,
        &content[..content.len().min(700)]
    );
    Bytes::from(body)
}

fn sse_frames() -> Vec<Bytes> {
    let mut frames = Vec::new();
    frames.push(Bytes::from_static(b"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n"));
    for i in 0..96 {
        frames.push(Bytes::from(format!("data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" word{i}\"}},\"finish_reason\":null}}]}}\n\n")));
    }
    frames.push(Bytes::from_static(b"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"));
    frames.push(Bytes::from_static(b"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[],\"usage\":{\"prompt_tokens\":120,\"completion_tokens\":97,\"total_tokens\":217}}\n\n"));
    frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
    assert_eq!(frames.len(), 100);
    frames
}

/// What the fake upstream answers: at once, with the recorded frames.
type Answer = std::future::Ready<Result<Response<FramedBody>, Infallible>>;

fn upstream(
    frames: Vec<Bytes>,
    content_type: &'static str,
) -> impl Service<
    Request<ActivityRequestBody<Full<Bytes>>>,
    Response = Response<FramedBody>,
    Error = Infallible,
    Future = Answer,
> + Clone {
    service_fn(move |_req: Request<ActivityRequestBody<Full<Bytes>>>| {
        let body = FramedBody::from_frames(frames.clone(), Ending::Plain);
        std::future::ready(Ok(Response::builder()
            .header("content-type", content_type)
            .body(body)
            .expect("valid response")))
    })
}

fn request(stream: bool) -> Request<Full<Bytes>> {
    let body = if stream {
        r#"{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Write a short poem about tower middleware."}]}"#
    } else {
        r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Write a short poem about tower middleware."}]}"#
    };
    Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("valid request")
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let layer = rt.block_on(async { ActivityLayer::new(NoopSink) });

    for (name, frames, content_type, stream) in [
        ("json_1kb", vec![json_body()], "application/json", false),
        ("sse_100_events", sse_frames(), "text/event-stream", true),
    ] {
        let inner = upstream(frames, content_type);
        let layered = layer.layer(inner.clone());
        let mut group = c.benchmark_group(name);
        group.bench_function("bare", |b| {
            b.iter(|| {
                rt.block_on(async {
                    let (parts, body) = request(stream).into_parts();
                    let req = Request::from_parts(parts, ActivityRequestBody::passthrough(body));
                    let resp = inner.clone().oneshot(req).await.expect("infallible");
                    black_box(resp.into_body().collect().await.expect("body").to_bytes())
                })
            })
        });
        group.bench_function("layered", |b| {
            b.iter(|| {
                rt.block_on(async {
                    let resp = layered
                        .clone()
                        .oneshot(request(stream))
                        .await
                        .expect("infallible");
                    black_box(resp.into_body().collect().await.expect("body").to_bytes())
                })
            })
        });
        group.finish();
    }
    rt.block_on(layer.writer().shutdown(std::time::Duration::from_secs(5)));
}

criterion_group!(benches, bench);
criterion_main!(benches);
