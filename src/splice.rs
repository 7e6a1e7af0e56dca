//! Turning `stream_options.include_usage` on in an OpenAI chat request by editing bytes in
//! place.
//!
//! The request reaches the provider exactly as the client wrote it except for one contiguous
//! edit: the member is added after an object's opening brace, or an existing value is
//! replaced. Nothing is re-serialised, so big integers (`12345678901234567890123`), number
//! spellings (`1e0`), key order, whitespace and escapes stay as they were. serde_json finds
//! the members (as [`RawValue`]s borrowed from the body, whose positions are the offsets to
//! edit), so the body is validated by the same parser the rest of the layer uses.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::protocol::json::{self, Reader};

/// One contiguous replacement: `remove` bytes at `at` become `insert` (and a `,` after it
/// when `comma`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Edit {
    pub(crate) at: usize,
    pub(crate) remove: usize,
    pub(crate) insert: &'static str,
    pub(crate) comma: bool,
}

impl Edit {
    /// `body` with the edit applied.
    pub(crate) fn apply(&self, body: &[u8]) -> Bytes {
        let mut out = Vec::with_capacity(body.len() + self.insert.len() + 1);
        out.extend_from_slice(&body[..self.at]);
        out.extend_from_slice(self.insert.as_bytes());
        if self.comma {
            out.push(b',');
        }
        out.extend_from_slice(&body[self.at + self.remove..]);
        out.into()
    }
}

/// Rewrites an OpenAI chat request body to ask for `stream_options.include_usage`; `None`
/// when the body is not a JSON object. See [`include_usage_edit`].
pub(crate) fn with_include_usage(body: &[u8]) -> Option<Bytes> {
    include_usage_edit(body).map(|edit| edit.apply(body))
}

/// [`with_include_usage`] for a body the request's probe read with the plain [`Reader`]:
/// `members` says, when none of its object's members is `stream_options`, whether it has any
/// ([`RequestFacts::without_options`](crate::request::RequestFacts)). For printable ASCII
/// without a backslash the edit is then the one [`edit_without_options`] finds, without reading
/// the body again: the probe's reader took the whole text as that object (its members' values
/// each read as JSON, at most as deep as the reader goes, which serde's parse also takes), and
/// no key spells `stream_options` (keys are compared as written). Any other body goes the
/// general way.
pub(crate) fn with_include_usage_known(body: &[u8], members: Option<bool>) -> Option<Bytes> {
    match members {
        Some(members) if json::plain_ascii(body) => {
            member_first(body, members).map(|edit| edit.apply(body))
        }
        _ => with_include_usage(body),
    }
}

/// The edit that sets `stream_options.include_usage` to `true`:
///
/// - no `stream_options`: `"stream_options":{"include_usage":true}` after the body's `{`;
/// - `stream_options` is not an object (`null`): its value becomes `{"include_usage":true}`;
/// - an object without `include_usage`: `"include_usage":true` after its `{`;
/// - `include_usage` is there (`false`, `null`): its value becomes `true`.
///
/// Where a key appears twice, the last one is edited (the one JSON parsers keep).
pub(crate) fn include_usage_edit(body: &[u8]) -> Option<Edit> {
    edit_without_options(body).or_else(|| parsed_edit(body))
}

/// The member added after the body's `{`.
const MEMBER: &str = r#""stream_options":{"include_usage":true}"#;

/// [`include_usage_edit`] for the body of a client that did not ask for usage (nearly every
/// one the layer edits): an object without `stream_options`, read by the layer's JSON
/// [`Reader`] (which finds the members without building them: a fifth of serde's
/// instructions on a chat request), or `None` to leave the body to [`parsed_edit`].
///
/// Only for bodies of printable ASCII without a backslash, where the reader and serde agree:
/// keys are read as written (no escape can spell `stream_options` another way), no string
/// holds a control character or UTF-8 serde would refuse, and the reader follows JSON's
/// grammar otherwise. A body it gives up on (a `stream_options`, nesting past 100, malformed
/// bytes, an array) is serde's to decide, so the edit is the one serde's members give.
fn edit_without_options(body: &[u8]) -> Option<Edit> {
    if !json::plain_ascii(body) {
        return None;
    }
    let mut reader = Reader::new(body);
    let mut members = 0usize;
    reader.object(|r, key| {
        if key == b"stream_options" {
            return None;
        }
        members += 1;
        r.skip()
    })?;
    reader.end()?;
    member_first(body, members > 0)
}

/// `"stream_options":{"include_usage":true}` as the first member of the object `body` (a comma
/// after it when the object has `members`). Only for a body the reader took whole as one
/// object: only spaces stand before its brace.
fn member_first(body: &[u8], members: bool) -> Option<Edit> {
    let open = body.iter().position(|&b| b == b'{')?;
    Some(Edit {
        at: open + 1,
        remove: 0,
        insert: MEMBER,
        comma: members,
    })
}

/// [`include_usage_edit`] by serde's members: every body.
fn parsed_edit(body: &[u8]) -> Option<Edit> {
    let top: Members<'_> = serde_json::from_slice(body).ok()?;
    let open = body.iter().position(|b| !b.is_ascii_whitespace())?;
    let Some(options) = top.last("stream_options") else {
        return Some(Edit {
            at: open + 1,
            remove: 0,
            insert: MEMBER,
            comma: !top.0.is_empty(),
        });
    };
    let (start, len) = span(body, options)?;
    let Ok(members) = serde_json::from_str::<Members<'_>>(options.get()) else {
        return Some(Edit {
            at: start,
            remove: len,
            insert: r#"{"include_usage":true}"#,
            comma: false,
        });
    };
    match members.last("include_usage") {
        Some(value) => {
            let (at, remove) = span(body, value)?;
            Some(Edit {
                at,
                remove,
                insert: "true",
                comma: false,
            })
        }
        // A raw object value starts with its `{`.
        None => Some(Edit {
            at: start + 1,
            remove: 0,
            insert: r#""include_usage":true"#,
            comma: !members.0.is_empty(),
        }),
    }
}

/// Where `value` (borrowed from `body`) lies in it: offset and length.
fn span(body: &[u8], value: &RawValue) -> Option<(usize, usize)> {
    let text = value.get();
    let at = (text.as_ptr() as usize).checked_sub(body.as_ptr() as usize)?;
    (at + text.len() <= body.len()).then_some((at, text.len()))
}

/// An object's members in order, keys decoded, values raw (borrowed from the input).
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> Members<'a> {
    fn last(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<Cow<'de, str>, &'de RawValue>()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    fn splice(body: &str) -> String {
        String::from_utf8(with_include_usage(body.as_bytes()).unwrap().to_vec()).unwrap()
    }

    #[test]
    fn every_case_edits_in_place() {
        assert_eq!(
            splice(r#" {"model":"m", "stream":true}"#),
            r#" {"stream_options":{"include_usage":true},"model":"m", "stream":true}"#
        );
        assert_eq!(
            splice("{ }"),
            r#"{"stream_options":{"include_usage":true} }"#
        );
        assert_eq!(
            splice(
                r#"{"n":12345678901234567890123,"stream_options":{"x":1e0, "include_usage" : false}}"#
            ),
            r#"{"n":12345678901234567890123,"stream_options":{"x":1e0, "include_usage" : true}}"#
        );
        assert_eq!(
            splice(r#"{"stream_options":{ },"z":"\u00e9"}"#),
            r#"{"stream_options":{"include_usage":true },"z":"\u00e9"}"#
        );
        assert_eq!(
            splice(r#"{"stream_options":{"x":[1]}}"#),
            r#"{"stream_options":{"include_usage":true,"x":[1]}}"#
        );
        assert_eq!(
            splice(r#"{"stream_options": null}"#),
            r#"{"stream_options": {"include_usage":true}}"#
        );
        assert_eq!(
            splice(r#"{"stream_options":{"include_usage":null}}"#),
            r#"{"stream_options":{"include_usage":true}}"#
        );
        // An escaped key is the same key.
        assert_eq!(
            splice(r#"{"stream\u005foptions":{}}"#),
            r#"{"stream\u005foptions":{"include_usage":true}}"#
        );
    }

    #[test]
    fn non_objects_are_left_alone() {
        for body in ["[1]", "{broken", "", "   ", "\"s\"", "{} x"] {
            assert_eq!(with_include_usage(body.as_bytes()), None, "{body:?}");
        }
    }

    /// JSON text with random spacing, escapes and number spellings, and its parsed value.
    fn json_text() -> impl Strategy<Value = String> {
        let ws = prop::sample::select(vec!["", " ", "\n", "\t", "  ", "\r\n"]);
        let leaf = prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("false".to_owned()),
            prop::sample::select(vec![
                "12345678901234567890123",
                "-0",
                "1e0",
                "1.50",
                "2E-3",
                "-9223372036854775809"
            ])
            .prop_map(str::to_owned),
            any::<i64>().prop_map(|n| n.to_string()),
            prop::sample::select(vec![
                r#""""#,
                r#""a\u00e9\n\"q\"""#,
                r#""\/slash\\""#,
                r#""😀 é""#,
                r#""usage""#
            ])
            .prop_map(str::to_owned),
        ];
        leaf.prop_recursive(3, 24, 5, move |inner| {
            let key = prop::sample::select(vec![
                "model",
                "stream",
                "include_usage",
                "stream_options",
                "k\\u0020",
                "x",
                "messages",
            ]);
            prop_oneof![
                (prop::collection::vec((inner.clone(), ws.clone()), 0..4)).prop_map(|items| {
                    let items: Vec<String> = items
                        .into_iter()
                        .map(|(v, w)| format!("{w}{v}{w}"))
                        .collect();
                    format!("[{}]", items.join(","))
                }),
                (prop::collection::vec((key, inner, ws.clone()), 0..4)).prop_map(|members| {
                    let members: Vec<String> = members
                        .into_iter()
                        .map(|(k, v, w)| format!("{w}\"{k}\"{w}:{w}{v}{w}"))
                        .collect();
                    format!("{{{}}}", members.join(","))
                }),
            ]
        })
    }

    /// A request body: random members, and `stream_options` absent, `null`, or an object
    /// with or without `include_usage`.
    fn request() -> impl Strategy<Value = String> {
        let options = prop_oneof![
            Just(None),
            Just(Some("null".to_owned())),
            Just(Some("{}".to_owned())),
            json_text().prop_map(|v| Some(format!(r#"{{ "a":{v} , "include_usage" :false}}"#))),
            json_text().prop_map(|v| Some(format!(r#"{{"include_usage":null,"b":{v}}}"#))),
            json_text().prop_map(|v| Some(format!(r#"{{"c":{v}}}"#))),
        ];
        (
            prop::collection::vec((json_text(), 0usize..3), 0..5),
            options,
            0usize..6,
        )
            .prop_map(|(members, options, at)| {
                let mut members: Vec<String> = members
                    .into_iter()
                    .enumerate()
                    .map(|(i, (v, w))| format!("{}\"m{i}\":{}{v}", " ".repeat(w), "\n".repeat(w)))
                    .collect();
                if let Some(o) = options {
                    let at = at.min(members.len());
                    members.insert(at, format!("\"stream_options\" : {o}"));
                }
                format!(" {{{}}}\n", members.join(","))
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn one_edit_and_every_other_byte_kept(body in request()) {
            let edit = include_usage_edit(body.as_bytes()).expect("an object");
            let out = edit.apply(body.as_bytes());
            // One contiguous replacement: the bytes before and after it are the client's.
            prop_assert_eq!(&out[..edit.at], &body.as_bytes()[..edit.at]);
            let tail = &body.as_bytes()[edit.at + edit.remove..];
            prop_assert_eq!(&out[out.len() - tail.len()..], tail);
            // What it removes is the old value of the member it sets, nothing else.
            let mut expected: Value = serde_json::from_str(&body).unwrap();
            let old = expected.get("stream_options").cloned();
            if edit.remove > 0 {
                let removed: Value =
                    serde_json::from_slice(&body.as_bytes()[edit.at..edit.at + edit.remove]).unwrap();
                let was = match &old {
                    Some(Value::Object(o)) => o.get("include_usage").cloned(),
                    other => other.clone(),
                };
                prop_assert_eq!(Some(removed), was);
            }
            // And the result is the request with the flag on.
            match expected.get_mut("stream_options") {
                Some(Value::Object(o)) => {
                    o.insert("include_usage".into(), Value::Bool(true));
                }
                _ => {
                    expected["stream_options"] = serde_json::json!({"include_usage": true});
                }
            }
            let got: Value = serde_json::from_slice(&out).unwrap();
            prop_assert_eq!(got, expected);
        }

        /// The reader's edit, where it gives one, is the one serde's members give: on request
        /// bodies (spaced, escaped, nested `stream_options`, keys twice) and on them with a
        /// byte changed.
        #[test]
        fn the_read_edit_equals_the_parsed_one(
            body in prop_oneof![
                request(),
                request().prop_map(|b| b.replace('\n', "")),
                json_text(),
            ],
            change in any::<Option<(prop::sample::Index, u8)>>(),
        ) {
            let mut body = body.into_bytes();
            if let Some((at, b)) = change {
                let at = at.index(body.len());
                body[at] = b;
            }
            if let Some(read) = edit_without_options(&body) {
                prop_assert_eq!(Some(read), parsed_edit(&body), "{:?}", String::from_utf8_lossy(&body));
            }
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..64)) {
            if let Some(edit) = include_usage_edit(&body) {
                prop_assert!(edit.at + edit.remove <= body.len());
            }
        }
    }
}
