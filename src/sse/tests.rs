use super::*;
use proptest::prelude::*;

fn scan(chunks: &[&[u8]], max: usize) -> (Vec<(String, String)>, u64) {
    let mut s = SseScanner::new(max);
    let mut out = Vec::new();
    let mut push = |e: &SseEvent<'_>, _| {
        out.push((
            String::from_utf8(e.name.to_vec()).unwrap(),
            String::from_utf8(e.data.to_vec()).unwrap(),
        ))
    };
    for c in chunks {
        s.feed(c, &mut push);
    }
    s.finish(&mut push);
    (out, s.overflowed())
}

fn ev(name: &str, data: &str) -> (String, String) {
    (name.to_owned(), data.to_owned())
}

#[test]
fn lf_crlf_cr_comments_names_and_multiline_data() {
    let body = b"\xEF\xBB\xBF: keep-alive\nevent: a\ndata: 1\ndata:2\n\r\ndata: x\r\rretry: 5\nid: 7\ndata: y\r\n\r\n";
    let (events, overflow) = scan(&[body], DEFAULT_MAX_LINE);
    assert_eq!(events, vec![ev("a", "1\n2"), ev("", "x"), ev("", "y")]);
    assert_eq!(overflow, 0);
}

#[test]
fn crlf_split_across_chunks_is_one_terminator() {
    let (events, _) = scan(&[b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n"], 64);
    assert_eq!(events, vec![ev("", "a"), ev("", "b")]);
}

#[test]
fn an_empty_chunk_between_cr_and_lf_keeps_them_one_terminator() {
    let (events, _) = scan(&[b"data: a\r", b"", b"\n\r", b"", b"\ndata: b\n\n"], 64);
    assert_eq!(events, vec![ev("", "a"), ev("", "b")]);
}

#[test]
fn every_line_end_is_reported_with_its_kind() {
    struct Lines(Vec<(LineKind, usize)>, usize);
    impl Visit for Lines {
        fn event(&mut self, _: &SseEvent<'_>, _: usize) {
            self.1 += 1;
        }
        fn line_end(&mut self, kind: LineKind, end: usize) {
            self.0.push((kind, end));
        }
    }
    let mut lines = Lines(Vec::new(), 0);
    let mut s = SseScanner::new(8);
    s.feed(b": c\r\nevent: e\ndata: 123456789\ndata: x\r\r", &mut lines);
    use LineKind::*;
    assert_eq!(
        lines.0,
        vec![
            (Comment, 5),
            (Field, 14),
            (Skipped, 30),
            (Field, 38),
            (Blank, 39)
        ]
    );
    assert_eq!(lines.1, 1);
}

#[test]
fn pending_event_is_dispatched_at_end_of_stream() {
    let (events, _) = scan(&[b"event: message_stop\ndata: {}"], 64);
    assert_eq!(events, vec![ev("message_stop", "{}")]);
}

#[test]
fn split_multibyte_utf8_is_joined() {
    let text = "data: h\u{1F600}i\n\n".as_bytes();
    let (events, _) = scan(&[&text[..9], &text[9..]], 64);
    assert_eq!(events, vec![ev("", "h\u{1F600}i")]);
}

#[test]
fn oversize_line_is_skipped_and_counted_then_scanning_resumes() {
    let big = format!("data: {}\n\ndata: ok\n\n", "x".repeat(100));
    let (events, overflow) = scan(&[&big.as_bytes()[..50], &big.as_bytes()[50..]], 32);
    assert_eq!(events, vec![ev("", "ok")]);
    assert_eq!(overflow, 1);
}

#[test]
fn end_offsets_point_past_the_blank_line() {
    let body = b"data: a\n\ndata: b\n\n";
    let mut s = SseScanner::new(64);
    let mut ends = Vec::new();
    s.feed(body, &mut |_: &SseEvent<'_>, end| ends.push(end));
    assert_eq!(ends, vec![9, 18]);
}

proptest! {
    #[test]
    fn any_framing_yields_the_same_events(
        body in proptest::collection::vec(prop_oneof![
            Just(b'\n'), Just(b'\r'), Just(b':'), Just(b' '), Just(b'd'), Just(b'a'),
            Just(b't'), Just(b'e'), Just(b'v'), Just(0xEF), Just(0xBB), Just(0xBF), any::<u8>()
        ], 0..300),
        cuts in proptest::collection::vec(any::<usize>(), 0..20),
        max in 4usize..64,
    ) {
        let mut idx: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
        idx.sort_unstable();
        let mut chunks = Vec::new();
        let mut last = 0;
        for i in idx { chunks.push(&body[last..i]); last = i; }
        chunks.push(&body[last..]);
        prop_assert_eq!(scan_raw(&chunks, max), scan_raw(&[&body], max));
    }
}

/// Everything a scan reports, at offsets in the whole body: events (name, data, whether
/// complete, end) and line ends (kind, end), in order, and the overflow count.
#[derive(Debug, PartialEq, Eq)]
enum Report {
    Event(Vec<u8>, Vec<u8>, bool, usize),
    Line(LineKind, usize),
}

fn reports(chunks: &[&[u8]], max: usize) -> (Vec<Report>, u64) {
    struct Log {
        base: usize,
        out: Vec<Report>,
    }
    impl Visit for Log {
        fn event(&mut self, e: &SseEvent<'_>, end: usize) {
            let end = if end == 0 { 0 } else { self.base + end };
            let ev = Report::Event(e.name.to_vec(), e.data.to_vec(), e.complete, end);
            self.out.push(ev);
        }
        fn line_end(&mut self, kind: LineKind, end: usize) {
            self.out.push(Report::Line(kind, self.base + end));
        }
    }
    let mut s = SseScanner::new(max);
    let mut log = Log {
        base: 0,
        out: Vec::new(),
    };
    for c in chunks {
        s.feed(c, &mut log);
        log.base += c.len();
    }
    s.finish(&mut log);
    (log.out, s.overflowed())
}

proptest! {
    /// Whole events in one chunk take the short way; fed a byte at a time, no event is
    /// whole in a chunk: both report the same events and line ends.
    #[test]
    fn the_short_way_reports_what_the_line_by_line_path_does(
        lines in proptest::collection::vec(prop_oneof![
            "data: \\{[a-z\\\\:\\r]{0,12}\\}\n".prop_map(String::into_bytes),
            "data:[a-z ]{0,6}\n".prop_map(String::into_bytes),
            "event: ?[a-z_]{0,8}\n".prop_map(String::into_bytes),
            Just(b"event: e\r\ndata: {}\r\n\r\n".to_vec()),
            Just(b"event: e\ndata: {}\n\n".to_vec()),
            Just(b"event: e\n".to_vec()),
            Just(b"event: e\r\n".to_vec()),
            Just(b"event: e\r".to_vec()),
            Just(b"\n".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b"\r".to_vec()),
            Just(b": keep-alive\n".to_vec()),
            Just(b"id: 1\n".to_vec()),
            Just(b"data".to_vec()),
            Just(b"\xEF\xBB\xBF".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..4),
        ], 0..24),
        max in prop_oneof![Just(DEFAULT_MAX_LINE), 4usize..24],
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let body = lines.concat();
        let reference = reports(&bytewise(&body), max);
        prop_assert_eq!(&reports(&[&body], max), &reference);
        // In frames cut anywhere but inside a CRLF (see `bytewise`).
        let mut idx: Vec<usize> = cuts
            .iter()
            .map(|c| c % (body.len() + 1))
            .filter(|&i| !(i > 0 && i < body.len() && body[i - 1] == b'\r' && body[i] == b'\n'))
            .collect();
        idx.sort_unstable();
        let mut chunks = Vec::new();
        let mut last = 0;
        for i in idx {
            chunks.push(&body[last..i]);
            last = i;
        }
        chunks.push(&body[last..]);
        prop_assert_eq!(&reports(&chunks, max), &reference);
    }
}

/// `body` a byte at a time, but a CRLF in one piece (a CRLF split across chunks reports its
/// line's end after the `\r`).
fn bytewise(body: &[u8]) -> Vec<&[u8]> {
    let mut pieces = Vec::new();
    let mut from = 0;
    for i in 1..=body.len() {
        if i == body.len() || !(body[i - 1] == b'\r' && body[i] == b'\n') {
            pieces.push(&body[from..i]);
            from = i;
        }
    }
    pieces
}

#[test]
fn a_repeated_event_line_ends_where_it_did() {
    // The first line of a stream takes the long way: the second event is searched, the
    // third found by comparison.
    let body = b"event: e\r\ndata: 1\r\n\r\nevent: e\r\ndata: 2\r\n\r\n\
                 event: e\r\ndata: 3\r\n\r\nevent: e\ndata: 4\n\nevent: e\ndata: 5\n\n\
                 event: e\rdata: 6\r\revent: e\rdata: 7\r\r";
    let (whole, _) = reports(&[body], 64);
    assert_eq!(whole, reports(&bytewise(body), 64).0);
    let events: Vec<_> = whole
        .iter()
        .filter_map(|r| match r {
            Report::Event(name, data, ..) => Some((name.clone(), data.clone())),
            Report::Line(..) => None,
        })
        .collect();
    let want: Vec<_> = (1..=7)
        .map(|i| (b"e".to_vec(), i.to_string().into_bytes()))
        .collect();
    assert_eq!(events, want);
}

#[test]
fn the_short_way_takes_the_common_events() {
    let body = b"data: {}\n\nevent: e\ndata: {\"a\":1}\n\n: c\ndata: x\n\ndata: y\r\n\r\n";
    let (whole, _) = reports(&[body], 64);
    assert_eq!(whole, reports(&bytewise(body), 64).0);
    use LineKind::*;
    assert_eq!(
        whole,
        vec![
            Report::Line(Field, 9),
            Report::Event(vec![], b"{}".to_vec(), true, 10),
            Report::Line(Blank, 10),
            Report::Line(Field, 19),
            Report::Line(Field, 33),
            Report::Event(b"e".to_vec(), br#"{"a":1}"#.to_vec(), true, 34),
            Report::Line(Blank, 34),
            Report::Line(Comment, 38),
            Report::Line(Field, 46),
            Report::Event(vec![], b"x".to_vec(), true, 47),
            Report::Line(Blank, 47),
            Report::Line(Field, 56),
            Report::Event(vec![], b"y".to_vec(), true, 58),
            Report::Line(Blank, 58),
        ]
    );
}

/// Every event as `(name, data)` bytes, and the overflow count.
type Scanned = (Vec<(Vec<u8>, Vec<u8>)>, u64);

fn scan_raw(chunks: &[&[u8]], max: usize) -> Scanned {
    let mut s = SseScanner::new(max);
    let mut out = Vec::new();
    let mut push = |e: &SseEvent<'_>, _| out.push((e.name.to_vec(), e.data.to_vec()));
    for c in chunks {
        s.feed(c, &mut push);
    }
    s.finish(&mut push);
    (out, s.overflowed())
}

proptest! {
    /// The searcher built once finds what `memchr2` finds, on lines shorter than one vector,
    /// between one and two, and longer (each length takes another branch of the search).
    #[test]
    fn the_line_break_search_is_memchr2(
        bytes in proptest::collection::vec(
            prop_oneof![8 => b'a'..=b'z', 1 => Just(b'\n'), 1 => Just(b'\r'), 1 => any::<u8>()],
            0..300,
        ),
        from in any::<prop::sample::Index>(),
    ) {
        let rest = &bytes[from.index(bytes.len() + 1)..];
        prop_assert_eq!(line_break(rest), memchr2(b'\n', b'\r', rest));
    }
}
