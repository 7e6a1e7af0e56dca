//! A forward reader for the few members the layer needs from a whole JSON body (a response,
//! a request), without decoding the rest.
//!
//! serde_json reads every key of a body into a validated `str` and checks every byte of the
//! values it ignores; for a 1 KB chat completion that is most of what the layer costs per
//! request. [`Reader`] jumps over what it skips (strings with a vectorised search for the next
//! quote or backslash), compares keys as raw bytes, and reads only plain values: strings
//! without escapes, unsigned integers without sign, fraction or exponent, booleans, `null`.
//! Anything else — an escape in a string it reads, a number of another shape, a member twice,
//! too deep a nesting, malformed structure — makes it give up (`None`), and its callers then
//! decode the body with serde as before. So for every body the reader accepts, the result is
//! the one serde gives; the difference is only in bodies that are not JSON (a string it
//! skips may hold a control character serde would refuse), which nothing depends on.
//!
//! It never panics and never reads out of bounds (every access goes through `get`).

use super::swar::byte_matches;

/// How deep the values [`Reader::skip`] walks may nest before the reader gives up (and serde,
/// whose limit for what it decodes is 128, decides).
const MAX_DEPTH: usize = 100;

/// Whether `bytes` are printable ASCII without a backslash: text on which [`Reader`] and
/// serde agree for every answer the reader gives, also where serde would refuse what the
/// reader skips (no escape to spell a key another way, no control character, no UTF-8 to
/// validate). Callers that must answer exactly as serde does use the reader only on such text.
pub(crate) fn plain_ascii(bytes: &[u8]) -> bool {
    // No early exit, so that the compiler can test many bytes a step.
    bytes.iter().fold(true, |plain, &b| {
        plain & (b' '..=b'~').contains(&b) & (b != b'\\')
    })
}

/// A position in a JSON text.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, at: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn space(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.at += 1;
        }
    }

    /// Skips whitespace; the next byte if it is `want` (consumed).
    fn eat(&mut self, want: u8) -> Option<()> {
        // Most separators follow their token directly: no whitespace loop for them.
        if self.peek() == Some(want) {
            self.at += 1;
            return Some(());
        }
        self.space();
        (self.peek()? == want).then(|| self.at += 1)
    }

    /// Only whitespace is left.
    pub(crate) fn end(mut self) -> Option<()> {
        self.space();
        (self.at == self.bytes.len()).then_some(())
    }

    /// The value is `null` (consumed); `false` leaves the reader where it was.
    pub(crate) fn null(&mut self) -> bool {
        self.space();
        self.null_here()
    }

    /// The bytes at the reader (no whitespace first) are `null` (consumed).
    fn null_here(&mut self) -> bool {
        let is_null = self.bytes.get(self.at..self.at + 4) == Some(b"null");
        if is_null {
            self.at += 4;
        }
        is_null
    }

    /// The value is an object: calls `member` with each key's bytes and the reader at its
    /// value, which `member` must consume. A key with an escape makes the reader give up.
    pub(crate) fn object(
        &mut self,
        mut member: impl FnMut(&mut Self, &'a [u8]) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            // A key with an escape may spell a known name another way: give up on it.
            let key = self.plain_string()?;
            self.eat(b':')?;
            member(self, key)?;
            self.space();
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// The value is an array: calls `item` with the reader at each element, which `item` must
    /// consume.
    pub(crate) fn array(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        if self.eat(b']').is_some() {
            return Some(());
        }
        loop {
            item(self)?;
            self.space();
            match self.peek()? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// The value is a string: its raw bytes between the quotes, and whether it has an escape.
    #[inline]
    fn raw_string(&mut self) -> Option<(&'a [u8], bool)> {
        if self.peek() != Some(b'"') {
            self.space();
            if self.peek()? != b'"' {
                return None;
            }
        }
        let start = self.at + 1;
        // Most strings (keys, short values) end within their first 24 bytes: found a word at
        // a time, inline, without the longer search's call and the registers it needs.
        let mut at = start;
        for _ in 0..WORDS_INLINE {
            let Some(word) = self.bytes.get(at..at + 8) else {
                break;
            };
            let word = u64::from_le_bytes(word.try_into().ok()?);
            let hit = byte_matches(word, b'"') | byte_matches(word, b'\\');
            if hit != 0 {
                at += (hit.trailing_zeros() / 8) as usize;
                if self.bytes.get(at) != Some(&b'"') {
                    break;
                }
                self.at = at + 1;
                return Some((self.bytes.get(start..at)?, false));
            }
            at += 8;
        }
        self.long_string(start, at)
    }

    /// [`raw_string`](Self::raw_string) past its first words: the string from `start` (after
    /// its opening quote) to its closing quote, searched from `from` (no quote or backslash
    /// lies between them).
    #[inline(never)]
    fn long_string(&mut self, start: usize, from: usize) -> Option<(&'a [u8], bool)> {
        let mut at = from;
        let mut escaped = false;
        loop {
            at = quote_or_backslash(self.bytes, at)?;
            if self.bytes.get(at) == Some(&b'"') {
                self.at = at + 1;
                return Some((self.bytes.get(start..at)?, escaped));
            }
            // A backslash and the byte it escapes (a `\u` escape's hex digits are plain bytes).
            escaped = true;
            at += 2;
        }
    }

    /// The value is a string without escapes: its raw bytes.
    fn plain_string(&mut self) -> Option<&'a [u8]> {
        self.raw_string()
            .and_then(|(raw, escaped)| (!escaped).then_some(raw))
    }

    /// The value is a string without escapes: its text.
    pub(crate) fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.plain_string()?).ok()
    }

    /// The value is `null` (`None`) or a string without escapes.
    pub(crate) fn opt_str(&mut self) -> Option<Option<&'a str>> {
        self.space();
        match self.peek()? {
            b'"' => self.str().map(Some),
            b'n' => self.null_here().then_some(None),
            _ => None,
        }
    }

    /// The bytes at the reader (no whitespace first) are an unsigned integer written plainly
    /// (`0`, `42`; no sign, fraction, exponent or leading zero) that fits in a `u64`.
    fn digits(&mut self) -> Option<u64> {
        let start = self.at;
        let mut n: u64 = 0;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            self.at += 1;
        }
        let digits = self.at - start;
        let leading_zero = digits > 1 && self.bytes.get(start) == Some(&b'0');
        let continues = matches!(self.peek(), Some(b'.' | b'e' | b'E'));
        (digits > 0 && !leading_zero && !continues).then_some(n)
    }

    /// The value is `null` (`None`) or a plain unsigned integer (see [`digits`](Self::digits)).
    pub(crate) fn opt_u64(&mut self) -> Option<Option<u64>> {
        // One look at the first byte decides: a count is read straight away, without first
        // trying `null` (and skipping whitespace) as a separate step.
        self.space();
        match self.peek()? {
            b'0'..=b'9' => self.digits().map(Some),
            b'n' => self.null_here().then_some(None),
            _ => None,
        }
    }

    /// The value is `true` or `false`.
    pub(crate) fn bool(&mut self) -> Option<bool> {
        self.space();
        let rest = self.bytes.get(self.at..)?;
        if rest.starts_with(b"true") {
            self.at += 4;
            Some(true)
        } else if rest.starts_with(b"false") {
            self.at += 5;
            Some(false)
        } else {
            None
        }
    }

    /// The value is `null` (`None`) or a boolean.
    pub(crate) fn opt_bool(&mut self) -> Option<Option<bool>> {
        if self.null() {
            return Some(None);
        }
        self.bool().map(Some)
    }

    /// An object of counts: the count under each of `names` (`null` or absent: `None`); other
    /// members are skipped. `None` when a count is not one or a name comes twice.
    pub(crate) fn counts<const N: usize>(&mut self, names: [&[u8]; N]) -> Option<[Option<u64>; N]> {
        let mut counts = [None; N];
        let mut seen = Seen::default();
        // Length and first byte rule out most names before the bytes are compared.
        let is =
            |n: &[u8], key: &[u8]| n.len() == key.len() && n.first() == key.first() && n == key;
        self.object(|r, key| match names.iter().position(|n| is(n, key)) {
            Some(i) => {
                seen.first(i as u32)?;
                counts[i] = r.opt_u64()?;
                Some(())
            }
            None => r.skip(),
        })?;
        Some(counts)
    }

    /// The value is `null` (`None`) or an object of counts (see [`counts`](Self::counts)).
    pub(crate) fn opt_counts<const N: usize>(
        &mut self,
        names: [&[u8]; N],
    ) -> Option<Option<[Option<u64>; N]>> {
        self.space();
        match self.peek()? {
            b'{' => self.counts(names).map(Some),
            b'n' => self.null_here().then_some(None),
            _ => None,
        }
    }

    /// Skips one value of any kind.
    pub(crate) fn skip(&mut self) -> Option<()> {
        self.skip_at(0)
    }

    fn skip_at(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.space();
        match self.peek()? {
            b'"' => self.raw_string().map(drop),
            b'{' => self.object(|r, _| r.skip_at(depth + 1)),
            b'[' => self.array(|r| r.skip_at(depth + 1)),
            b't' | b'f' => self.bool().map(drop),
            b'n' => self.null().then_some(()),
            b'-' | b'0'..=b'9' => self.skip_number(),
            _ => None,
        }
    }

    /// Skips a number written as JSON writes one: an optional `-`, then `0` or a digit from 1
    /// and more digits, then an optional fraction (`.` and digits) and exponent (`e` or `E`,
    /// an optional sign, digits). What follows is the caller's: after `01` the `1` is not a
    /// separator, so the object or array around it fails, as serde's decoding does.
    fn skip_number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.skip_digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            self.some_digits()?;
        }
        Some(())
    }

    /// Skips the digits at the reader, if any.
    fn skip_digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
    }

    /// Skips one or more digits (`None` when there is none).
    fn some_digits(&mut self) -> Option<()> {
        let start = self.at;
        self.skip_digits();
        (self.at > start).then_some(())
    }
}

/// How many eight-byte words [`Reader::raw_string`] looks at inline before it calls
/// [`Reader::long_string`].
const WORDS_INLINE: usize = 3;

/// How many eight-byte words [`quote_or_backslash`] looks at before it hands over to `memchr2`.
const WORDS_BEFORE_MEMCHR: usize = 2;

/// The index of the first `"` or `\` at or after `from`.
///
/// Keys and most values end within sixteen bytes: those are searched eight bytes at a time in
/// a register (a call of `memchr2` costs ≈ 60 instructions whatever the length, measured on
/// the chat completion's 24 strings); the rest (a message's text) with `memchr2`'s vectors,
/// which a word-at-a-time search loses to on long strings (+2,200 instructions per JSON
/// request when it searched everything, 2026-12-02).
fn quote_or_backslash(bytes: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    for _ in 0..WORDS_BEFORE_MEMCHR {
        let Some(word) = bytes
            .get(at..at + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
        else {
            break;
        };
        let word = u64::from_le_bytes(word);
        let hit = byte_matches(word, b'"') | byte_matches(word, b'\\');
        if hit != 0 {
            return Some(at + (hit.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    memchr::memchr2(b'"', b'\\', bytes.get(at..)?).map(|i| at + i)
}

/// Which members of one object were read, to give up on a member written twice (serde refuses
/// a duplicate field, so the reader must not pick one).
#[derive(Debug, Default)]
pub(crate) struct Seen(u64);

impl Seen {
    /// Marks member number `bit` (< 64) as read; `None` if it already was.
    pub(crate) fn first(&mut self, bit: u32) -> Option<()> {
        let mask = 1u64 << bit;
        if self.0 & mask != 0 {
            return None;
        }
        self.0 |= mask;
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_plain_values_and_skips_the_rest() {
        let body = br#" {"a" : "x", "skip": {"n": [1, -2.5e3, true, null, "q\"\\"]}, "b":42 ,"c":[true,false]} "#;
        let mut r = Reader::new(body);
        let (mut a, mut b, mut c) = (None, None, Vec::new());
        r.object(|r, key| match key {
            b"a" => r.str().map(|s| a = Some(s)),
            b"b" => r.opt_u64().map(|n| b = n),
            b"c" => r.array(|r| r.bool().map(|v| c.push(v))),
            _ => r.skip(),
        })
        .unwrap();
        r.end().unwrap();
        assert_eq!((a, b, c), (Some("x"), Some(42), vec![true, false]));
        // Strings ending at, before and after the byte loop's reach, with escapes past it.
        for len in [0, 15, 16, 17, 40] {
            let text = "a".repeat(len);
            let json = format!(r#"["{text}", "{text}\"{text}\\", "{text}"]"#);
            let mut r = Reader::new(json.as_bytes());
            let (mut got, mut item) = (Vec::new(), 0);
            r.array(|r| {
                item += 1;
                if item == 2 {
                    return r.skip();
                }
                got.push(r.str()?.len());
                Some(())
            })
            .unwrap();
            assert_eq!(got, [len, len], "{json}");
        }
    }

    proptest::proptest! {
        /// The word-at-a-time start of the search finds what a byte-by-byte search finds,
        /// wherever the quote or backslash falls (inside, between and past the two words).
        #[test]
        fn finds_the_first_quote_or_backslash_as_a_byte_search_does(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    8 => proptest::prelude::Just(b'a'),
                    1 => proptest::prelude::Just(b'"'),
                    1 => proptest::prelude::Just(b'\\'),
                    1 => proptest::prelude::Just(0xffu8),
                    1 => proptest::prelude::Just(0u8),
                ],
                0..48,
            ),
            from in 0usize..50,
        ) {
            let want = bytes
                .get(from..)
                .and_then(|rest| rest.iter().position(|&b| b == b'"' || b == b'\\'))
                .map(|i| from + i);
            proptest::prop_assert_eq!(quote_or_backslash(&bytes, from), want);
        }
    }

    proptest::proptest! {
        /// The string read inline a word at a time, then by the longer search, ends where a
        /// byte-by-byte reading ends (escapes skipped), with the same bytes and escape flag,
        /// wherever the quotes and backslashes fall.
        #[test]
        fn strings_end_where_a_byte_by_byte_reading_ends(
            body in proptest::collection::vec(
                proptest::prop_oneof![
                    8 => proptest::prelude::Just(b'a'),
                    1 => proptest::prelude::Just(b'"'),
                    1 => proptest::prelude::Just(b'\\'),
                ],
                0..64,
            ),
            space in proptest::bool::ANY,
        ) {
            let mut json = if space { b" \"".to_vec() } else { b"\"".to_vec() };
            json.extend_from_slice(&body);
            let open = json.len() - body.len();
            let mut want = None;
            let mut i = open;
            let mut escaped = false;
            while i < json.len() {
                match json[i] {
                    b'"' => {
                        want = Some((json[open..i].to_vec(), escaped, i + 1));
                        break;
                    }
                    b'\\' => {
                        escaped = true;
                        i += 2;
                    }
                    _ => i += 1,
                }
            }
            let mut r = Reader::new(&json);
            let got = r.raw_string().map(|(raw, esc)| (raw.to_vec(), esc, r.at));
            proptest::prop_assert_eq!(got, want);
        }
    }

    proptest::proptest! {
        /// A skipped number is taken exactly when serde takes it: any string of the bytes
        /// numbers are made of, as a member's value (regression: `{"total_tokens":01}` was
        /// skipped as a number, which serde refuses).
        #[test]
        fn skips_exactly_the_numbers_serde_reads(
            number in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::prelude::Just(b'0'),
                    proptest::prelude::Just(b'1'),
                    proptest::prelude::Just(b'9'),
                    proptest::prelude::Just(b'-'),
                    proptest::prelude::Just(b'+'),
                    proptest::prelude::Just(b'.'),
                    proptest::prelude::Just(b'e'),
                    proptest::prelude::Just(b'E'),
                ],
                1..8,
            ),
        ) {
            let mut json = b"{\"a\":".to_vec();
            json.extend_from_slice(&number);
            json.push(b'}');
            let serde = serde_json::from_slice::<serde::de::IgnoredAny>(&json).is_ok();
            let mut r = Reader::new(&json);
            let plain = r.object(|r, _| r.skip()).and_then(|()| r.end()).is_some();
            proptest::prop_assert_eq!(plain, serde, "{}", String::from_utf8_lossy(&json));
        }
    }

    #[test]
    fn gives_up_on_what_it_does_not_read_plainly() {
        let one = |json: &[u8], read: fn(&mut Reader<'_>) -> Option<()>| {
            let mut r = Reader::new(json);
            read(&mut r).and_then(|()| r.end())
        };
        let str_ = |r: &mut Reader<'_>| r.str().map(drop);
        let u64_ = |r: &mut Reader<'_>| r.opt_u64().map(drop);
        assert!(one(br#""plain""#, str_).is_some());
        assert!(one(br#""esc\n""#, str_).is_none());
        assert!(one(b"\"\xff\"", str_).is_none());
        assert!(one(b"7", u64_).is_some());
        for bad in [
            &b"-1"[..],
            b"1.0",
            b"1e3",
            b"01",
            b"18446744073709551616",
            b"\"7\"",
            b"",
        ] {
            assert!(one(bad, u64_).is_none(), "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(
            Reader::new(b"18446744073709551615").opt_u64(),
            Some(Some(u64::MAX))
        );
        let skip = |r: &mut Reader<'_>| r.skip();
        for bad in [
            &br#"{"a":1"#[..],
            br#"{"a" 1}"#,
            br#"[1,]"#,
            br#"{"a":1,}"#,
            br#""open"#,
            b"nul",
            b"}",
        ] {
            assert!(one(bad, skip).is_none(), "{}", String::from_utf8_lossy(bad));
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(one(deep.as_bytes(), skip).is_none());
        assert!(one(b"[1] x", skip).is_none());
        let mut seen = Seen::default();
        assert!(seen.first(3).is_some() && seen.first(3).is_none());
    }
}
