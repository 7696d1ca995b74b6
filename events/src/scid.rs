//! Short channel ids (`BLOCKxTXxOUTPUT`).

use core::fmt;
use core::str::FromStr;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A short channel id: 3 bytes block height, 3 bytes transaction index, 2 bytes output index.
///
/// The codec writes it as its 64-bit encoding; formats meant for people show `BxTxO`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShortChannelId(u64);

impl Serialize for ShortChannelId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for ShortChannelId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            String::deserialize(d)?.parse().map_err(D::Error::custom)
        } else {
            u64::deserialize(d).map(ShortChannelId)
        }
    }
}

/// Why a short channel id text was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a short channel id of form NxNxN")]
pub struct ScidError;

impl ShortChannelId {
    /// Makes an scid from its three parts.
    ///
    /// # Errors
    /// [`ScidError`] when block or tx index is at least 2^24 or output at least 2^16.
    pub fn new(block: u32, tx: u32, output: u32) -> Result<Self, ScidError> {
        if block >= 1 << 24 || tx >= 1 << 24 || output >= 1 << 16 {
            return Err(ScidError);
        }
        Ok(ShortChannelId(
            (u64::from(block) << 40) | (u64::from(tx) << 16) | u64::from(output),
        ))
    }

    /// The 64-bit encoding used on the wire and in BOLT11 route hints.
    pub fn to_u64(self) -> u64 {
        self.0
    }

    /// The scid from its 64-bit wire encoding.
    pub fn from_u64(v: u64) -> Self {
        ShortChannelId(v)
    }
}

impl FromStr for ShortChannelId {
    type Err = ScidError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.split('x');
        let mut next = || -> Result<u32, ScidError> {
            let p = parts.next().ok_or(ScidError)?;
            if p.is_empty() || p.len() > 8 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ScidError);
            }
            p.parse().map_err(|_| ScidError)
        };
        let (block, tx, output) = (next()?, next()?, next()?);
        if parts.next().is_some() {
            return Err(ScidError);
        }
        ShortChannelId::new(block, tx, output)
    }
}

impl fmt::Display for ShortChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}x{}x{}",
            self.0 >> 40,
            (self.0 >> 16) & 0xff_ffff,
            self.0 & 0xffff
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_refuses() {
        assert_eq!(
            "118x1x0".parse::<ShortChannelId>().map(|s| s.to_string()),
            Ok("118x1x0".into())
        );
        for bad in [
            "",
            "1x1",
            "1x1x1x1",
            "axbxc",
            "16777216x0x0",
            "1x1x65536",
            "1x1x1z",
            "-1x1x1",
        ] {
            assert!(bad.parse::<ShortChannelId>().is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn round_trips(b in 0u32..1<<24, t in 0u32..1<<24, o in 0u32..1<<16) {
            let s = ShortChannelId::new(b, t, o).unwrap();
            prop_assert_eq!(s.to_string().parse::<ShortChannelId>(), Ok(s));
            prop_assert_eq!(ShortChannelId::from_u64(s.to_u64()), s);
        }
    }
}
