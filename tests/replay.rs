//! `replay`, as its command line drives it (`testkit::replay`, the example's whole work): every
//! billing case (one per dimension and wire format, the cost worked out by hand from LiteLLM
//! 1.110.2) whole and in 1-, 7- and 61-byte frames, to the last digit; a compressed capture
//! with `--header "Content-Encoding: …"` gives the plain capture's record.

use std::io::Write;
use std::path::PathBuf;

use testkit::billing;
use testkit::replay::{Args, replay};
use tower_activity::{ActivityRecord, Outcome, UsageSource};

/// A folder of this test run's own files, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("replay-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fixture_path(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

async fn run(line: &[&str]) -> ActivityRecord {
    let args = Args::parse(line.iter().map(|s| (*s).to_owned()))
        .unwrap_or_else(|e| panic!("{line:?}: {e}"));
    replay(&args)
        .await
        .unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

#[tokio::test]
async fn every_billing_case_is_priced_exactly_through_replay_in_any_framing() {
    let scratch = Scratch::new("cases");
    for (i, case) in billing::cases().iter().enumerate() {
        let body = fixture_path(case.fixture);
        let request = case
            .request
            .map(|r| scratch.write(&format!("request-{i}.json"), r.as_bytes()));
        for chunk in ["0", "1", "7", "61"] {
            let mut line = vec!["--path", case.path, "--chunk", chunk];
            if let Some(request) = &request {
                line.extend(["--request", request.as_str()]);
            }
            line.push(body.as_str());
            let r = run(&line).await;
            assert_eq!(r.outcome, Outcome::Ok, "{} ({chunk})", case.fixture);
            assert_eq!(r.usage_source, UsageSource::Reported, "{}", case.fixture);
            billing::check(case, &r, &format!("replay --chunk {chunk}"));
        }
    }
}

#[tokio::test]
async fn a_compressed_capture_replays_as_it_came_with_its_header() {
    let scratch = Scratch::new("encoded");
    for fixture in ["anthropic_stream_web-search.sse", "openai-chat_audio.json"] {
        let case = billing::cases()
            .into_iter()
            .find(|c| c.fixture == fixture)
            .unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&billing::fixture(fixture)).unwrap();
        let gz = scratch.write(&format!("{fixture}.gz"), &gz.finish().unwrap());
        let content_type = if billing::is_sse(fixture) {
            "Content-Type: text/event-stream"
        } else {
            "Content-Type: application/json"
        };
        for chunk in ["0", "1", "7", "61"] {
            let line = [
                "--path",
                case.path,
                "--header",
                "Content-Encoding: gzip",
                "--header",
                content_type,
                "--chunk",
                chunk,
                gz.as_str(),
            ];
            let r = run(&line).await;
            assert_eq!(r.metadata["content_encoding"], "content-encoding: gzip");
            billing::check(&case, &r, &format!("gzip, replay --chunk {chunk}"));
        }
        // Without the header the compressed bytes are not JSON: no usage, and no made-up cost.
        let line = [
            "--path",
            case.path,
            "--content-type",
            "application/json",
            gz.as_str(),
        ];
        let r = run(&line).await;
        assert_eq!(r.usage_source, UsageSource::None, "{fixture}");
        assert_eq!(r.cost_usd, None, "{fixture}");
    }
}
