//! BOLT 1's BigSize, the variable-length integer of TLV types and lengths (onions, BOLT12).

/// Appends `v` as a BigSize (the shortest encoding).
pub fn write(out: &mut Vec<u8>, v: u64) {
    match v {
        0..=0xfc => out.push(v as u8),
        0xfd..=0xffff => {
            out.push(0xfd);
            out.extend_from_slice(&(v as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xfe);
            out.extend_from_slice(&(v as u32).to_be_bytes());
        }
        _ => {
            out.push(0xff);
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
}

/// Reads a BigSize off the front of `rest`, refusing a non-minimal encoding.
///
/// # Errors
/// `"truncated"` or `"BigSize not minimal"`.
pub fn read(rest: &mut &[u8]) -> Result<u64, &'static str> {
    let (&first, tail) = rest.split_first().ok_or("truncated")?;
    let (len, min) = match first {
        0xfd => (2, 0xfd),
        0xfe => (4, 0x1_0000),
        0xff => (8, 0x1_0000_0000),
        v => {
            *rest = tail;
            return Ok(u64::from(v));
        }
    };
    let bytes = tail.get(..len).ok_or("truncated")?;
    let v = bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    if v < min {
        return Err("BigSize not minimal");
    }
    *rest = &tail[len..];
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn round_trips(v in proptest::prelude::any::<u64>()) {
            let mut out = Vec::new();
            write(&mut out, v);
            let mut rest = out.as_slice();
            proptest::prop_assert_eq!(read(&mut rest), Ok(v));
            proptest::prop_assert!(rest.is_empty());
        }
    }

    #[test]
    fn refuses_what_bolt1_refuses() {
        assert_eq!(read(&mut &[0xfd, 0, 0xfc][..]), Err("BigSize not minimal"));
        assert_eq!(
            read(&mut &[0xfe, 0, 0, 0xff, 0xff][..]),
            Err("BigSize not minimal")
        );
        assert_eq!(read(&mut &[0xfd, 0][..]), Err("truncated"));
        assert_eq!(read(&mut &[0xfd, 0, 0xfd][..]), Ok(0xfd));
    }
}
