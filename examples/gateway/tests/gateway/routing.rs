//! Several upstreams from one `GATEWAY_CONFIG`: each request to the upstream of its API and
//! model, with that upstream's key and header rules; a request none serves is a 404 in its
//! API's shape, sent nowhere.

use super::*;

fn config(text: &str) -> gateway::GatewayConfig {
    let mut config = gateway::GatewayConfig::for_upstream(UpstreamUrl::parse("http://x").unwrap());
    config.upstream_url = None;
    config.upstreams =
        gateway::config_file::parse("test.toml", text, |name| Some(format!("key-of-{name}")))
            .expect("the configuration reads");
    config
}

#[tokio::test]
async fn each_request_goes_to_its_upstream_with_its_key() {
    let (openai, anthropic, openrouter) = (
        Echo::start().await,
        Echo::start().await,
        Echo::start().await,
    );
    let text = format!(
        r#"
[[upstream]]
name = "openai"
base_url = "http://{}"
api_key_env = "OPENAI_API_KEY"
apis = ["openai.chat", "openai.responses"]
models = ["gpt-*"]
forward_headers = ["openai-beta"]

[[upstream]]
name = "anthropic"
base_url = "http://{}"
api_key_env = "ANTHROPIC_API_KEY"
apis = ["anthropic.messages"]
rate_limit_headers = true

[[upstream]]
name = "openrouter"
base_url = "http://{}/api"
api_key_env = "OPENROUTER_API_KEY"
apis = ["openai.chat"]
models = ["*/*"]
"#,
        openai.addr, anthropic.addr, openrouter.addr
    );
    let gw = Harness::with_config(Storage::memory(), &config(&text)).await;
    let (_, key) = gw.register("router@example.com").await;
    let bearer = format!("Bearer {key}");
    let headers = [
        ("authorization", bearer.as_str()),
        ("openai-beta", "assistants=v2"),
        ("anthropic-beta", "tools-2024"),
    ];

    // gpt-4o-mini → openai, Bearer, openai-beta through.
    let answer = gw
        .call(
            Method::POST,
            &Chat.path(false),
            &headers,
            Chat.body(false, None).to_string(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let seen = &openai.seen()[0];
    assert_eq!(seen.uri, "/v1/chat/completions");
    assert_eq!(
        seen.headers["authorization"],
        "Bearer key-of-OPENAI_API_KEY"
    );
    assert_eq!(seen.headers["openai-beta"], "assistants=v2");
    assert!(!seen.headers.contains_key("anthropic-beta"));
    assert!(
        !answer
            .headers
            .contains_key("x-ratelimit-remaining-requests"),
        "not configured"
    );

    // claude → anthropic, x-api-key and anthropic-version, its rate-limit headers back.
    let answer = gw
        .call(
            Method::POST,
            &Anthropic.path(false),
            &headers,
            Anthropic.body(false, None).to_string(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let seen = &anthropic.seen()[0];
    assert_eq!(seen.headers["x-api-key"], "key-of-ANTHROPIC_API_KEY");
    assert_eq!(seen.headers["anthropic-version"], "2023-06-01");
    assert_eq!(seen.headers["anthropic-beta"], "tools-2024");
    assert!(
        !seen.headers.contains_key("authorization") && !seen.headers.contains_key("openai-beta")
    );
    assert_eq!(
        answer.headers["anthropic-ratelimit-tokens-remaining"],
        "1000"
    );
    assert_eq!(answer.headers["x-ratelimit-remaining-requests"], "99");

    // vendor/model → openrouter, under its base URL's prefix.
    let mut body = Chat.body(false, None);
    body["model"] = json!("meta-llama/llama-3.3-70b-instruct");
    let answer = gw
        .call(Method::POST, &Chat.path(false), &headers, body.to_string())
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let seen = &openrouter.seen()[0];
    assert_eq!(seen.uri, "/api/v1/chat/completions");
    assert_eq!(
        seen.headers["authorization"],
        "Bearer key-of-OPENROUTER_API_KEY"
    );
    assert!(
        !seen.headers.contains_key("openai-beta"),
        "openrouter does not forward it"
    );

    // Nobody serves these: 404 in each API's own shape, naming the model, sent nowhere.
    let mut body = Chat.body(false, None);
    body["model"] = json!("mistral-large");
    let answer = gw
        .call(Method::POST, &Chat.path(false), &headers, body.to_string())
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    let error = &answer.json()["error"];
    assert_eq!(
        (error["code"].as_str(), error["param"].as_str()),
        (Some("model_not_found"), Some("model"))
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("\"mistral-large\""),
        "{error}"
    );
    let mut body = Responses.body(false, None);
    body["model"] = json!("claude-sonnet-4-5");
    let answer = gw
        .call(
            Method::POST,
            &Responses.path(false),
            &headers,
            body.to_string(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    let answer = gw
        .call(
            Method::POST,
            &Gemini.path(true),
            &headers,
            Gemini.body(true, None).to_string(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    let error = &answer.json()["error"];
    assert_eq!(
        (error["code"].as_u64(), error["status"].as_str()),
        (Some(404), Some("NOT_FOUND"))
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("gemini-2.5-flash"),
        "{error}"
    );
    assert_eq!(
        (
            openai.seen().len(),
            anthropic.seen().len(),
            openrouter.seen().len()
        ),
        (1, 1, 1),
        "refused requests went nowhere"
    );

    // Records carry the upstream's name, never its URL; refused requests are not recorded.
    let page = gw.log(&key, "kind=request").await;
    let mut upstreams: Vec<String> = page["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| record(row).upstream.unwrap())
        .collect();
    upstreams.sort();
    assert_eq!(upstreams, ["anthropic", "openai", "openrouter"]);
}

#[tokio::test]
async fn a_url_with_userinfo_is_never_shown_answered_or_recorded() {
    // A port nothing listens on: the 502 names the upstream, not its credentials.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://ada:hunter2@{port}/v");
    let mut config = gateway::GatewayConfig::for_upstream(UpstreamUrl::parse(&url).unwrap());
    config.upstream_api_key = None;
    let gw = Harness::with_config(Storage::memory(), &config).await;
    assert!(!format!("{:?}", gw.gateway).contains("hunter2"));
    assert!(!gw.gateway.state().upstream.describe().contains("hunter2"));
    let (_, key) = gw.register("userinfo@example.com").await;
    let answer = gw
        .post(&Chat.path(false), &key, &Chat.body(false, None))
        .await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
    assert!(
        !answer.text().contains("hunter2") && !answer.text().contains("ada:"),
        "{}",
        answer.text()
    );
    assert!(answer.text().contains(&port.to_string()));
    let page = gw.log(&key, "kind=request").await;
    assert!(!page.to_string().contains("hunter2"), "{page}");
    assert_eq!(record(&page["logs"][0]).upstream, Some(port.to_string()));

    // Reachable: the userinfo goes as Basic auth (when the key does not take Authorization).
    let echo = Echo::start().await;
    let url = format!("http://ada:hunter2@{}", echo.addr);
    let config = gateway::GatewayConfig::for_upstream(UpstreamUrl::parse(&url).unwrap());
    let gw = Harness::with_config(Storage::memory(), &config).await;
    let (_, key) = gw.register("basic@example.com").await;
    let answer = gw
        .post(&Chat.path(false), &key, &Chat.body(false, None))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        echo.seen()[0].headers["authorization"],
        "Basic YWRhOmh1bnRlcjI="
    );
}

#[tokio::test]
async fn a_slow_body_read_for_routing_is_a_408_sent_nowhere_and_not_recorded() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let openai = Echo::start().await;
    let text = format!(
        "[[upstream]]\nname = \"openai\"\nbase_url = \"http://{}\"\napis = [\"openai.chat\"]\nmodels = [\"gpt-*\"]\n",
        openai.addr
    );
    let mut config = config(&text);
    config.limits.body_idle = Duration::from_millis(300);
    let gw = Harness::with_config(Storage::memory(), &config).await;
    let (_, key) = gw.register("slow-route@example.com").await;
    let mut conn = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{{\"model\":\"gpt-4o-mini\""
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), conn.read_to_end(&mut answer))
        .await
        .expect("the gateway answers and closes")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("\"code\":\"request_timeout\""),
        "OpenAI's shape: {answer}"
    );
    assert!(openai.seen().is_empty());
    assert_eq!(gw.log(&key, "kind=request").await["total"], 0);
}
