//! [`check`] and its [`refusal`]: a request path must be in normal form before it is routed.
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
    let mut segments = rest.split('/').peekable();
    while let Some(segment) = segments.next() {
        // A trailing slash is an empty last segment: allowed (such a route does not exist,
        // and the 404 says so); an empty one inside is `//`.
        if segment.is_empty() && segments.peek().is_some() {
            return Err("it has an empty segment (`//`)");
        }
        if segment.contains('\\') {
            return Err("it has a `\\`");
        }
        // Only a segment with an escape is decoded (into a copy): the rest are read as they are.
        let dots = if segment.contains('%') {
            matches!(&decode(segment)?[..], b"." | b"..")
        } else {
            matches!(segment, "." | "..")
        };
        if dots {
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

/// The `400 invalid_path` answer to a path [`check`] refuses (`None`: the path is in normal
/// form). Every request passes it before routing ([`EveryRequest`](crate::front::EveryRequest)).
pub fn refusal(path: &str) -> Option<Response> {
    let why = check(path).err()?;
    let shown: String = path.chars().take(200).collect();
    Some(
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_path",
            format!("the path {shown:?} is not in normal form: {why}; send the canonical path"),
        )
        .into_response(),
    )
}

#[cfg(test)]
mod tests {
    use super::{check, decode};

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

    /// [`check`] reads a segment without an escape as it is; decoding every segment (what it
    /// did first) must refuse exactly the same paths. Every path of up to three segments made
    /// of these pieces (dots, escapes of dots, slashes and percent signs, malformed escapes,
    /// backslashes, empty) is compared, with and without a trailing slash.
    #[test]
    fn reading_plain_segments_as_they_are_refuses_the_same_paths() {
        fn decoding_every_segment(path: &str) -> bool {
            let Some(rest) = path.strip_prefix('/') else {
                return false;
            };
            let segments: Vec<&str> = rest.split('/').collect();
            rest.is_empty()
                || segments.iter().enumerate().all(|(i, s)| {
                    (!s.is_empty() || i == segments.len() - 1)
                        && !s.contains('\\')
                        && decode(s).is_ok_and(|d| d != b"." && d != b"..")
                })
        }
        let pieces = [
            "", ".", "..", "...", "a", "a.b", "%2e", "%2E%2e", ".%2e", "%2f", "%25", "%5c", "%zz",
            "%2", "%41", "a\\b", "%00",
        ];
        let mut paths = 0;
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    for tail in ["", "/"] {
                        for path in [
                            format!("/{a}{tail}"),
                            format!("/{a}/{b}{tail}"),
                            format!("/{a}/{b}/{c}{tail}"),
                        ] {
                            assert_eq!(
                                check(&path).is_ok(),
                                decoding_every_segment(&path),
                                "{path}"
                            );
                            paths += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(paths, 17 * 17 * 17 * 2 * 3);
    }
}
