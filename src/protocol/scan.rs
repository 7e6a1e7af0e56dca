//! A quick look at one JSON event without decoding it: the members it has and, for string
//! values, how many characters they hold.
//!
//! Most events of a stream are text deltas that matter only for their length (the estimate
//! when the provider reports no usage) and for being the first output (time to first token).
//! Decoding each of them with serde would cost far more than the layer may add per event, so
//! the trackers first walk the event ([`Members`]): one forward pass that jumps from quote to
//! quote with a word-at-a-time byte search, reports every `"key": value` member at any depth,
//! and never allocates. Only the few events that carry something worth decoding (usage, a finish reason, an error, the model)
//! are then decoded with serde.
//!
//! The pass trusts nothing: on malformed input it reports what it can and stops, it never
//! panics and never reads out of bounds. serde_json offers no cheaper partial scan (its
//! `IgnoredAny` still validates every byte), hence this small lexer.

use super::swar::{HI, LO, byte_matches, u64_of};

/// The value of a visited member, as far as a quick look can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    /// A string (its raw bytes between the quotes, escapes as written).
    Str(Text<'a>),
    /// An object (`{`).
    Object,
    /// An array (`[`).
    Array,
    /// `null`.
    Null,
    /// A number or a boolean.
    Scalar,
}

/// The raw bytes of a JSON string, between its quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Text<'a> {
    raw: &'a [u8],
    /// Its [`printable_chars`](Text::printable_chars), when the reader that found its end
    /// counted them in the same pass ([`known_string_member`]).
    counted: Option<u64>,
}

impl<'a> Text<'a> {
    /// The string `raw`, its characters not yet counted.
    fn new(raw: &'a [u8]) -> Self {
        Text { raw, counted: None }
    }

    /// The string, when it has no escapes and is UTF-8 (a model name as providers write it).
    pub(crate) fn plain(self) -> Option<&'a str> {
        if self.raw.contains(&b'\\') {
            return None;
        }
        std::str::from_utf8(self.raw).ok()
    }

    /// [`chars`](Self::chars) of a string with neither escapes nor control characters, which
    /// serde reads as it is whatever else it holds (an ignored string's UTF-8 is not checked);
    /// `None` for any other.
    #[inline]
    pub(crate) fn printable_chars(self) -> Option<u64> {
        self.counted.or_else(|| plain_chars(self.raw))
    }

    /// The number of characters the string holds: escapes count as the character they stand
    /// for (`\n`, `\"`, `\u00e9`; a surrogate pair is two escapes and counts two, as UTF-16
    /// does), multi-byte UTF-8 as one.
    #[inline]
    pub(crate) fn chars(self) -> u64 {
        match self.counted {
            Some(chars) => chars,
            None => self.uncounted_chars(),
        }
    }

    /// [`chars`](Self::chars) of a string whose characters were not counted with its end.
    #[inline(never)]
    fn uncounted_chars(self) -> u64 {
        match plain_chars(self.raw) {
            Some(chars) => chars,
            None if self.raw.len() <= SHORT => short_chars(self.raw),
            None => long_chars(self.raw),
        }
    }
}

/// [`Text::chars`] of a string without escapes or control characters, eight bytes at a time:
/// its bytes less the bytes that continue a multi-byte character. `None` when it holds a
/// backslash or a byte below 0x20.
fn plain_chars(raw: &[u8]) -> Option<u64> {
    let mut words = raw.chunks_exact(8);
    let mut continuations = 0;
    for word in words.by_ref() {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        continuations += plain_word(u64::from_le_bytes(bytes))?;
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        // Assembled byte by byte: a copy of a variable length is a call to `memcpy`, which cost more than the
        // count itself on a stream's short deltas.
        // Spaces pad the tail: neither a backslash, a control character nor a continuation.
        let word = tail
            .iter()
            .rev()
            .fold(LO * 0x20, |word, &b| (word << 8) | u64::from(b));
        continuations += plain_word(word)?;
    }
    Some(raw.len() as u64 - u64::from(continuations))
}

/// The continuation bytes (`0b10xx_xxxx`) of eight bytes; `None` when one is a backslash or
/// below 0x20.
#[inline]
fn plain_word(word: u64) -> Option<u32> {
    // A byte below 0x20 borrows in the subtraction and has its top bit clear (exact: a
    // borrow only marks bytes above one that is below 0x20, and only the test for any is used).
    let control = word.wrapping_sub(LO * 0x20) & !word & HI;
    if byte_matches(word, b'\\') != 0 || control != 0 {
        return None;
    }
    // One bit per continuation byte, moved to the byte's lowest bit and summed into the top
    // byte by one multiplication (at most 8: no carry): `count_ones` without the `popcnt`
    // instruction (not in the baseline x86-64 target) is a dozen shifts and masks.
    let bits = (word & !(word << 1) & HI) >> 7;
    Some((bits.wrapping_mul(LO) >> 56) as u32)
}

/// Whether `json` holds `expected` at `at`: `json[at..].starts_with(expected)` compared eight
/// bytes at a time in line. The remembered bytes of a stream (a preamble, a postamble's pieces
/// between its numbers, a key) are compared with every event; a call to `memcmp` per piece
/// cost more than the comparison itself.
#[inline(always)]
pub(crate) fn same_at(json: &[u8], at: usize, expected: &[u8]) -> bool {
    match at
        .checked_add(expected.len())
        .and_then(|end| json.get(at..end))
    {
        Some(bytes) => same(bytes, expected),
        None => false,
    }
}

/// `a == b` for slices of the same length (see [`same_at`]).
#[inline(always)]
fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    debug_assert_eq!(n, b.len());
    if n < 4 {
        // Zero to three bytes: the first, middle and last cover them all.
        return n == 0 || (a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1]);
    }
    if n < 8 {
        // Two words of four that overlap when `n` < 8.
        return u32_at(a, 0) == u32_at(b, 0) && u32_at(a, n - 4) == u32_at(b, n - 4);
    }
    let mut at = 0;
    while at + 8 <= n {
        if u64_of(&a[at..]) != u64_of(&b[at..]) {
            return false;
        }
        at += 8;
    }
    // The last eight bytes, overlapping the whole words already compared.
    u64_of(&a[n - 8..]) == u64_of(&b[n - 8..])
}

#[inline]
fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

/// Strings up to this length are counted byte by byte: a stream's deltas are mostly a word or
/// two, shorter than a word-at-a-time search needs to pay off.
const SHORT: usize = 24;

/// [`Text::chars`] in one pass over the bytes.
fn short_chars(raw: &[u8]) -> u64 {
    let mut chars = 0;
    let mut i = 0;
    while let Some(&c) = raw.get(i) {
        if c == b'\\' {
            chars += 1;
            i += if raw.get(i + 1) == Some(&b'u') { 6 } else { 2 };
        } else {
            chars += u64::from((c as i8) >= -0x40);
            i += 1;
        }
    }
    chars
}

/// [`Text::chars`] with a word-at-a-time search for the escapes.
fn long_chars(raw: &[u8]) -> u64 {
    let mut chars = 0;
    let mut pos = 0;
    while let Some(i) = find(raw, pos, b'\\', b'\\') {
        chars += count_chars(&raw[pos..i]) + 1;
        let escape = raw.get(i + 1).copied();
        pos = (i + if escape == Some(b'u') { 6 } else { 2 }).min(raw.len());
    }
    chars + count_chars(&raw[pos..])
}

/// Calls `member(key, value)` for every member of `json`, in order, at any depth. `key` is the
/// raw bytes between the quotes (keys with escapes are compared as written). The trackers walk
/// through a [`Preamble`](super::preamble::Preamble), which skips what the last event repeated.
#[cfg(test)]
pub(crate) fn visit<'a>(json: &'a [u8], mut member: impl FnMut(&[u8], Value<'a>)) {
    Members::new(json, 0).for_each(|m| member(m.key, m.value));
}

/// One member found by [`Members`], with where it is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Member<'a> {
    /// The key's raw bytes.
    pub(crate) key: &'a [u8],
    /// The value, as far as a quick look can tell.
    pub(crate) value: Value<'a>,
    /// The index of the quote that opens the key.
    pub(crate) key_at: usize,
    /// The index of the value's first byte.
    pub(crate) value_at: usize,
    /// Where the walk goes on after this member: just past a string value's closing quote,
    /// else the value's first byte (an object's or array's members are walked next).
    pub(crate) next: usize,
}

/// The member whose key opens at the quote `q`, when it is a string written `"key":"value"`
/// (or `"key": "value"`) without escapes (a stream's text delta, after its preamble): the member
/// [`Members`] would find there, for a fraction of the work. `None` for any other shape,
/// which [`Members`] then walks.
#[inline]
pub(crate) fn quick_string_member(json: &[u8], q: usize) -> Option<Member<'_>> {
    if json.get(q) != Some(&b'"') {
        return None;
    }
    let end = plain_end(json, q + 1)?;
    // At most one space on either side of the colon, as providers write it.
    let space = |at: usize| at + usize::from(json.get(at) == Some(&b' '));
    let colon = space(end + 1);
    let v = space(colon + 1);
    if json.get(colon) != Some(&b':') || json.get(v) != Some(&b'"') {
        return None;
    }
    let value_end = plain_end(json, v + 1)?;
    Some(Member {
        key: &json[q + 1..end],
        value: Value::Str(Text::new(&json[v + 1..value_end])),
        key_at: q,
        value_at: v,
        next: value_end + 1,
    })
}

/// The closing quote of a string whose first byte is at `from`, when no escape comes first.
#[inline]
pub(crate) fn plain_end(json: &[u8], from: usize) -> Option<usize> {
    let rest = json.get(from..)?;
    let i = rest.iter().position(|&c| c == b'"' || c == b'\\')?;
    (rest[i] == b'"').then_some(from + i)
}

/// [`plain_end`] and, when the string has no control characters, its
/// [`printable_chars`](Text::printable_chars), in one pass eight bytes at a time: a stream's
/// text delta is found and counted together.
#[inline(always)]
fn plain_text_end(json: &[u8], from: usize) -> Option<(usize, Option<u64>)> {
    let mut at = from;
    let mut continuations = 0;
    let mut control = 0;
    while let Some(bytes) = json.get(at..at.saturating_add(8)) {
        let word = u64_of(bytes);
        let stop = byte_matches(word, b'"') | byte_matches(word, b'\\');
        // The bytes before the first quote or backslash (all of them when there is none), as
        // their high bits. Only the lowest bit of `stop` is exact, and only that one is used.
        let before = match stop {
            0 => u64::MAX,
            _ => (stop & stop.wrapping_neg()) - 1,
        };
        // Any byte below 0x20 before the stop (exact: a borrow only marks bytes above a true
        // one), and the continuation bytes before it (exact per byte).
        control |= word.wrapping_sub(LO * 0x20) & !word & HI & before;
        let bits = (word & !(word << 1) & HI & before) >> 7;
        continuations += bits.wrapping_mul(LO) >> 56;
        if stop != 0 {
            let end = at + (stop.trailing_zeros() / 8) as usize;
            if json[end] != b'"' {
                return None;
            }
            let chars = (end - from) as u64 - continuations;
            return Some((end, (control == 0).then_some(chars)));
        }
        at += 8;
    }
    // Fewer than eight bytes left: the general way.
    let end = plain_end(json, from)?;
    Some((end, plain_chars(&json[from..end])))
}

/// The member whose key opens at the quote `q`, when `json` has there the bytes `head` (a key's
/// opening quote through its string value's opening quote, as an earlier event wrote them,
/// with `key_len` the key's length) and the value has no escapes: [`quick_string_member`] for
/// a key known in advance.
#[inline(always)]
pub(crate) fn known_string_member<'a>(
    json: &'a [u8],
    q: usize,
    head: &[u8],
    key_len: usize,
) -> Option<Member<'a>> {
    if head.is_empty() || !same_at(json, q, head) {
        return None;
    }
    let v = q + head.len();
    let (value_end, counted) = plain_text_end(json, v)?;
    Some(Member {
        key: json.get(q + 1..q + 1 + key_len)?,
        value: Value::Str(Text {
            raw: &json[v..value_end],
            counted,
        }),
        key_at: q,
        value_at: v - 1,
        next: value_end + 1,
    })
}

/// Every member of `json` whose key opens at or after `start`, in order, at any depth, with its
/// positions. Every decision about a member reads only bytes up to its key's opening quote and
/// the member itself, so a walk resumed at a key's quote (or at a member's
/// [`next`](Member::next)) finds exactly the members a walk from the start finds from there
/// (what [`Preamble`](super::preamble::Preamble) relies on).
#[derive(Debug, Clone)]
pub(crate) struct Members<'a> {
    json: &'a [u8],
    pos: usize,
}

impl<'a> Members<'a> {
    /// The members from `start` on.
    pub(crate) fn new(json: &'a [u8], start: usize) -> Self {
        Members { json, pos: start }
    }
}

impl<'a> Iterator for Members<'a> {
    type Item = Member<'a>;

    fn next(&mut self) -> Option<Member<'a>> {
        let json = self.json;
        loop {
            let q = find(json, self.pos, b'"', b'"')?;
            let start = q + 1;
            let Some(end) = string_end(json, start) else {
                self.pos = json.len();
                return None;
            };
            self.pos = end + 1;
            let Some(colon) = skip_ws(json, self.pos) else {
                self.pos = json.len();
                return None;
            };
            if json[colon] != b':' {
                // A string that is not a key: an array element, or garbage.
                continue;
            }
            let key = &json[start..end];
            let Some(v) = skip_ws(json, colon + 1) else {
                self.pos = json.len();
                return None;
            };
            self.pos = v;
            let value = match json[v] {
                b'"' => {
                    let Some(end) = string_end(json, v + 1) else {
                        self.pos = json.len();
                        return None;
                    };
                    self.pos = end + 1;
                    Value::Str(Text::new(&json[v + 1..end]))
                }
                b'{' => Value::Object,
                b'[' => Value::Array,
                b'n' => Value::Null,
                _ => Value::Scalar,
            };
            return Some(Member {
                key,
                value,
                key_at: q,
                value_at: v,
                next: self.pos,
            });
        }
    }
}

/// The index of the quote closing a string whose first byte is at `start`.
fn string_end(json: &[u8], start: usize) -> Option<usize> {
    let mut pos = start;
    loop {
        let i = find(json, pos, b'"', b'\\')?;
        if json[i] == b'"' {
            return Some(i);
        }
        // Whatever follows a backslash is escaped (`\u` is followed by hex digits only).
        pos = i + 2;
    }
}

/// The index of the first `a` or `b` at or after `pos`, eight bytes at a time (SWAR).
///
/// JSON strings and the gaps between them are mostly shorter than a SIMD search needs to pay
/// off: `memchr` per string cost three times as much here (measured on chat chunks).
#[inline]
fn find(json: &[u8], pos: usize, a: u8, b: u8) -> Option<usize> {
    let rest = json.get(pos..)?;
    let mut words = rest.chunks_exact(8);
    let mut at = pos;
    for word in words.by_ref() {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        let word = u64::from_le_bytes(bytes);
        let hit = byte_matches(word, a) | byte_matches(word, b);
        if hit != 0 {
            return Some(at + (hit.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let tail = words.remainder();
    tail.iter().position(|&c| c == a || c == b).map(|i| at + i)
}

/// Characters in UTF-8 bytes: every byte that does not continue a multi-byte sequence.
fn count_chars(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| (b as i8) >= -0x40).count() as u64
}

/// The index of the first byte at or after `pos` that is not JSON whitespace.
fn skip_ws(json: &[u8], pos: usize) -> Option<usize> {
    json.get(pos..)?
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .map(|i| pos + i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value as Json;

    /// A visited value with its string length counted, comparable across inputs.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    enum Shape {
        Str(u64),
        Object,
        Array,
        Null,
        Scalar,
    }

    fn shape(v: Value<'_>) -> Shape {
        match v {
            Value::Str(t) => Shape::Str(t.chars()),
            Value::Object => Shape::Object,
            Value::Array => Shape::Array,
            Value::Null => Shape::Null,
            Value::Scalar => Shape::Scalar,
        }
    }

    fn members(json: &[u8]) -> Vec<(String, Shape)> {
        let mut out = Vec::new();
        visit(json, |k, v| {
            out.push((String::from_utf8_lossy(k).into(), shape(v)))
        });
        out
    }

    /// The same walk over a decoded value, in document order (serde_json keeps insertion
    /// order only with `preserve_order`, so both sides are sorted before comparing).
    fn walk(v: &Json, out: &mut Vec<(String, Shape)>) {
        match v {
            Json::Object(map) => {
                for (k, v) in map {
                    out.push((
                        k.clone(),
                        match v {
                            Json::String(s) => Shape::Str(s.chars().count() as u64),
                            Json::Object(_) => Shape::Object,
                            Json::Array(_) => Shape::Array,
                            Json::Null => Shape::Null,
                            _ => Shape::Scalar,
                        },
                    ));
                    walk(v, out);
                }
            }
            Json::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }

    #[test]
    fn members_at_any_depth_with_string_lengths() {
        let chunk = br#"{"id":"c1","choices":[{"index":0,"delta":{"content":"h\u00e9 \"x\"\n"},"finish_reason":null}],"usage" : {"prompt_tokens":3}}"#;
        assert_eq!(
            members(chunk),
            vec![
                ("id".into(), Shape::Str(2)),
                ("choices".into(), Shape::Array),
                ("index".into(), Shape::Scalar),
                ("delta".into(), Shape::Object),
                ("content".into(), Shape::Str(7)),
                ("finish_reason".into(), Shape::Null),
                ("usage".into(), Shape::Object),
                ("prompt_tokens".into(), Shape::Scalar),
            ]
        );
    }

    #[test]
    fn the_quick_member_is_the_walks_first() {
        for json in [
            r#""content":" word5"},"x":1}"#,
            r#""content":"a\"b"}"#,
            r#""content" : "a"}"#,
            r#""content" :1"#,
            r#""k\"":"a"}"#,
            r#""content":1}"#,
            r#""content":""#,
            r#""content":"ab"#,
            r#""content""#,
            r#"x"a":"b""#,
        ] {
            let quick = quick_string_member(json.as_bytes(), 0);
            let walked = Members::new(json.as_bytes(), 0).next();
            if let Some(q) = quick {
                let w = walked.expect(json);
                assert_eq!(
                    (q.key, q.value, q.key_at, q.value_at, q.next),
                    (w.key, w.value, w.key_at, w.value_at, w.next),
                    "{json}"
                );
            }
        }
        assert!(quick_string_member(br#""content":" word5"}"#, 0).is_some());
    }

    #[test]
    fn keys_inside_strings_are_not_members() {
        let args = br#"{"arguments":"{\"content\":\"not a member\"}","list":["content",":"]}"#;
        let found = members(args);
        assert_eq!(found[0], ("arguments".into(), Shape::Str(26)));
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[1], ("list".into(), Shape::Array));
    }

    #[test]
    fn short_and_long_strings_count_alike() {
        for text in [
            r"",
            "a",
            r"\",
            r"\u",
            r"\u00e9x",
            r#"h\u00e9 \"x\"\n"#,
            "👋 héllo",
            r"ab\",
            r"\ud83d\udc4b",
        ] {
            for n in [1, 3, SHORT + 1] {
                let t = text.repeat(n);
                assert_eq!(short_chars(t.as_bytes()), long_chars(t.as_bytes()), "{t}");
                assert_eq!(
                    Text::new(t.as_bytes()).chars(),
                    short_chars(t.as_bytes()),
                    "{t}"
                );
            }
        }
    }

    #[test]
    fn multibyte_characters_count_once() {
        let text = r#"{"text":"👋 héllo"}"#;
        assert_eq!(members(text.as_bytes())[0].1, Shape::Str(7));
    }

    #[test]
    fn truncated_input_stops_without_panicking() {
        let whole = br#"{"a":"x\u12","b":{"c":"d\"#;
        for end in 0..=whole.len() {
            members(&whole[..end]);
        }
    }

    fn json_value() -> impl Strategy<Value = Json> {
        let leaf = prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::Bool),
            any::<i32>().prop_map(Json::from),
            "[a-z\"\\\\\u{e9}\u{1F44B}\n :{}\\[\\],]{0,12}".prop_map(Json::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Json::Array),
                prop::collection::btree_map("[a-z_\" :]{0,8}", inner, 0..5)
                    .prop_map(|m| Json::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn agrees_with_serde_on_any_valid_json(v in json_value(), pretty in any::<bool>()) {
            let text = if pretty {
                serde_json::to_vec_pretty(&v).unwrap()
            } else {
                serde_json::to_vec(&v).unwrap()
            };
            let mut want = Vec::new();
            walk(&v, &mut want);
            let mut got: Vec<(String, Shape)> = Vec::new();
            visit(&text, |k, val| {
                let key: String = serde_json::from_slice(&[b"\"", k, b"\""].concat()).unwrap();
                got.push((key, shape(val)));
            });
            want.sort();
            got.sort();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn the_quick_member_agrees_with_the_walk(bytes in prop::collection::vec(prop_oneof![
            Just(b'"'), Just(b'\\'), Just(b':'), Just(b' '), Just(b'a'), Just(b'}'), any::<u8>()
        ], 0..24)) {
            let json = [&b"\""[..], &bytes].concat();
            if let Some(q) = quick_string_member(&json, 0) {
                let w = Members::new(&json, 0).next();
                prop_assert!(w.is_some());
                let w = w.unwrap();
                prop_assert_eq!(
                    (q.key, q.value, q.key_at, q.value_at, q.next),
                    (w.key, w.value, w.key_at, w.value_at, w.next)
                );
            }
        }

        /// The known member's one pass (its end and its count together, eight bytes at a
        /// time) finds the string the walk finds, and counts what the count alone counts.
        #[test]
        fn the_known_member_agrees_with_the_walk_and_the_count(bytes in prop::collection::vec(prop_oneof![
            Just(b'"'), Just(b'\\'), Just(b'a'), Just(0xC3), Just(0xA9), Just(0x1F), Just(b'}'), any::<u8>()
        ], 0..40)) {
            let json = [&br#""text": ""#[..], &bytes].concat();
            if let Some(k) = known_string_member(&json, 0, br#""text": ""#, 4) {
                let w = Members::new(&json, 0).next();
                prop_assert!(w.is_some());
                let w = w.unwrap();
                let (Value::Str(kt), Value::Str(wt)) = (k.value, w.value) else {
                    return Err(TestCaseError::fail("not a string"));
                };
                prop_assert_eq!(
                    (k.key, kt.raw, k.key_at, k.value_at, k.next),
                    (w.key, wt.raw, w.key_at, w.value_at, w.next)
                );
                prop_assert_eq!(kt.printable_chars(), plain_chars(kt.raw));
                prop_assert_eq!(kt.chars(), wt.chars());
            } else {
                // Only a string with an escape before its end (or none) is left to the walk.
                prop_assert!(plain_end(&json, 9).is_none());
            }
        }

        #[test]
        fn both_counts_agree_on_any_bytes(bytes in prop::collection::vec(prop_oneof![
            Just(b'\\'), Just(b'u'), Just(b'a'), Just(0xC3), Just(0xA9), Just(0x1F), Just(0x20), Just(0x00), any::<u8>()
        ], 0..64)) {
            prop_assert_eq!(short_chars(&bytes), long_chars(&bytes));
            prop_assert_eq!(Text::new(&bytes).chars(), short_chars(&bytes));
            if !bytes.iter().any(|&c| c == b'\\' || c < 0x20) {
                prop_assert_eq!(plain_chars(&bytes), Some(short_chars(&bytes)));
            } else {
                prop_assert_eq!(plain_chars(&bytes), None);
            }
        }

        #[test]
        fn never_panics_on_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            visit(&bytes, |_, _| {});
        }
    }
}
