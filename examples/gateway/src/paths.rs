//! [`refuse_unnormalised`]: a request path must be in normal form before it is routed.
//!
//! The gateway forwards LLM paths upstream with its own key (Gemini's
//! `/v1beta/models/{*rest}` takes any tail), so a path that an upstream would normalise into a
//! different one — `/v1beta/models/../../v1/files:generateContent` — must never leave. Rather
//! than rewrite such paths (and have two parties disagree about what they mean), the gateway
//! refuses them with `400 invalid_path` before routing; nothing is sent upstream and nothing
//! is recorded.
//!
//! Refused: an empty segment (`//`), a segment that is `.` or `..` once percent-decoded
//! (`%2e%2E`, `.%2e` …), an encoded `/`, `\` or `%` (`%2f`, `%5c`, `%25`: one decoding later
//! they become separators or new escapes), a raw `\`, an escape of a control byte, and a
//! malformed escape (`%zz`).

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Why `path` is not in normal form, or `Ok` when it is.
pub fn check(path: &str) -> Result<(), &'static str> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err("it does not start with `/`");
    };
    if rest.is_empty() {
        return Ok(());
    }
    let segments: Vec<&str> = rest.split('/').collect();
    let last = segments.len() - 1;
    for (i, segment) in segments.iter().enumerate() {
        // A trailing slash is an empty last segment: allowed (such a route does not exist,
        // and the 404 says so); an empty one inside is `//`.
        if segment.is_empty() && i != last {
            return Err("it has an empty segment (`//`)");
        }
        if segment.contains('\\') {
            return Err("it has a `\\`");
        }
        let decoded = decode(segment)?;
        if decoded == b"." || decoded == b".." {
            return Err("it has a `.` or `..` segment (perhaps percent-encoded)");
        }
    }
    Ok(())
}

/// A segment percent-decoded; `Err` for the escapes [`check`] refuses.
fn decode(segment: &str) -> Result<Vec<u8>, &'static str> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
        let (Some(hi), Some(lo)) = (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) else {
            return Err("it has a malformed percent escape");
        };
        let byte = (hi * 16 + lo) as u8;
        match byte {
            b'/' | b'\\' => return Err("it has an encoded `/` or `\\`"),
            b'%' => return Err("it has an encoded `%` (double encoding)"),
            0..=0x1f | 0x7f => return Err("it has an encoded control character"),
            _ => out.push(byte),
        }
        i += 3;
    }
    Ok(out)
}

/// Middleware around every route: `400 invalid_path` for a path [`check`] refuses.
pub async fn refuse_unnormalised(request: Request, next: Next) -> Response {
    if let Err(why) = check(request.uri().path()) {
        let shown: String = request.uri().path().chars().take(200).collect();
        return ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_path",
            format!("the path {shown:?} is not in normal form: {why}; send the canonical path"),
        )
        .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn normal_paths_pass() {
        for path in [
            "/",
            "/v1/chat/completions",
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
            "/v1beta/models/gemini-2%2e5-flash:generateContent",
            "/user/activity/log",
            "/v1/chat/completions/",
            "/a.b/..c/...",
        ] {
            assert_eq!(check(path), Ok(()), "{path}");
        }
    }

    #[test]
    fn traversal_and_ambiguous_escapes_are_refused() {
        for path in [
            "/v1/../v1/chat/completions",
            "/v1/./chat/completions",
            "/v1beta/models/%2e%2e/%2E%2E/v1/files:generateContent",
            "/v1beta/models/.%2e/x:generateContent",
            "/v1beta/models/%2e/x:generateContent",
            "/v1beta/models/..",
            "/v1beta/models/a%2fb:generateContent",
            "/v1beta/models/a%2Fb:generateContent",
            "/v1beta/models/a%5cb:generateContent",
            "/v1beta/models/a\\b:generateContent",
            "/v1beta/models/%252e%252e/x:generateContent",
            "/v1//chat/completions",
            "//v1/chat/completions",
            "/v1/chat/completions%00",
            "/v1/chat/completions%zz",
            "/v1/chat/completions%2",
            "v1/chat/completions",
        ] {
            assert!(check(path).is_err(), "{path} passed");
        }
    }
}
