//! Feeds one recorded exchange through `ActivityLayer` and prints the record as one JSON line.
//!
//! ```text
//! cargo run --release --example replay -- --path PATH [--request REQ.json] [--status N]
//!     [--content-type MIME] [--chunk N] [--drop-after N] BODY_FILE
//! ```
//!
//! The content type defaults from the body file's extension (`.sse` → `text/event-stream`,
//! else `application/json`); `--chunk N` feeds the body in N-byte frames; `--drop-after N`
//! drops the response body after N bytes were read (a client going away). Prices: the embedded
//! default table. Exit code 0 with exactly one line on stdout; 2 with a one-line cause on
//! stderr for bad arguments or unreadable files.

use std::process::ExitCode;

use testkit::exchange::{Exchange, run};
use testkit::framed::Ending;
use tower_activity::ActivityLayer;
use tower_activity::sink::MemorySink;

const USAGE: &str = "usage: replay --path PATH [--request REQ.json] [--status N] [--content-type MIME] [--chunk N] [--drop-after N] BODY_FILE";

struct Args {
    path: String,
    request: Option<String>,
    status: u16,
    content_type: Option<String>,
    chunk: usize,
    drop_after: Option<usize>,
    body: String,
}

fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut path = None;
    let mut request = None;
    let mut status = 200;
    let mut content_type = None;
    let mut chunk = 0;
    let mut drop_after = None;
    let mut body = None;
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        let number = |name: &str, v: String| {
            v.parse::<usize>()
                .map_err(|_| format!("{name} takes a whole number, got {v:?}"))
        };
        match arg.as_str() {
            "--path" => path = Some(value("--path")?),
            "--request" => request = Some(value("--request")?),
            "--status" => {
                let v = value("--status")?;
                status = v
                    .parse::<u16>()
                    .ok()
                    .filter(|s| (100..=999).contains(s))
                    .ok_or_else(|| format!("--status takes an HTTP status (100-999), got {v:?}"))?;
            }
            "--content-type" => content_type = Some(value("--content-type")?),
            "--chunk" => chunk = number("--chunk", value("--chunk")?)?,
            "--drop-after" => drop_after = Some(number("--drop-after", value("--drop-after")?)?),
            "-h" | "--help" => return Err(USAGE.into()),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            file if body.is_none() => body = Some(file.to_owned()),
            extra => return Err(format!("one BODY_FILE only, got a second: {extra:?}")),
        }
    }
    Ok(Args {
        path: path.ok_or("--path is required (e.g. --path /v1/chat/completions)")?,
        request,
        status,
        content_type,
        chunk,
        drop_after,
        body: body.ok_or("BODY_FILE is required")?,
    })
}

fn read(file: &str, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(file).map_err(|e| format!("cannot read {what} {file:?}: {e}"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("replay: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let body = match read(&args.body, "BODY_FILE") {
        Ok(b) => b,
        Err(e) => {
            eprintln!("replay: {e}");
            return ExitCode::from(2);
        }
    };
    let request = match args.request.as_deref().map(|f| read(f, "--request")) {
        Some(Err(e)) => {
            eprintln!("replay: {e}");
            return ExitCode::from(2);
        }
        Some(Ok(r)) => r,
        None => b"{}".to_vec(),
    };
    let content_type = args.content_type.unwrap_or_else(|| {
        if args.body.ends_with(".sse") {
            "text/event-stream".into()
        } else {
            "application/json".into()
        }
    });

    let sink = MemorySink::new();
    let layer = ActivityLayer::new(sink.clone());
    let mut exchange = Exchange::new(&args.path, body, false)
        .request(request)
        .status(args.status)
        .chunk(args.chunk)
        .ending(Ending::Plain);
    exchange.content_type = content_type;
    exchange.drop_after = args.drop_after;
    run(&layer, exchange).await;
    layer.writer().flush().await;

    let records = sink.records();
    let [record] = records.as_slice() else {
        eprintln!(
            "replay: expected one record, the layer wrote {}",
            records.len()
        );
        return ExitCode::FAILURE;
    };
    match serde_json::to_string(record) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("replay: cannot serialise the record: {e}");
            ExitCode::FAILURE
        }
    }
}
