//! `PRICES_FILE`: the gateway prices from the file given at start, reloads it on SIGHUP (the
//! whole table at once), keeps the prices in use when the new file is bad, and names the table
//! of every computed cost in `metadata.price_table`.

use std::path::{Path, PathBuf};

use gateway::GatewayConfig;

use super::*;

/// A file of this test's own, removed at the end.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        TempFile(std::env::temp_dir().join(format!("{name}-{}.json", std::process::id())))
    }

    fn write(&self, text: &str) {
        std::fs::write(&self.0, text).unwrap();
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A LiteLLM-format table with one model, the mock's chat model, at these per-token prices.
fn mini_at(input: &str, output: &str) -> String {
    format!(
        r#"{{"sample_spec": {{"input_cost_per_token": 0}}, "gpt-4o-mini": {{"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": {input}, "output_cost_per_token": {output}}}}}"#
    )
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// One non-streaming chat request at the mock (13 tokens in, 24 out); its record.
async fn chat(gw: &Harness, key: &str) -> ActivityRecord {
    let answer = gw
        .post(&Chat.path(false), key, &Chat.body(false, None))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let id = answer.headers[gateway::RECORD_ID_HEADER].to_str().unwrap();
    let page = gw.log(key, "kind=request&limit=1000").await;
    let row = page["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["id"] == id)
        .expect("the request's row");
    record(row)
}

/// What the table of `path` is named (as `PriceFile` names it), read back from a record.
fn table_of(r: &ActivityRecord) -> (String, Option<String>) {
    let t = &r.metadata["price_table"];
    (
        t["source"].as_str().expect("a named table").to_owned(),
        t["date"].as_str().map(str::to_owned),
    )
}

async fn wait_for_source(gw: &Harness, not: &str) {
    let file = gw.gateway.price_file().expect("PRICES_FILE is set");
    for _ in 0..250 {
        if file.prices().current().source().source != not {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the prices were not reloaded");
}

fn sighup() {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .expect("`kill` runs");
    assert!(status.success());
}

fn config_with(upstream: UpstreamUrl, file: &Path) -> GatewayConfig {
    let mut config = GatewayConfig::for_upstream(upstream);
    config.prices_file = Some(file.to_owned());
    config
}

#[tokio::test]
async fn the_prices_file_prices_requests_and_sighup_reloads_it_whole() {
    let file = TempFile::new("prices-reload");
    file.write(&mini_at("1e-06", "2e-06"));
    let (mock, _task) = mock_upstream::spawn(mock_upstream::MockConfig::default())
        .await
        .unwrap();
    let gw = Harness::with_config(
        Storage::memory(),
        &config_with(UpstreamUrl::local(mock), &file.0),
    )
    .await;
    let (_, key) = gw.register("prices@example.com").await;

    // 13·0.000001 + 24·0.000002, from the file.
    let r = chat(&gw, &key).await;
    assert_eq!(r.cost_usd, Some(dec("0.000061")));
    let (source, date) = table_of(&r);
    assert!(
        source.starts_with(&format!("{} (sha256 ", file.0.display())),
        "{source}"
    );
    let modified: chrono::DateTime<chrono::Utc> = std::fs::metadata(&file.0)
        .unwrap()
        .modified()
        .unwrap()
        .into();
    assert_eq!(
        date.as_deref(),
        Some(
            modified
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                .as_str()
        )
    );
    // The file is the whole table: a model it does not list has no price, not the embedded one.
    let answer = gw
        .post(&Anthropic.path(false), &key, &Anthropic.body(false, None))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let page = gw.log(&key, "kind=request&limit=1").await;
    let r = record(&page["logs"][0]);
    assert_eq!(
        (r.provider.as_deref(), r.cost_usd),
        (Some("Anthropic"), None)
    );
    assert_eq!(r.metadata["pricing"], "unknown_model");

    // New prices, then SIGHUP: the next request is priced from the new file only.
    file.write(&mini_at("3e-06", "4e-06"));
    sighup();
    wait_for_source(&gw, &source).await;
    let r = chat(&gw, &key).await;
    assert_eq!(
        r.cost_usd,
        Some(dec("0.000135")),
        "13·0.000003 + 24·0.000004"
    );
    let (newer, _) = table_of(&r);
    assert_ne!(newer, source);

    // A bad file keeps the prices in use, and says why (naming the variable and the path).
    let price_file = gw.gateway.price_file().unwrap();
    for bad in [
        "{\"gpt-4o-mini\": {\"input_cost_per_token\": 1e-06,",
        r#"{"gpt-4o-mini": {"input_cost_per_token": "cheap", "output_cost_per_token": 1}}"#,
        "{}",
    ] {
        file.write(bad);
        let e = price_file.reload().unwrap_err();
        assert!(
            e.contains("PRICES_FILE") && e.contains(&file.0.display().to_string()),
            "{e}"
        );
        sighup(); // logged, and changes nothing either
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(price_file.prices().current().source().source, newer);
        let r = chat(&gw, &key).await;
        assert_eq!(r.cost_usd, Some(dec("0.000135")), "{bad}");
    }
    std::fs::remove_file(&file.0).unwrap();
    let e = price_file.reload().unwrap_err();
    assert!(e.contains("cannot read"), "{e}");
    assert_eq!(chat(&gw, &key).await.cost_usd, Some(dec("0.000135")));
}

#[tokio::test]
async fn a_bad_prices_file_at_start_stops_the_gateway_with_the_cause() {
    let file = TempFile::new("prices-bad");
    file.write("[1, 2]");
    let upstream = UpstreamUrl::parse("http://127.0.0.1:9").unwrap();
    let e =
        gateway::Gateway::with_storage(&config_with(upstream.clone(), &file.0), Storage::memory())
            .unwrap_err();
    assert!(
        e.contains("PRICES_FILE") && e.contains(&file.0.display().to_string()),
        "{e}"
    );
    let missing = file.0.with_extension("missing");
    let e = gateway::Gateway::with_storage(&config_with(upstream, &missing), Storage::memory())
        .unwrap_err();
    assert!(
        e.contains("cannot read") && e.contains("fix the path"),
        "{e}"
    );
}

#[tokio::test]
async fn without_a_prices_file_records_name_the_embedded_table() {
    let gw = Harness::start(Storage::memory()).await;
    assert!(gw.gateway.price_file().is_none());
    let (_, key) = gw.register("embedded@example.com").await;
    let r = chat(&gw, &key).await;
    assert_eq!(r.cost_usd, Some(cost(Chat.model(), OUTPUT)));
    let (source, date) = table_of(&r);
    assert_eq!(source, "embedded: LiteLLM 1.110.2, 1.74.0");
    assert_eq!(date.as_deref(), Some("2026-12-01"));
}
