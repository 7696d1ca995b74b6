//! Finding whole JSON requests in a byte stream.
//!
//! Core Lightning's clients do not delimit requests: a request is one JSON object, however the
//! stream splits it, and several may follow each other. A [`Scanner`] finds the end of the first
//! top-level value, tracking strings and escapes, without parsing; it keeps its place between
//! reads, so each byte is looked at once however finely the request arrives (rescanning the
//! whole buffer on every read cost the square of a request sent a byte at a time).

/// The largest request accepted, in bytes: a value of exactly this size is read, one byte more
/// is refused.
pub const MAX_REQUEST_BYTES: usize = 1 << 20;

/// What the buffer holds at its start.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// Nothing but white space.
    Empty,
    /// The start of a value that is not complete yet.
    Incomplete,
    /// A complete value in `start..end`.
    Complete {
        /// First byte of the value.
        start: usize,
        /// One past its last byte.
        end: usize,
    },
    /// A value over [`MAX_REQUEST_BYTES`], complete or not.
    TooLarge,
    /// Something that is not an object or array: the stream cannot be resynchronised.
    Garbage,
}

/// Where the scan of a buffer's first value has got to. Give it the same buffer, only ever
/// grown at its end, until it answers [`Frame::Complete`] (or [`Frame::Empty`]); then remove
/// those bytes from the buffer and start a new scanner.
#[derive(Debug, Default)]
pub struct Scanner {
    /// The first byte not scanned yet.
    pos: usize,
    /// The first byte of the value, once found.
    start: Option<usize>,
    depth: usize,
    in_string: bool,
    escaped: bool,
}

impl Scanner {
    /// Scans the bytes of `buf` added since the last call.
    pub fn scan(&mut self, buf: &[u8]) -> Frame {
        let start = match self.start {
            Some(start) => start,
            None => {
                let from = self.pos.min(buf.len());
                let Some(start) = buf[from..]
                    .iter()
                    .position(|b| !b.is_ascii_whitespace())
                    .map(|i| from + i)
                else {
                    self.pos = buf.len();
                    return Frame::Empty;
                };
                if !matches!(buf[start], b'{' | b'[') {
                    return Frame::Garbage;
                }
                self.start = Some(start);
                self.pos = start;
                start
            }
        };
        // One byte more than the limit is enough to know the value is too large.
        let limit = buf
            .len()
            .min(start.saturating_add(MAX_REQUEST_BYTES).saturating_add(1));
        for (i, &b) in buf.iter().enumerate().take(limit).skip(self.pos) {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        self.pos = i + 1;
                        return if i + 1 - start > MAX_REQUEST_BYTES {
                            Frame::TooLarge
                        } else {
                            Frame::Complete { start, end: i + 1 }
                        };
                    }
                }
                _ => {}
            }
        }
        self.pos = limit;
        if limit - start > MAX_REQUEST_BYTES {
            Frame::TooLarge
        } else {
            Frame::Incomplete
        }
    }
}

/// Scans `buf` for the first complete top-level JSON object or array.
pub fn next_frame(buf: &[u8]) -> Frame {
    Scanner::default().scan(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn finds_objects_however_split() {
        let two = br#" {"a":"}{\"","b":[1,{}]}{"c":1}"#;
        let Frame::Complete { start, end } = next_frame(two) else {
            panic!()
        };
        assert_eq!(&two[start..end], br#"{"a":"}{\"","b":[1,{}]}"#);
        assert_eq!(
            next_frame(&two[end..]),
            Frame::Complete { start: 0, end: 7 }
        );
        for cut in 0..two.len() - 8 {
            assert!(
                matches!(next_frame(&two[..cut]), Frame::Empty | Frame::Incomplete),
                "{cut}"
            );
        }
        assert_eq!(next_frame(b"  \n"), Frame::Empty);
        assert_eq!(next_frame(b"hello"), Frame::Garbage);
    }

    #[test]
    fn a_scanner_resumes_where_it_stopped() {
        let two = br#" {"a":"}{\"","b":[1,{}]}{"c":1}"#;
        for step in 1..8 {
            let mut scanner = Scanner::default();
            let mut seen = 0;
            let found = loop {
                seen = (seen + step).min(two.len());
                match scanner.scan(&two[..seen]) {
                    Frame::Incomplete | Frame::Empty => continue,
                    other => break other,
                }
            };
            assert_eq!(found, Frame::Complete { start: 1, end: 24 }, "step {step}");
        }
    }

    #[test]
    fn the_size_limit_is_exact() {
        // `{"x":"…"}` of exactly the limit, then one byte more.
        let at_limit = |extra: usize| {
            let mut v = br#"{"x":""#.to_vec();
            v.resize(MAX_REQUEST_BYTES - 2 + extra, b'y');
            v.extend_from_slice(br#""}"#);
            v
        };
        let ok = at_limit(0);
        assert_eq!(ok.len(), MAX_REQUEST_BYTES);
        assert_eq!(
            next_frame(&ok),
            Frame::Complete {
                start: 0,
                end: MAX_REQUEST_BYTES
            }
        );
        let mut padded = b"  ".to_vec();
        padded.extend_from_slice(&ok);
        assert_eq!(
            next_frame(&padded),
            Frame::Complete {
                start: 2,
                end: MAX_REQUEST_BYTES + 2
            }
        );
        assert_eq!(next_frame(&at_limit(1)), Frame::TooLarge);
        // Known too large before the value ends, however it arrives.
        let big = at_limit(1);
        assert_eq!(next_frame(&big[..MAX_REQUEST_BYTES]), Frame::Incomplete);
        assert_eq!(next_frame(&big[..=MAX_REQUEST_BYTES]), Frame::TooLarge);
        let mut scanner = Scanner::default();
        let mut outcome = Frame::Incomplete;
        for end in (0..big.len()).step_by(65_536).skip(1).chain([big.len()]) {
            outcome = scanner.scan(&big[..end]);
            if outcome != Frame::Incomplete {
                break;
            }
        }
        assert_eq!(outcome, Frame::TooLarge);
    }

    proptest! {
        #[test]
        fn any_serialised_value_is_one_frame(s in "\\PC{0,50}", n in any::<i64>()) {
            let v = serde_json::json!({"s": s, "n": n, "a": [s.clone(), {"x": s}]});
            let text = format!("{v}{v}");
            let Frame::Complete { start, end } = next_frame(text.as_bytes()) else { panic!() };
            prop_assert_eq!(&text[start..end], v.to_string());
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = next_frame(&bytes);
        }

        #[test]
        fn a_resumed_scan_finds_what_one_scan_finds(bytes in proptest::collection::vec(any::<u8>(), 0..200), cuts in proptest::collection::vec(0usize..200, 0..8)) {
            let whole = next_frame(&bytes);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            cuts.push(bytes.len());
            let mut scanner = Scanner::default();
            let mut last = Frame::Empty;
            for c in cuts {
                last = scanner.scan(&bytes[..c]);
                if matches!(last, Frame::Complete { .. } | Frame::Garbage | Frame::TooLarge) {
                    break;
                }
                if last == Frame::Empty {
                    // What the connection does: nothing but white space is dropped.
                    scanner = Scanner::default();
                }
            }
            prop_assert_eq!(last, whole);
        }
    }
}
