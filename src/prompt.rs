//! [`prompt_chars`]: the characters of prompt text in a request body, counted in one pass
//! over the JSON without building it (no `serde_json::Value`, no allocation).

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Keys whose values carry no prompt text: roles, types, ids, model and tuning parameters,
/// and inline binary data such as base64 images.
const SKIP: &[&str] = &[
    "model",
    "role",
    "type",
    "id",
    "tool_call_id",
    "stream",
    "stream_options",
    "user",
    "metadata",
    "image_url",
    "input_image",
    "inline_data",
    "inlineData",
    "file_data",
    "fileData",
    "source",
    "data",
    "mime_type",
    "mimeType",
    "cache_control",
    "response_format",
    "reasoning_effort",
    "service_tier",
    "generationConfig",
    "safetySettings",
];

/// Characters of prompt text in a request body, for input-token estimates: every string value
/// in the JSON except those under keys that carry no prompt text (roles, types, ids, model
/// and tuning parameters, and inline binary data such as base64 images). A body that is not
/// one JSON value counts 0. A key given twice counts twice (an upper estimate).
pub(crate) fn prompt_chars(body: &[u8]) -> u64 {
    let mut total = 0;
    let mut de = serde_json::Deserializer::from_slice(body);
    match Count(&mut total)
        .deserialize(&mut de)
        .and_then(|()| de.end())
    {
        Ok(()) => total,
        Err(_) => 0,
    }
}

/// Adds the characters of every counted string in one JSON value to its total.
struct Count<'a>(&'a mut u64);

impl<'de> DeserializeSeed<'de> for Count<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Count<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        *self.0 += s.chars().count() as u64;
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Count(&mut *self.0))?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(skip) = map.next_key_seed(Key)? {
            if skip {
                map.next_value::<IgnoredAny>()?;
            } else {
                map.next_value_seed(Count(&mut *self.0))?;
            }
        }
        Ok(())
    }
}

/// Reads an object's key (borrowed, not copied): whether its value is skipped.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<bool, E> {
        Ok(SKIP.contains(&key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// What the count was before it streamed: the same rule over a parsed `Value`.
    fn reference(body: &[u8]) -> u64 {
        fn walk(v: &Value, total: &mut u64) {
            match v {
                Value::String(s) => *total += s.chars().count() as u64,
                Value::Array(items) => items.iter().for_each(|i| walk(i, total)),
                Value::Object(map) => {
                    for (k, v) in map {
                        if !SKIP.contains(&k.as_str()) {
                            walk(v, total);
                        }
                    }
                }
                _ => {}
            }
        }
        let Ok(value) = serde_json::from_slice::<Value>(body) else {
            return 0;
        };
        let mut total = 0;
        walk(&value, &mut total);
        total
    }

    #[test]
    fn counts_text_not_structure() {
        let body = br#"{"model":"gpt-4o","messages":[{"role":"system","content":"abcd"},{"role":"user","content":[{"type":"text","text":"h\u00e9"},{"type":"image_url","image_url":{"url":"data:xxxxxxxx"}}]}]}"#;
        assert_eq!(prompt_chars(body), 6);
        assert_eq!(prompt_chars(b"garbage"), 0);
        // Not one JSON value: nothing, as a parse would say.
        assert_eq!(prompt_chars(br#"{"text":"abc"} x"#), 0);
        assert_eq!(prompt_chars(br#"{"text":"abc""#), 0);
        assert_eq!(prompt_chars(b""), 0);
    }

    #[test]
    fn agrees_with_a_parsed_walk() {
        let bodies: &[&[u8]] = &[
            br#"{"model":"gpt-4o","max_tokens":100,"messages":[{"role":"user","content":"12345678"}]}"#,
            br#"{"contents":[{"role":"user","parts":[{"text":"Sag \"hallo\"\n"},{"inlineData":{"mimeType":"image/png","data":"AAAA"}}]}],"generationConfig":{"maxOutputTokens":5}}"#,
            br#"{"input":[{"type":"message","content":[{"type":"input_text","text":"\ud83d\ude00 emoji"}]}],"metadata":{"k":"v"},"tools":[{"name":"f","parameters":{"x":[1,2.5,-3,true,null,"s"]}}]}"#,
            br#"["a", ["bc", {"id": "skip", "t": "def"}], 1e3, false]"#,
            br#""just a string""#,
            br#"{"system":[{"type":"text","text":"\u03a9","cache_control":{"type":"ephemeral"}}],"messages":[]}"#,
        ];
        for body in bodies {
            assert_eq!(
                prompt_chars(body),
                reference(body),
                "{}",
                String::from_utf8_lossy(body)
            );
            assert!(prompt_chars(body) > 0, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(prompt_chars(deep.as_bytes()), 0);
    }
}
