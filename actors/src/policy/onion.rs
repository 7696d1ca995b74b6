//! Sphinx onions (BOLT 4) as the node they are addressed to reads them: one layer peeled with
//! the node's key, its hop payload's TLVs, and whether the node is the last hop.
//!
//! Pure: the caller gives the node key (the KeySigner holds it). The layout and the cryptography
//! are BOLT 4's ("Packet Structure", "Shared Secret", "Key Generation", "Onion Decryption"): a
//! 1,366-byte packet (version 0, a 33-byte ephemeral key, 1,300 bytes of hop payloads, a 32-byte
//! HMAC); the shared secret is SHA256 of the compressed ECDH point; `mu` and `rho` are
//! HMAC-SHA256 keyed by their names over it; the HMAC covers the hop payloads and the payment
//! hash; the payloads are read through ChaCha20 keyed by `rho`; a payload is a BigSize length and
//! a TLV stream, followed by the next hop's HMAC, all zero at the last hop.

use bitcoin::hashes::{hmac, sha256, Hash as _, HashEngine as _};
use chacha20::cipher::{KeyIvInit as _, StreamCipher as _};
use secp256k1::{ecdh::SharedSecret, PublicKey, SecretKey};

/// The length of an onion packet.
pub const ONION_LEN: usize = 1 + 33 + HOP_PAYLOADS + 32;
const HOP_PAYLOADS: usize = 1300;

/// Why an onion could not be read (each is the node's `invalid_onion_*` or a bad payload).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OnionError {
    /// Not 1,366 bytes.
    #[error("onion: should be {ONION_LEN} bytes, not {0}")]
    Length(usize),
    /// An unknown version.
    #[error("onion: unknown version {0}")]
    Version(u8),
    /// The ephemeral key is not a point.
    #[error("onion: the ephemeral key is not a valid public key")]
    Key,
    /// Not for this node, or altered (the HMAC does not match).
    #[error("onion: HMAC mismatch (not for this node, or altered)")]
    Hmac,
    /// The hop payload cannot be read.
    #[error("onion: bad hop payload: {0}")]
    Payload(&'static str),
}

/// What one hop's payload says (BOLT 4 `payload`), the fields a final node reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HopPayload {
    /// `amt_to_forward` (2): what this hop must receive (the last hop) or forward.
    pub amt_to_forward: u64,
    /// `outgoing_cltv_value` (4).
    pub outgoing_cltv_value: u32,
    /// `short_channel_id` (6): where to forward; absent at the last hop.
    pub short_channel_id: Option<u64>,
    /// `payment_data` (8): the payment secret.
    pub payment_secret: Option<[u8; 32]>,
    /// `payment_data` (8): the whole payment's amount.
    pub total_msat: Option<u64>,
    /// `encrypted_recipient_data` (10), in a blinded path.
    pub encrypted_recipient_data: Option<Vec<u8>>,
    /// `current_path_key` (12), in a blinded path.
    pub current_path_key: Option<[u8; 33]>,
    /// `payment_metadata` (16).
    pub payment_metadata: Option<Vec<u8>>,
    /// `total_amount_msat` (18), in a blinded path.
    pub total_amount_msat: Option<u64>,
}

/// One layer, peeled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peeled {
    /// This hop's payload.
    pub payload: HopPayload,
    /// Whether this node is the last hop (the next HMAC is all zero).
    pub last_hop: bool,
}

fn hmac256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut engine = hmac::HmacEngine::<sha256::Hash>::new(key);
    for p in parts {
        engine.input(p);
    }
    hmac::Hmac::<sha256::Hash>::from_engine(engine).to_byte_array()
}

/// Peels the layer of `onion` meant for the node with `node_key`, for a payment to
/// `payment_hash` (the HMAC's associated data).
///
/// # Errors
/// [`OnionError`]: a packet that is not BOLT 4's, not for this node, or whose payload is bad.
pub fn peel(
    onion: &[u8],
    payment_hash: &[u8; 32],
    node_key: &SecretKey,
) -> Result<Peeled, OnionError> {
    if onion.len() != ONION_LEN {
        return Err(OnionError::Length(onion.len()));
    }
    if onion[0] != 0 {
        return Err(OnionError::Version(onion[0]));
    }
    let ephemeral = PublicKey::from_slice(&onion[1..34]).map_err(|_| OnionError::Key)?;
    let payloads = &onion[34..34 + HOP_PAYLOADS];
    let shared = SharedSecret::new(&ephemeral, node_key).secret_bytes();
    let mu = hmac256(b"mu", &[&shared]);
    let rho = hmac256(b"rho", &[&shared]);
    let expected = hmac256(&mu, &[payloads, payment_hash]);
    // Compared in time that does not depend on where they differ.
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        &expected[..],
        &onion[34 + HOP_PAYLOADS..],
    )) {
        return Err(OnionError::Hmac);
    }
    let mut clear = [0u8; 2 * HOP_PAYLOADS];
    clear[..HOP_PAYLOADS].copy_from_slice(payloads);
    chacha20::ChaCha20::new(&rho.into(), &[0u8; 12].into()).apply_keystream(&mut clear);
    let mut r = Reader(&clear);
    let len = usize::try_from(r.bigsize()?).map_err(|_| OnionError::Payload("length"))?;
    if !(2..=HOP_PAYLOADS).contains(&len) {
        return Err(OnionError::Payload("length"));
    }
    let mut payload = read_tlvs(r.take(len)?)?;
    let next_hmac = r.take(32)?;
    if let (Some(data), Some(path_key)) =
        (&payload.encrypted_recipient_data, &payload.current_path_key)
    {
        // A blinded path's last hop: its `path_id` stands for the payment secret and its
        // `total_amount_msat` for `total_msat`, as lightningd reads them (`onion_decode`).
        payload.payment_secret = path_id(data, path_key, node_key)?;
        payload.total_msat = payload.total_amount_msat;
    }
    Ok(Peeled {
        payload,
        last_hop: next_hmac.iter().all(|b| *b == 0),
    })
}

/// The `path_id` (type 6, when 32 bytes) of a blinded hop's `encrypted_recipient_data`, opened as
/// BOLT 4's route blinding says: ss = SHA256(ECDH(path key, node key)), rho = HMAC("rho", ss),
/// ChaCha20-Poly1305 with rho and a zero nonce.
fn path_id(
    data: &[u8],
    path_key: &[u8; 33],
    node_key: &SecretKey,
) -> Result<Option<[u8; 32]>, OnionError> {
    use chacha20poly1305::aead::{AeadInPlace as _, KeyInit as _};
    let key =
        PublicKey::from_slice(path_key).map_err(|_| OnionError::Payload("current_path_key"))?;
    let ss = SharedSecret::new(&key, node_key).secret_bytes();
    let rho = hmac256(b"rho", &[&ss]);
    let cut = data
        .len()
        .checked_sub(16)
        .ok_or(OnionError::Payload("encrypted_recipient_data"))?;
    let (body, tag) = data.split_at(cut);
    let mut clear = body.to_vec();
    chacha20poly1305::ChaCha20Poly1305::new(&rho.into())
        .decrypt_in_place_detached(&[0u8; 12].into(), &[], &mut clear, tag.into())
        .map_err(|_| OnionError::Payload("encrypted_recipient_data"))?;
    let mut r = Reader(&clear);
    while !r.0.is_empty() {
        let (ty, len) = (r.bigsize()?, r.bigsize()?);
        let value = r.take(
            usize::try_from(len).map_err(|_| OnionError::Payload("encrypted_recipient_data"))?,
        )?;
        if ty == 6 {
            return Ok(value.try_into().ok());
        }
    }
    Ok(None)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], OnionError> {
        if self.0.len() < n {
            return Err(OnionError::Payload("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    /// BOLT 1's BigSize, minimally encoded.
    fn bigsize(&mut self) -> Result<u64, OnionError> {
        super::bigsize::read(&mut self.0).map_err(OnionError::Payload)
    }
}

/// A truncated unsigned integer (`tu64`): big-endian, no leading zero, at most 8 bytes.
fn tu64(bytes: &[u8]) -> Result<u64, OnionError> {
    if bytes.len() > 8 || bytes.first() == Some(&0) {
        return Err(OnionError::Payload("tu64 not minimal"));
    }
    Ok(bytes.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b)))
}

fn read_tlvs(stream: &[u8]) -> Result<HopPayload, OnionError> {
    let mut r = Reader(stream);
    let mut p = HopPayload::default();
    let (mut last, mut amount, mut cltv) = (None, None, None);
    while !r.0.is_empty() {
        let kind = r.bigsize()?;
        if last.is_some_and(|l| kind <= l) {
            return Err(OnionError::Payload("TLV types out of order"));
        }
        last = Some(kind);
        let len = usize::try_from(r.bigsize()?).map_err(|_| OnionError::Payload("TLV length"))?;
        let value = r.take(len)?;
        match kind {
            2 => amount = Some(tu64(value)?),
            4 => {
                cltv = Some(
                    u32::try_from(tu64(value)?)
                        .map_err(|_| OnionError::Payload("outgoing_cltv_value"))?,
                )
            }
            6 => {
                p.short_channel_id = Some(u64::from_be_bytes(
                    value
                        .try_into()
                        .map_err(|_| OnionError::Payload("short_channel_id"))?,
                ))
            }
            8 => {
                let (secret, total) = value
                    .split_at_checked(32)
                    .ok_or(OnionError::Payload("payment_data"))?;
                p.payment_secret = Some(
                    secret
                        .try_into()
                        .map_err(|_| OnionError::Payload("payment_data"))?,
                );
                p.total_msat = Some(tu64(total)?);
            }
            10 => p.encrypted_recipient_data = Some(value.to_vec()),
            12 => {
                p.current_path_key = Some(
                    value
                        .try_into()
                        .map_err(|_| OnionError::Payload("current_path_key"))?,
                )
            }
            16 => p.payment_metadata = Some(value.to_vec()),
            18 => p.total_amount_msat = Some(tu64(value)?),
            // "It's OK to be odd": an unknown odd type is skipped, an unknown even one refused.
            k if k % 2 == 1 => {}
            _ => return Err(OnionError::Payload("unknown even TLV type")),
        }
    }
    p.amt_to_forward = amount.ok_or(OnionError::Payload("no amt_to_forward"))?;
    p.outgoing_cltv_value = cltv.ok_or(OnionError::Payload("no outgoing_cltv_value"))?;
    Ok(p)
}

/// Builds a one-hop onion to `node` (the sender's side, BOLT 4 "Packet Construction", for one
/// hop): what a payer to this node sends. For tests, and for checking [`peel`] against it.
pub fn wrap_last_hop(
    session_key: &SecretKey,
    node: &PublicKey,
    payment_hash: &[u8; 32],
    payload_tlvs: &[u8],
) -> Vec<u8> {
    wrap_hop(session_key, node, payment_hash, payload_tlvs, &[0u8; 32])
}

/// As [`wrap_last_hop`], with `next_hmac` after the payload: not all zero, the hop is told to
/// forward (what follows is not a real onion; only this hop's layer is).
pub fn wrap_hop(
    session_key: &SecretKey,
    node: &PublicKey,
    payment_hash: &[u8; 32],
    payload_tlvs: &[u8],
    next_hmac: &[u8; 32],
) -> Vec<u8> {
    let secp = secp256k1::Secp256k1::new();
    let ephemeral = PublicKey::from_secret_key(&secp, session_key);
    let shared = SharedSecret::new(node, session_key).secret_bytes();
    let (mu, rho, pad) = (
        hmac256(b"mu", &[&shared]),
        hmac256(b"rho", &[&shared]),
        hmac256(b"pad", &[&shared]),
    );
    // Start from the "pad" stream, put the payload and a zero HMAC in front, encrypt with rho.
    let mut payloads = [0u8; HOP_PAYLOADS];
    chacha20::ChaCha20::new(&pad.into(), &[0u8; 12].into()).apply_keystream(&mut payloads);
    let mut hop = Vec::new();
    super::bigsize::write(&mut hop, payload_tlvs.len() as u64);
    hop.extend_from_slice(payload_tlvs);
    hop.extend_from_slice(next_hmac);
    payloads[..hop.len()].copy_from_slice(&hop);
    chacha20::ChaCha20::new(&rho.into(), &[0u8; 12].into()).apply_keystream(&mut payloads);
    let hmac = hmac256(&mu, &[&payloads, payment_hash]);
    let mut onion = vec![0u8];
    onion.extend_from_slice(&ephemeral.serialize());
    onion.extend_from_slice(&payloads);
    onion.extend_from_slice(&hmac);
    onion
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(kind: u8, value: &[u8]) -> Vec<u8> {
        let mut v = vec![kind, value.len() as u8];
        v.extend_from_slice(value);
        v
    }

    fn key(b: u8) -> SecretKey {
        SecretKey::from_slice(&[b; 32]).unwrap()
    }

    #[test]
    fn a_last_hop_payload_is_read_back() {
        let node = key(0x42);
        let node_id = PublicKey::from_secret_key(&secp256k1::Secp256k1::new(), &node);
        let hash = [7u8; 32];
        let mut payload = tlv(2, &[0x01, 0x86, 0xa0]);
        payload.extend(tlv(4, &[0x02, 0x9a]));
        let mut data = vec![9u8; 32];
        data.extend_from_slice(&[0x01, 0x86, 0xa0]);
        payload.extend(tlv(8, &data));
        let onion = wrap_last_hop(&key(0x41), &node_id, &hash, &payload);
        assert_eq!(onion.len(), ONION_LEN);
        let peeled = peel(&onion, &hash, &node).unwrap();
        assert!(peeled.last_hop);
        let p = peeled.payload;
        assert_eq!(
            (
                p.amt_to_forward,
                p.outgoing_cltv_value,
                p.payment_secret,
                p.total_msat
            ),
            (100_000, 666, Some([9; 32]), Some(100_000))
        );
        // Another node, another payment hash, a flipped bit: not ours.
        assert_eq!(peel(&onion, &hash, &key(0x43)), Err(OnionError::Hmac));
        assert_eq!(peel(&onion, &[8u8; 32], &node), Err(OnionError::Hmac));
        let mut flipped = onion.clone();
        flipped[500] ^= 1;
        assert_eq!(peel(&flipped, &hash, &node), Err(OnionError::Hmac));
        assert_eq!(
            peel(&onion[1..], &hash, &node),
            Err(OnionError::Length(ONION_LEN - 1))
        );
    }

    /// The last hop of a blinded path (a BOLT12 payment): the `path_id` inside its encrypted
    /// recipient data is the payment secret, `total_amount_msat` the total.
    #[test]
    fn a_blinded_last_hop_gives_its_path_id() {
        use chacha20poly1305::aead::{AeadInPlace as _, KeyInit as _};
        let secp = secp256k1::Secp256k1::new();
        let node = key(0x42);
        let node_id = PublicKey::from_secret_key(&secp, &node);
        let path_key = key(0x07);
        let ss = SharedSecret::new(&node_id, &path_key).secret_bytes();
        let mut data = tlv(6, &[5; 32]);
        let tag = chacha20poly1305::ChaCha20Poly1305::new(&hmac256(b"rho", &[&ss]).into())
            .encrypt_in_place_detached(&[0u8; 12].into(), &[], &mut data)
            .unwrap();
        data.extend_from_slice(&tag);
        let hash = [7u8; 32];
        let mut payload = tlv(2, &[0x13, 0x88]);
        payload.extend(tlv(4, &[0x02, 0x9a]));
        payload.extend(tlv(10, &data));
        payload.extend(tlv(
            12,
            &PublicKey::from_secret_key(&secp, &path_key).serialize(),
        ));
        payload.extend(tlv(18, &[0x13, 0x88]));
        let peeled = peel(
            &wrap_last_hop(&key(0x41), &node_id, &hash, &payload),
            &hash,
            &node,
        )
        .unwrap();
        assert_eq!(
            (peeled.payload.payment_secret, peeled.payload.total_msat),
            (Some([5; 32]), Some(5000))
        );
        // Recipient data sealed for another node does not open.
        let other = PublicKey::from_secret_key(&secp, &key(0x43));
        let mut wrong = payload.clone();
        wrong.truncate(payload.len() - 4 - 35);
        wrong.extend(tlv(12, &other.serialize()));
        wrong.extend(tlv(18, &[0x13, 0x88]));
        let onion = wrap_last_hop(&key(0x41), &node_id, &hash, &wrong);
        assert_eq!(
            peel(&onion, &hash, &node),
            Err(OnionError::Payload("encrypted_recipient_data"))
        );
    }

    #[test]
    fn payload_rules() {
        assert_eq!(
            read_tlvs(&[4, 1, 1, 2, 1, 1]),
            Err(OnionError::Payload("TLV types out of order"))
        );
        assert_eq!(
            read_tlvs(&[2, 2, 0, 1, 4, 1, 1]),
            Err(OnionError::Payload("tu64 not minimal"))
        );
        assert_eq!(
            read_tlvs(&[2, 1, 1]),
            Err(OnionError::Payload("no outgoing_cltv_value"))
        );
        assert_eq!(
            read_tlvs(&[2, 1, 1, 4, 1, 1, 20, 0]),
            Err(OnionError::Payload("unknown even TLV type"))
        );
        assert_eq!(
            read_tlvs(&[2, 1, 1, 4, 1, 1, 21, 1, 9])
                .unwrap()
                .amt_to_forward,
            1
        );
        assert_eq!(
            Reader(&[0xfd, 0, 0xfc]).bigsize(),
            Err(OnionError::Payload("BigSize not minimal"))
        );
        assert_eq!(Reader(&[0xfd, 0, 0xfd]).bigsize(), Ok(0xfd));
    }
}
