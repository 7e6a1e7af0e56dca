//! An OpenAI / Anthropic / Gemini compatible mock upstream, for demos and load tests.
//!
//! ```text
//! cargo run -p mock-upstream
//! MOCK_ADDR=127.0.0.1:9000 MOCK_CHUNKS=16 MOCK_DELAY_MS=20 cargo run --release -p mock-upstream
//! ```
//!
//! `MOCK_ADDR` (default `127.0.0.1:8081`), `MOCK_CHUNKS` content chunks per stream (default
//! 8), `MOCK_DELAY_MS` wait before each content chunk (default 0). Token counts, routes and
//! the per-request `x-mock-*` headers are described in `examples/mock-upstream/src/lib.rs`.
//! Exit code 2 with a one-line cause for a bad variable, 1 when the address cannot be bound.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use mock_upstream::MockConfig;

/// The value of `name` parsed as `T`, `default` when unset; `Err` names the variable.
fn var<T: FromStr>(name: &str, default: T, expected: &str) -> Result<T, String> {
    match std::env::var(name) {
        Err(std::env::VarError::NotPresent) => Ok(default),
        Ok(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("{name} must be {expected}, got {v:?}")),
        Err(std::env::VarError::NotUnicode(v)) => {
            Err(format!("{name} must be {expected}, got {v:?}"))
        }
    }
}

fn settings() -> Result<(SocketAddr, MockConfig), String> {
    let default_addr = SocketAddr::from(([127, 0, 0, 1], 8081));
    let addr = var("MOCK_ADDR", default_addr, "an address like 127.0.0.1:8081")?;
    let defaults = MockConfig::default();
    let chunks = NonZeroUsize::new(defaults.chunks).unwrap_or(NonZeroUsize::MIN);
    let chunks = var("MOCK_CHUNKS", chunks, "a whole number >= 1")?;
    let delay = var("MOCK_DELAY_MS", 0, "a whole number of milliseconds")?;
    let config = MockConfig {
        chunks: chunks.get(),
        delay: Duration::from_millis(delay),
        ..defaults
    };
    Ok((addr, config))
}

#[tokio::main]
async fn main() -> ExitCode {
    let (addr, config) = match settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("mock_upstream: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("mock_upstream: cannot listen on {addr} ({e}); set MOCK_ADDR to a free one");
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().unwrap_or(addr);
    println!(
        "mock upstream on http://{addr} ({} chunks, {} ms delay): POST /v1/chat/completions, /v1/responses, /v1/messages, /v1beta/models/{{model}}:generateContent, /v1beta/models/{{model}}:streamGenerateContent?alt=sse",
        config.chunks,
        config.delay.as_millis()
    );
    let server = mock_upstream::serve(listener, config);
    tokio::select! {
        result = server => {
            if let Err(e) = result {
                eprintln!("mock_upstream: the server stopped: {e}");
                return ExitCode::FAILURE;
            }
        }
        _ = tokio::signal::ctrl_c() => {}
    }
    ExitCode::SUCCESS
}
