//! The request side: what the layer reads of a request body, how it asks OpenAI chat streams
//! for usage, and [`ActivityRequestBody`], the body the inner service receives.

use std::borrow::Cow;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use serde::Deserialize;

use crate::bill::RequestTerms;
use crate::buf::poll_bytes;
pub(crate) use crate::prompt::prompt_chars;
use crate::protocol::json::{Reader, Seen};

pin_project! {
    /// The request body handed to the inner service.
    ///
    /// Requests the layer does not read pass through as [`ActivityRequestBody::passthrough`] (no copy,
    /// no allocation). LLM requests are read up to a cap first; the inner service then gets the
    /// same bytes (or, for OpenAI chat streams, the bytes with `stream_options.include_usage`
    /// added), followed by the rest of the original body when it was longer than the cap.
    pub struct ActivityRequestBody<B>
    where
        B: Body,
    {
        #[pin]
        inner: Inner<B>,
    }
}

pin_project! {
    #[project = InnerProj]
    enum Inner<B>
    where
        B: Body,
    {
        Passthrough { #[pin] body: B },
        Read {
            prefix: Option<Bytes>,
            rest: Option<Pin<Box<B>>>,
            trailers: Option<HeaderMap>,
        },
        Failed {
            prefix: Option<Bytes>,
            error: Option<<B as Body>::Error>,
        },
    }
}

impl<B: Body> ActivityRequestBody<B> {
    /// The original body, untouched.
    pub fn passthrough(body: B) -> Self {
        ActivityRequestBody {
            inner: Inner::Passthrough { body },
        }
    }

    /// Bytes already read, then (when the original body was longer than the cap) the rest.
    pub(crate) fn read(
        prefix: Bytes,
        rest: Option<Pin<Box<B>>>,
        trailers: Option<HeaderMap>,
    ) -> Self {
        ActivityRequestBody {
            inner: Inner::Read {
                prefix: (!prefix.is_empty()).then_some(prefix),
                rest,
                trailers,
            },
        }
    }

    /// The bytes read before the original body failed, then its error.
    pub(crate) fn failed(prefix: Bytes, error: B::Error) -> Self {
        ActivityRequestBody {
            inner: Inner::Failed {
                prefix: (!prefix.is_empty()).then_some(prefix),
                error: Some(error),
            },
        }
    }
}

impl<B> Body for ActivityRequestBody<B>
where
    B: Body,
    B::Data: Buf,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().inner.project() {
            InnerProj::Passthrough { body } => poll_bytes(body, cx),
            InnerProj::Read {
                prefix,
                rest,
                trailers,
            } => {
                if let Some(p) = prefix.take() {
                    return Poll::Ready(Some(Ok(Frame::data(p))));
                }
                if let Some(body) = rest {
                    return poll_bytes(body.as_mut(), cx);
                }
                Poll::Ready(trailers.take().map(|t| Ok(Frame::trailers(t))))
            }
            InnerProj::Failed { prefix, error } => {
                if let Some(p) = prefix.take() {
                    return Poll::Ready(Some(Ok(Frame::data(p))));
                }
                Poll::Ready(error.take().map(Err))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Passthrough { body } => body.is_end_stream(),
            Inner::Read {
                prefix,
                rest,
                trailers,
            } => {
                prefix.is_none()
                    && trailers.is_none()
                    && rest.as_ref().is_none_or(|b| b.is_end_stream())
            }
            Inner::Failed { prefix, error } => prefix.is_none() && error.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Passthrough { body } => body.size_hint(),
            Inner::Read { prefix, rest, .. } => {
                let p = prefix.as_ref().map_or(0, |p| p.len() as u64);
                match rest {
                    None => SizeHint::with_exact(p),
                    Some(b) => {
                        let h = b.size_hint();
                        let mut out = SizeHint::new();
                        out.set_lower(h.lower() + p);
                        if let Some(u) = h.upper() {
                            out.set_upper(u + p);
                        }
                        out
                    }
                }
            }
            Inner::Failed { .. } => SizeHint::default(),
        }
    }
}

impl<B: Body> std::fmt::Debug for ActivityRequestBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.inner {
            Inner::Passthrough { .. } => "passthrough",
            Inner::Read { .. } => "read",
            Inner::Failed { .. } => "failed",
        };
        f.debug_struct("ActivityRequestBody")
            .field("kind", &kind)
            .finish()
    }
}

/// A request's `model`: a slice of the body's own bytes when it is written plainly (no copy:
/// most records take the response's model, and this one is then never needed), else the
/// decoded string.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum ModelName {
    /// UTF-8 bytes of the body (checked when read).
    Body(Bytes),
    /// Decoded from escapes.
    Decoded(String),
}

impl ModelName {
    /// The name.
    pub(crate) fn as_str(&self) -> &str {
        match self {
            // Only made from a `&str` of the body, so always UTF-8.
            ModelName::Body(b) => std::str::from_utf8(b).unwrap_or_default(),
            ModelName::Decoded(s) => s,
        }
    }

    /// The name as an owned string (the record's `model`).
    pub(crate) fn into_string(self) -> String {
        match self {
            ModelName::Body(_) => self.as_str().to_owned(),
            ModelName::Decoded(s) => s,
        }
    }
}

impl std::ops::Deref for ModelName {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for ModelName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

/// What the layer learned from a request body.
#[derive(Debug, Default, Clone)]
pub(crate) struct RequestFacts {
    /// The request's `model`.
    pub(crate) model: Option<ModelName>,
    /// The request asked for a stream.
    pub(crate) stream: bool,
    /// The client asked for `stream_options.include_usage` itself.
    pub(crate) include_usage: bool,
    /// The output limit the request states (`max_tokens`, `max_completion_tokens`,
    /// `max_output_tokens`, Gemini's `generationConfig.maxOutputTokens`; the largest when
    /// several are given): the budget's upper estimate of the output.
    pub(crate) max_output: Option<u64>,
    /// What the request asked for that changes its price (read in the same pass).
    pub(crate) terms: RequestTerms,
    /// The body as read, kept (refcounted, not copied) to estimate input tokens if the provider
    /// reports none.
    pub(crate) body: Option<Bytes>,
    /// When the plain reader read the body and it has no `stream_options` member: whether its
    /// object has any member (what the splice needs to add one, see
    /// [`with_include_usage_known`](crate::splice::with_include_usage_known)). A `bool`, so
    /// that the facts, which are moved about, keep their size.
    pub(crate) without_options: Option<bool>,
}

/// Facts an outer layer (the budget) already probed from the body it hands on, carried in
/// the request extensions so that the activity layer does not probe the same bytes again.
#[derive(Debug, Clone)]
pub(crate) struct Probed(pub(crate) RequestFacts);

impl Probed {
    /// Takes the facts out of `parts`; `Some` only when they were probed from `body` itself
    /// (the same bytes, not a copy: a layer in between may have changed the body).
    pub(crate) fn take(parts: &mut http::request::Parts, body: &Bytes) -> Option<RequestFacts> {
        let facts = parts.extensions.remove::<Probed>()?.0;
        let same = facts
            .body
            .as_ref()
            .is_some_and(|b| b.as_ptr() == body.as_ptr() && b.len() == body.len());
        same.then_some(facts)
    }
}

#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    max_tokens: Option<Lenient<u64>>,
    #[serde(default)]
    max_completion_tokens: Option<Lenient<u64>>,
    #[serde(default)]
    max_output_tokens: Option<Lenient<u64>>,
    #[serde(default, rename = "generationConfig")]
    generation_config: Option<Lenient<GenerationConfig>>,
}

#[derive(Deserialize)]
struct GenerationConfig {
    #[serde(default, rename = "maxOutputTokens")]
    max_output_tokens: Option<Lenient<u64>>,
}

/// A member read when it has the expected shape and ignored otherwise, so that a strange
/// limit (`-1`, `"10"`) never costs the rest of the probe (the model, the stream flags).
#[derive(Deserialize)]
#[serde(untagged)]
enum Lenient<T> {
    Value(T),
    Other(serde::de::IgnoredAny),
}

impl<T> Lenient<T> {
    fn ok(self) -> Option<T> {
        match self {
            Lenient::Value(v) => Some(v),
            Lenient::Other(_) => None,
        }
    }
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

impl RequestFacts {
    /// Reads model, stream flags, output limit and pricing terms from a JSON request body;
    /// anything unreadable is `None` (or the default terms).
    pub(crate) fn probe(body: Bytes) -> Self {
        let mut facts = plain_probe(&body).unwrap_or_else(|| serde_probe(&body));
        facts.body = Some(body);
        facts
    }
}

/// The probe with serde: what [`plain_probe`] gives up on.
fn serde_probe(body: &[u8]) -> RequestFacts {
    let terms = RequestTerms::read(Some(body));
    match serde_json::from_slice::<Probe<'_>>(body) {
        Ok(p) => RequestFacts {
            model: p.model.map(|m| ModelName::Decoded(m.into_owned())),
            stream: p.stream.unwrap_or(false),
            include_usage: p
                .stream_options
                .and_then(|o| o.include_usage)
                .unwrap_or(false),
            max_output: [
                p.max_tokens.and_then(Lenient::ok),
                p.max_completion_tokens.and_then(Lenient::ok),
                p.max_output_tokens.and_then(Lenient::ok),
                p.generation_config
                    .and_then(Lenient::ok)
                    .and_then(|g| g.max_output_tokens)
                    .and_then(Lenient::ok),
            ]
            .into_iter()
            .flatten()
            .max(),
            terms,
            body: None,
            without_options: None,
        },
        Err(_) => RequestFacts {
            terms,
            ..RequestFacts::default()
        },
    }
}

/// The probe with the plain [`Reader`], in one pass, when every member it reads is written
/// plainly and has the shape serde expects; `None` otherwise (then [`serde_probe`] decides,
/// as before, so the two never disagree on a body the reader accepts).
fn plain_probe(body: &Bytes) -> Option<RequestFacts> {
    let mut facts = RequestFacts::default();
    let mut max_output: Option<u64> = None;
    let mut limit = |n: Option<u64>| max_output = max_output.max(n);
    let (mut tier, mut option_size, mut tool_size) = (None, None, None);
    let mut seen = Seen::default();
    let (mut members, mut options) = (false, false);
    let mut r = Reader::new(body);
    r.object(|r, key| {
        members = true;
        match key {
            b"model" => {
                seen.first(0)?;
                facts.model = r
                    .opt_str()?
                    .map(|m| ModelName::Body(body.slice_ref(m.as_bytes())));
            }
            b"stream" => {
                seen.first(1)?;
                facts.stream = r.opt_bool()?.unwrap_or(false);
            }
            b"stream_options" => {
                seen.first(2)?;
                options = true;
                if !r.null() {
                    let mut seen = Seen::default();
                    r.object(|r, key| match key {
                        b"include_usage" => {
                            seen.first(0)?;
                            facts.include_usage = r.opt_bool()?.unwrap_or(false);
                            Some(())
                        }
                        _ => r.skip(),
                    })?;
                }
            }
            b"max_tokens" => {
                seen.first(3)?;
                limit(r.opt_u64()?);
            }
            b"max_completion_tokens" => {
                seen.first(4)?;
                limit(r.opt_u64()?);
            }
            b"max_output_tokens" => {
                seen.first(5)?;
                limit(r.opt_u64()?);
            }
            b"generationConfig" => {
                seen.first(6)?;
                if !r.null() {
                    let mut seen = Seen::default();
                    r.object(|r, key| match key {
                        b"maxOutputTokens" => {
                            seen.first(0)?;
                            limit(r.opt_u64()?);
                            Some(())
                        }
                        _ => r.skip(),
                    })?;
                }
            }
            b"service_tier" => {
                seen.first(7)?;
                tier = r.opt_str()?;
            }
            b"web_search_options" => {
                seen.first(8)?;
                if !r.null() {
                    let mut seen = Seen::default();
                    r.object(|r, key| match key {
                        b"search_context_size" => {
                            seen.first(0)?;
                            option_size = r.opt_str()?;
                            Some(())
                        }
                        _ => r.skip(),
                    })?;
                }
            }
            b"tools" => {
                seen.first(9)?;
                if !r.null() {
                    r.array(|r| {
                        let (mut kind, mut size) = (None, None);
                        let mut seen = Seen::default();
                        r.object(|r, key| match key {
                            b"type" => {
                                seen.first(0)?;
                                kind = r.opt_str()?;
                                Some(())
                            }
                            b"search_context_size" => {
                                seen.first(1)?;
                                size = r.opt_str()?;
                                Some(())
                            }
                            _ => r.skip(),
                        })?;
                        if kind.is_some_and(|k| k.starts_with("web_search")) {
                            tool_size = tool_size.or(size);
                        }
                        Some(())
                    })?;
                }
            }
            _ => r.skip()?,
        }
        Some(())
    })?;
    r.end()?;
    facts.max_output = max_output;
    facts.terms = RequestTerms::new(tier, option_size.or(tool_size));
    facts.without_options = (!options).then_some(members);
    Some(facts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn probe_reads_model_and_stream_flags() {
        let f = RequestFacts::probe(Bytes::from_static(
            br#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[]}"#,
        ));
        assert_eq!(f.model.as_deref(), Some("gpt-4o"));
        assert!(f.stream && f.include_usage);
        assert_eq!(f.max_output, None);
        for (body, max) in [
            (&br#"{"max_tokens":7}"#[..], 7),
            (br#"{"max_tokens":7,"max_completion_tokens":9}"#, 9),
            (br#"{"max_output_tokens":5}"#, 5),
            (
                br#"{"generationConfig":{"maxOutputTokens":11,"temperature":0.5}}"#,
                11,
            ),
        ] {
            let f = RequestFacts::probe(Bytes::from_static(body));
            assert_eq!(f.max_output, Some(max), "{}", String::from_utf8_lossy(body));
        }
        // A limit of the wrong shape is ignored; the rest of the probe still counts.
        let f = RequestFacts::probe(Bytes::from_static(
            br#"{"model":"m","max_tokens":-1,"generationConfig":"x","stream":true}"#,
        ));
        assert_eq!(
            (f.model.as_deref(), f.max_output, f.stream),
            (Some("m"), None, true)
        );
        let f = RequestFacts::probe(Bytes::from_static(b"not json"));
        assert_eq!(f.model, None);
        assert!(!f.stream);
    }

    /// A member of a request body, as clients (and odd ones) write it.
    fn member() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let value = prop::sample::select(vec![
            "7",
            "0",
            "null",
            "-1",
            "2.5",
            "\"10\"",
            "true",
            "false",
            r#""m""#,
            r#""w\"x""#,
            r#""high""#,
            r#""web_search""#,
            "{}",
            "[]",
        ]);
        let key = prop::sample::select(vec![
            "model",
            "stream",
            "max_tokens",
            "max_completion_tokens",
            "max_output_tokens",
            "service_tier",
            "messages",
            "mod\\u0065l",
        ]);
        let inner = prop::collection::vec(
            (
                prop::sample::select(vec![
                    "include_usage",
                    "maxOutputTokens",
                    "search_context_size",
                    "type",
                    "other",
                ]),
                value.clone(),
            ),
            0..3,
        )
        .prop_map(|m| {
            let m: Vec<String> = m.iter().map(|(k, v)| format!(r#""{k}":{v}"#)).collect();
            format!("{{{}}}", m.join(","))
        });
        prop_oneof![
            (key, value).prop_map(|(k, v)| format!(r#""{k}":{v}"#)),
            (
                prop::sample::select(vec![
                    "stream_options",
                    "generationConfig",
                    "web_search_options"
                ]),
                inner.clone()
            )
                .prop_map(|(k, v)| format!(r#""{k}" : {v}"#)),
            prop::collection::vec(prop_oneof![inner, Just("5".to_owned())], 0..3)
                .prop_map(|t| format!(r#""tools":[{}]"#, t.join(","))),
            Just(r#""tools":null"#.to_owned()),
        ]
    }

    proptest::proptest! {
        /// For every body the one-pass reader accepts, the facts are those serde's probe and
        /// the terms' own decoding give.
        #[test]
        fn the_plain_probe_reads_what_serde_reads(
            members in proptest::collection::vec(member(), 0..8),
        ) {
            let body = format!("{{{}}}", members.join(","));
            let show = |f: RequestFacts| {
                format!("{:?}", (f.model, f.stream, f.include_usage, f.max_output, f.terms))
            };
            if let Some(plain) = plain_probe(&Bytes::from(body.clone())) {
                proptest::prop_assert_eq!(show(plain), show(serde_probe(body.as_bytes())), "{}", body);
            }
        }
    }

    proptest::proptest! {
        /// The splice made from what the probe read is the splice made by reading the body.
        #[test]
        fn the_splice_from_the_probe_is_the_splice(
            members in proptest::collection::vec(member(), 0..8),
            space in proptest::sample::select(vec!["", " ", "\n"]),
        ) {
            use crate::splice::{with_include_usage, with_include_usage_known};
            let body = format!("{space}{{{}}}{space}", members.join(","));
            let facts = RequestFacts::probe(Bytes::from(body.clone()));
            proptest::prop_assert_eq!(
                with_include_usage_known(body.as_bytes(), facts.without_options),
                with_include_usage(body.as_bytes()),
                "{}",
                body
            );
        }
    }

    #[test]
    fn the_probe_says_whether_a_body_without_stream_options_has_members() {
        let count = |body: &'static str| {
            RequestFacts::probe(Bytes::from_static(body.as_bytes())).without_options
        };
        assert_eq!(
            count(r#"{"model":"m","stream":true,"messages":[]}"#),
            Some(true)
        );
        assert_eq!(count("{}"), Some(false));
        assert_eq!(count(r#"{"stream_options":null,"stream":true}"#), None);
        // Read by serde (a key spelled with an escape): nothing known.
        assert_eq!(count(r#"{"mod\u0065l":"m"}"#), None);
    }

    #[test]
    fn the_plain_probe_takes_common_requests() {
        for body in [
            &br#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi \"x\""}]}"#[..],
            br#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"service_tier":"flex","tools":[{"type":"web_search","search_context_size":"low"}],"max_tokens":9}"#,
        ] {
            assert!(
                plain_probe(&Bytes::from_static(body)).is_some(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let f = RequestFacts::probe(Bytes::from_static(
            br#"{"service_tier":"priority","tools":[{"type":"web_search_preview","search_context_size":"high"}]}"#,
        ));
        assert_eq!(f.terms.service_tier.as_deref(), Some("priority"));
        assert_eq!(
            f.terms.search_context,
            crate::pricing::SearchContextSize::High
        );
    }

    #[tokio::test]
    async fn read_body_yields_prefix_then_rest_then_trailers() {
        let rest = http_body_util::Full::new(Bytes::from_static(b" world"));
        let body =
            ActivityRequestBody::read(Bytes::from_static(b"hello"), Some(Box::pin(rest)), None);
        assert_eq!(body.size_hint().exact(), Some(11));
        let got = body.collect().await.unwrap().to_bytes();
        assert_eq!(&got[..], b"hello world");
    }
}
