//! Finding whole JSON requests in a byte stream.
//!
//! Core Lightning's clients do not delimit requests: a request is one JSON object, however the
//! stream splits it, and several may follow each other. [`next_frame`] scans the buffered bytes
//! for the end of the first top-level value, tracking strings and escapes, without parsing.

/// The largest request accepted, in bytes (SPEC §3).
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
    /// Something that is not an object or array: the stream cannot be resynchronised.
    Garbage,
}

/// Scans `buf` for the first complete top-level JSON object or array.
pub fn next_frame(buf: &[u8]) -> Frame {
    let Some(start) = buf.iter().position(|b| !b.is_ascii_whitespace()) else {
        return Frame::Empty;
    };
    if !matches!(buf[start], b'{' | b'[') {
        return Frame::Garbage;
    }
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in buf.iter().enumerate().skip(start) {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Frame::Complete { start, end: i + 1 };
                }
            }
            _ => {}
        }
    }
    Frame::Incomplete
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn finds_objects_however_split() {
        let two = br#" {"a":"}{\"","b":[1,{}]}{"c":1}"#;
        let Frame::Complete { start, end } = next_frame(two) else { panic!() };
        assert_eq!(&two[start..end], br#"{"a":"}{\"","b":[1,{}]}"#);
        assert_eq!(next_frame(&two[end..]), Frame::Complete { start: 0, end: 7 });
        for cut in 0..two.len() - 8 {
            assert!(matches!(next_frame(&two[..cut]), Frame::Empty | Frame::Incomplete), "{cut}");
        }
        assert_eq!(next_frame(b"  \n"), Frame::Empty);
        assert_eq!(next_frame(b"hello"), Frame::Garbage);
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
    }
}
