//! Feeds one recorded exchange through `ActivityLayer` and prints the record as one JSON line.
//!
//! ```text
//! cargo run --release --example replay -- --path PATH [--request REQ.json] [--status N]
//!     [--content-type MIME] [--header "Name: value"]... [--chunk N] [--drop-after N] BODY_FILE
//! ```
//!
//! The content type defaults from the body file's extension (`.sse` → `text/event-stream`,
//! else `application/json`); `--header` (repeatable) adds a response header, so a
//! `Content-Encoding`d capture replays as it came (`--header "Content-Encoding: gzip"`; the
//! layer decodes gzip, deflate, br and zstd); `--chunk N` feeds the body in N-byte frames;
//! `--drop-after N` drops the response body after N bytes were read (a client going away).
//! Prices: the embedded default table. Exit code 0 with exactly one line on stdout; 2 with a
//! one-line cause on stderr for bad arguments or unreadable files.
//!
//! The work is `testkit::replay`, which the tests run too.

use std::process::ExitCode;

use testkit::replay::{Args, ReplayError, USAGE, replay};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("replay: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let record = match replay(&args).await {
        Ok(r) => r,
        Err(e @ ReplayError::Input(_)) => {
            eprintln!("replay: {e}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("replay: {e}");
            return ExitCode::FAILURE;
        }
    };
    match serde_json::to_string(&record) {
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
