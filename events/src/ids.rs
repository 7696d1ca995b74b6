//! What names a payment and what counts the log: payment hashes, payment secrets and preimages,
//! node ids, and the four indexes. Each is its own type, so that one cannot stand for another.
//!
//! # Encodings
//! The codec writes each exactly as it wrote the raw value it replaced — a 32-byte value as 32
//! bytes, a node id as a length and 33 bytes (it was a `Vec<u8>`), an index as its integer — so
//! the records of every log ever written decode unchanged (the golden files pin this). Formats
//! meant for people (JSON) show bytes in hex.
//!
//! # Secrets
//! A [`PaymentSecret`] or a [`PaymentPreimage`] is compared in time that does not depend on where two
//! differ (as Core Lightning compares them), and neither shows its bytes in `Debug`.

use core::fmt;
use core::str::FromStr;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a hex text is not the value it should be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("should be {0} hex digits")]
pub struct HexError(pub usize);

fn from_hex<const N: usize>(s: &str) -> Result<[u8; N], HexError> {
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|_| HexError(2 * N))?;
    Ok(out)
}

/// Bytes shown as lower-case hex, written without an intermediate string.
struct HexDisplay<'a>(&'a [u8]);

impl fmt::Display for HexDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

fn serialize_bytes32<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    if s.is_human_readable() {
        s.collect_str(&HexDisplay(bytes))
    } else {
        bytes.serialize(s)
    }
}

fn deserialize_bytes32<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
    if d.is_human_readable() {
        let text = String::deserialize(d)?;
        from_hex(&text).map_err(D::Error::custom)
    } else {
        <[u8; 32]>::deserialize(d)
    }
}

/// Serde for a plain `[u8; 32]` field: the codec's 32 bytes, hex for people.
pub mod hex32 {
    use serde::{Deserializer, Serializer};

    /// Serializes `bytes`.
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        super::serialize_bytes32(bytes, s)
    }

    /// Deserializes 32 bytes.
    ///
    /// # Errors
    /// The deserializer's, or a text that is not 64 hex digits.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        super::deserialize_bytes32(d)
    }
}

/// Serde for an optional `[u8; 32]` field (see [`hex32`]).
pub mod hex32_opt {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Wrap(#[serde(with = "super::hex32")] [u8; 32]);

    /// Serializes `bytes`.
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize<S: Serializer>(bytes: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
        bytes.map(Wrap).serialize(s)
    }

    /// Deserializes optional 32 bytes.
    ///
    /// # Errors
    /// The deserializer's.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u8; 32]>, D::Error> {
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}

/// The parts every 32-byte value shares: construction, access, hex, serde.
macro_rules! bytes32 {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// The value of these bytes.
            pub const fn from_byte_array(bytes: [u8; 32]) -> Self {
                $name(bytes)
            }

            /// Its bytes.
            pub const fn to_byte_array(self) -> [u8; 32] {
                self.0
            }

            /// Its bytes, borrowed.
            pub const fn as_byte_array(&self) -> &[u8; 32] {
                &self.0
            }

            /// Its bytes in hex.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl From<[u8; 32]> for $name {
            fn from(bytes: [u8; 32]) -> Self {
                $name(bytes)
            }
        }

        impl FromStr for $name {
            type Err = HexError;

            fn from_str(s: &str) -> Result<Self, HexError> {
                from_hex(s).map($name)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                serialize_bytes32(&self.0, s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                deserialize_bytes32(d).map($name)
            }
        }
    };
}

bytes32! {
    /// A payment hash: SHA256 of the preimage, what an invoice commits to and an HTLC pays.
    #[derive(PartialEq, Eq, PartialOrd, Ord, Hash)]
    PaymentHash
}

bytes32! {
    /// A payment secret (BOLT11's `s` field): only a payer who saw the invoice knows it.
    PaymentSecret
}

bytes32! {
    /// A payment preimage: whoever holds it can take the payment.
    PaymentPreimage
}

impl PaymentHash {
    /// The payment hash of `preimage`.
    pub fn of(preimage: &PaymentPreimage) -> PaymentHash {
        use bitcoin::hashes::{sha256, Hash as _};
        PaymentHash(sha256::Hash::hash(&preimage.0).to_byte_array())
    }
}

impl fmt::Display for PaymentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PaymentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PaymentHash({})", self.to_hex())
    }
}

/// Whether two secrets are equal, in time that does not depend on where they differ.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    use subtle::ConstantTimeEq as _;
    bool::from(a.ct_eq(b))
}

impl PartialEq for PaymentSecret {
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(&self.0, &other.0)
    }
}

impl Eq for PaymentSecret {}

impl fmt::Debug for PaymentSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PaymentSecret(..)")
    }
}

impl PartialEq for PaymentPreimage {
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(&self.0, &other.0)
    }
}

impl Eq for PaymentPreimage {}

impl fmt::Debug for PaymentPreimage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PaymentPreimage(..)")
    }
}

/// A node's id: its public key, 33 bytes compressed.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub [u8; 33]);

impl NodeId {
    /// The id of these bytes (a compressed public key, checked where it enters).
    pub const fn from_byte_array(bytes: [u8; 33]) -> Self {
        NodeId(bytes)
    }

    /// Its bytes.
    pub const fn as_byte_array(&self) -> &[u8; 33] {
        &self.0
    }

    /// Its bytes in hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl AsRef<[u8]> for NodeId {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.to_hex())
    }
}

impl TryFrom<&[u8]> for NodeId {
    type Error = HexError;

    fn try_from(bytes: &[u8]) -> Result<Self, HexError> {
        <[u8; 33]>::try_from(bytes)
            .map(NodeId)
            .map_err(|_| HexError(66))
    }
}

impl Serialize for NodeId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(&HexDisplay(&self.0))
        } else {
            // As the `Vec<u8>` it was: a length, then the bytes.
            self.0.as_slice().serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let text = String::deserialize(d)?;
            from_hex(&text).map(NodeId).map_err(D::Error::custom)
        } else {
            let bytes = Vec::<u8>::deserialize(d)?;
            NodeId::try_from(bytes.as_slice()).map_err(D::Error::custom)
        }
    }
}

/// What the four indexes share: 1-based counters, stamped in commit order, never reused; 0
/// means none yet.
pub trait Index: Copy + Eq + Ord + fmt::Debug {
    /// The name Core Lightning gives it (`created_index`, …).
    const NAME: &'static str;

    /// The count itself.
    fn get(self) -> u64;

    /// The value after `self`, what the next stamp gets.
    #[must_use]
    fn next(self) -> Self;
}

/// The parts every index shares (see [`Index`]).
macro_rules! index {
    ($(#[$meta:meta])* $name:ident, $field:literal) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl $name {
            /// The count itself.
            pub const fn get(self) -> u64 {
                self.0
            }

            /// The value after this one (what the next stamp gets); a counter does not reach
            /// `u64::MAX`, and if it did it would stay there rather than wrap.
            #[must_use]
            pub const fn next(self) -> Self {
                $name(self.0.saturating_add(1))
            }
        }

        impl Index for $name {
            const NAME: &'static str = $field;

            fn get(self) -> u64 {
                self.0
            }

            fn next(self) -> Self {
                $name::next(self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

index! {
    /// An invoice's creation counter (`created_index`): its identity in the log.
    CreatedIndex, "created_index"
}

index! {
    /// The payment counter (`pay_index`): paid invoices in the order they were paid.
    PayIndex, "pay_index"
}

index! {
    /// The shared update counter (`updated_index`): any change after creation.
    UpdatedIndex, "updated_index"
}

index! {
    /// The deletion counter (`deleted_index`): deleted and cleaned invoices.
    DeletedIndex, "deleted_index"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc<T: Serialize>(v: &T) -> Vec<u8> {
        bincode::serde::encode_to_vec(v, bincode::config::standard()).unwrap()
    }

    #[test]
    fn the_codec_writes_each_as_the_raw_value_it_replaced() {
        let hash = [7u8; 32];
        assert_eq!(enc(&PaymentHash::from_byte_array(hash)), enc(&hash));
        assert_eq!(enc(&PaymentSecret::from_byte_array(hash)), enc(&hash));
        let node = [2u8; 33];
        assert_eq!(enc(&NodeId::from_byte_array(node)), enc(&node.to_vec()));
        assert_eq!(enc(&CreatedIndex(300)), enc(&300u64));
        assert_eq!(enc(&Some(PayIndex(70_000))), enc(&Some(70_000u64)));
    }

    #[test]
    fn people_read_hex_and_the_codec_reads_back_what_it_wrote() {
        let hash = PaymentHash::from_byte_array([0xab; 32]);
        let json = serde_json::to_string(&hash).unwrap();
        assert_eq!(json, format!("\"{}\"", "ab".repeat(32)));
        assert_eq!(serde_json::from_str::<PaymentHash>(&json).unwrap(), hash);
        let node = NodeId::from_byte_array([3; 33]);
        let cfg = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(node, cfg).unwrap();
        let (back, _): (NodeId, _) = bincode::serde::decode_from_slice(&bytes, cfg).unwrap();
        assert_eq!(back, node);
        let short = bincode::serde::encode_to_vec(vec![3u8; 32], cfg).unwrap();
        assert!(bincode::serde::decode_from_slice::<NodeId, _>(&short, cfg).is_err());
    }

    #[test]
    fn secrets_compare_by_value_and_hide_their_bytes() {
        let a = PaymentSecret::from_byte_array([1; 32]);
        let mut other = [1; 32];
        assert_eq!(a, PaymentSecret::from_byte_array(other));
        other[31] = 2;
        assert_ne!(a, PaymentSecret::from_byte_array(other));
        assert_eq!(format!("{a:?}"), "PaymentSecret(..)");
        assert_eq!(
            format!("{:?}", PaymentPreimage::from_byte_array([9; 32])),
            "PaymentPreimage(..)"
        );
    }

    #[test]
    fn a_hash_is_the_sha256_of_its_preimage() {
        // SHA256 of 32 zero bytes.
        assert_eq!(
            PaymentHash::of(&PaymentPreimage::from_byte_array([0; 32])).to_hex(),
            "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925"
        );
    }
}
