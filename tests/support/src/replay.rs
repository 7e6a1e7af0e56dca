//! The `replay` example's work, here so the tests run exactly what it runs: its command line
//! ([`Args::parse`]) and one exchange through an `ActivityLayer` ([`replay`]).
//!
//! ```text
//! replay --path PATH [--request REQ.json] [--status N] [--content-type MIME]
//!        [--header "Name: value"]… [--chunk N] [--drop-after N] BODY_FILE
//! ```

use http::{HeaderName, HeaderValue};
use tower_activity::sink::MemorySink;
use tower_activity::{ActivityLayer, ActivityRecord};

use crate::exchange::{Exchange, run};
use crate::framed::Ending;

/// The usage line printed with an argument error.
pub const USAGE: &str = "usage: replay --path PATH [--request REQ.json] [--status N] [--content-type MIME] [--header \"Name: value\"]... [--chunk N] [--drop-after N] BODY_FILE";

/// The command line of `replay`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// `--path`: the request path (it picks the wire format).
    pub path: String,
    /// `--request`: a file holding the request body (`{}` without one).
    pub request: Option<String>,
    /// `--status`: the response status (200).
    pub status: u16,
    /// `--content-type`, or a `--header "Content-Type: …"`; else from the body file's
    /// extension.
    pub content_type: Option<String>,
    /// `--header`, repeatable: more response headers, in order (`Content-Encoding: gzip`).
    pub headers: Vec<(String, String)>,
    /// `--chunk`: the frame size (0: the whole body in one frame).
    pub chunk: usize,
    /// `--drop-after`: the client goes away after this many bytes.
    pub drop_after: Option<usize>,
    /// The response body file.
    pub body: String,
}

impl Args {
    /// Reads the arguments (without the program name); `Err` is a one-line cause.
    pub fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut path = None;
        let mut request = None;
        let mut status = 200;
        let mut content_type = None;
        let mut headers = Vec::new();
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
                        .ok_or_else(|| {
                            format!("--status takes an HTTP status (100-999), got {v:?}")
                        })?;
                }
                "--content-type" => content_type = Some(value("--content-type")?),
                "--header" => {
                    let (name, v) = header(&value("--header")?)?;
                    if name.eq_ignore_ascii_case("content-type") {
                        content_type = Some(v);
                    } else {
                        headers.push((name, v));
                    }
                }
                "--chunk" => chunk = number("--chunk", value("--chunk")?)?,
                "--drop-after" => {
                    drop_after = Some(number("--drop-after", value("--drop-after")?)?);
                }
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
            headers,
            chunk,
            drop_after,
            body: body.ok_or("BODY_FILE is required")?,
        })
    }
}

/// `"Name: value"` as a valid header name and value (surrounding blanks trimmed).
fn header(text: &str) -> Result<(String, String), String> {
    let bad = |why: &str| format!("--header takes \"Name: value\" ({why}), got {text:?}");
    let (name, value) = text.split_once(':').ok_or_else(|| bad("no colon"))?;
    let (name, value) = (name.trim(), value.trim());
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad("not a header name"))?;
    HeaderValue::from_str(value).map_err(|_| bad("not a header value"))?;
    Ok((name.to_owned(), value.to_owned()))
}

/// Why [`replay`] made no record.
#[derive(Debug)]
pub enum ReplayError {
    /// A file could not be read (exit code 2, like a bad argument).
    Input(String),
    /// The layer did not write exactly one record (exit code 1).
    Records(usize),
}

impl std::fmt::Display for ReplayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplayError::Input(e) => f.write_str(e),
            ReplayError::Records(n) => write!(f, "expected one record, the layer wrote {n}"),
        }
    }
}

fn read(file: &str, what: &str) -> Result<Vec<u8>, ReplayError> {
    std::fs::read(file).map_err(|e| ReplayError::Input(format!("cannot read {what} {file:?}: {e}")))
}

/// Feeds the exchange `args` describe through an `ActivityLayer` with the embedded price
/// table and returns its one record.
pub async fn replay(args: &Args) -> Result<ActivityRecord, ReplayError> {
    let body = read(&args.body, "BODY_FILE")?;
    let request = match &args.request {
        Some(file) => read(file, "--request")?,
        None => b"{}".to_vec(),
    };
    let content_type = args.content_type.clone().unwrap_or_else(|| {
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
    exchange.response_headers = args.headers.clone();
    run(&layer, exchange).await;
    layer.writer().flush().await;
    let mut records = sink.records();
    if records.len() != 1 {
        return Err(ReplayError::Records(records.len()));
    }
    Ok(records.remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, String> {
        Args::parse(list.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn headers_repeat_and_content_type_is_one_of_them() {
        let a = args(&[
            "--path",
            "/v1/messages",
            "--header",
            "Content-Encoding:  gzip ",
            "--header",
            "content-type: text/event-stream",
            "--header",
            "x-request-id: abc:def",
            "body.bin",
        ])
        .unwrap();
        assert_eq!(
            a.headers,
            vec![
                ("Content-Encoding".to_owned(), "gzip".to_owned()),
                ("x-request-id".to_owned(), "abc:def".to_owned()),
            ]
        );
        assert_eq!(a.content_type.as_deref(), Some("text/event-stream"));
    }

    #[test]
    fn bad_headers_are_named() {
        for (bad, why) in [
            ("Content-Encoding gzip", "no colon"),
            ("Bad Name: x", "not a header name"),
            ("x: a\u{7}b", "not a header value"),
        ] {
            let e = args(&["--path", "/p", "--header", bad, "b"]).unwrap_err();
            assert!(e.contains(why) && e.contains("--header"), "{e}");
        }
        let e = args(&["--path", "/p", "b", "--header"]).unwrap_err();
        assert_eq!(e, "--header needs a value");
    }
}
