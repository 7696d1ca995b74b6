//! BOLT12 invoices as Core Lightning's `createinvoice` completes and signs them.
//!
//! The node's offers plugin answers an `invoice_request` with an unsigned invoice (`lni1…`
//! without `signature`). `createinvoice` then, as `lightningd/invoice.c` does:
//! - adds a one-hop blinded path to the node when the invoice has none ([`Invoice::add_stub_path`]):
//!   its `encrypted_recipient_data` carries `path_id` = SHA256(`bolt12-invoice-base` secret ‖
//!   payment hash) ([`path_id`]), which the payer's onion brings back as the final hop's
//!   `payment_secret`, so the invoice's payments are recognised without a payment secret;
//! - signs it with the node key: BIP340 over the tagged hash of its Merkle root ([`Invoice::sign`]).
//!
//! An invoice is kept as its TLV records, as they were sent: fields this module does not know
//! (recurrence, experimental ones) are carried through unchanged and signed with the rest.
//! Strings are BOLT12's bech32 without checksum.

use bitcoin::hashes::{hmac, sha256, Hash as _, HashEngine as _};
use chacha20poly1305::aead::{AeadInPlace as _, KeyInit as _};
use secp256k1::{
    ecdh::SharedSecret, Keypair, PublicKey, Scalar, Secp256k1, SecretKey, Signing, Verification,
};

use invoiced_events::{Hash32, Msat};

/// The invoice's human-readable part.
pub const HRP: &str = "lni";
/// BOLT12's default `invoice_relative_expiry`, seconds.
pub const DEFAULT_RELATIVE_EXPIRY: u64 = 7200;

const OFFER_DESCRIPTION: u64 = 10;
const OFFER_PATHS: u64 = 16;
const OFFER_ISSUER_ID: u64 = 22;
const INVREQ_PAYER_NOTE: u64 = 89;
const INVOICE_PATHS: u64 = 160;
const INVOICE_BLINDEDPAY: u64 = 162;
const INVOICE_CREATED_AT: u64 = 164;
const INVOICE_RELATIVE_EXPIRY: u64 = 166;
const INVOICE_PAYMENT_HASH: u64 = 168;
const INVOICE_AMOUNT: u64 = 170;
const INVOICE_NODE_ID: u64 = 176;
const SIGNATURE: u64 = 240;
/// `encrypted_data_tlv`'s `path_id`.
const PATH_ID: u64 = 6;
/// BOLT12: 21 million bitcoin, msat (the stub path's `htlc_maximum_msat`).
const MAX_MSAT: u64 = 21_000_000 * 100_000_000 * 1000;

const CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

/// Why a string is not a BOLT12 invoice this module can complete.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Bolt12Error {
    /// Not bech32 as BOLT12 writes it.
    #[error("invalid bech32 string")]
    Bech32,
    /// Another kind of BOLT12 string.
    #[error("unexpected prefix {0}")]
    Prefix(String),
    /// The TLV stream is malformed.
    #[error("invalid TLV stream: {0}")]
    Tlv(&'static str),
    /// A field is malformed.
    #[error("invalid {0}")]
    Field(&'static str),
}

/// One TLV record.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Record {
    ty: u64,
    value: Vec<u8>,
}

/// A BOLT12 invoice as its TLV records, in ascending type order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invoice {
    records: Vec<Record>,
}

impl Invoice {
    /// Reads an `lni1…` string (any case, with BOLT12's `+` line joins).
    ///
    /// # Errors
    /// [`Bolt12Error`] saying what is wrong.
    pub fn decode(s: &str) -> Result<Invoice, Bolt12Error> {
        let (hrp, bytes) = from_bech32(s)?;
        if hrp != HRP {
            return Err(Bolt12Error::Prefix(hrp));
        }
        let mut records = Vec::new();
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            let ty = super::bigsize::read(&mut rest).map_err(Bolt12Error::Tlv)?;
            let len = usize::try_from(super::bigsize::read(&mut rest).map_err(Bolt12Error::Tlv)?)
                .map_err(|_| Bolt12Error::Tlv("length too large"))?;
            if len > rest.len() {
                return Err(Bolt12Error::Tlv("length past the end"));
            }
            if records.last().is_some_and(|r: &Record| r.ty >= ty) {
                return Err(Bolt12Error::Tlv("types not ascending"));
            }
            let (value, tail) = rest.split_at(len);
            records.push(Record {
                ty,
                value: value.to_vec(),
            });
            rest = tail;
        }
        if records.is_empty() {
            return Err(Bolt12Error::Tlv("empty"));
        }
        Ok(Invoice { records })
    }

    /// The `lni1…` string, lower case.
    pub fn encode(&self) -> String {
        let mut bytes = Vec::new();
        for r in &self.records {
            write_record(&mut bytes, r);
        }
        to_bech32(HRP, &bytes)
    }

    fn get(&self, ty: u64) -> Option<&[u8]> {
        self.records
            .iter()
            .find(|r| r.ty == ty)
            .map(|r| r.value.as_slice())
    }

    fn set(&mut self, ty: u64, value: Vec<u8>) {
        match self.records.binary_search_by_key(&ty, |r| r.ty) {
            Ok(i) => self.records[i].value = value,
            Err(i) => self.records.insert(i, Record { ty, value }),
        }
    }

    fn tu64(&self, ty: u64, name: &'static str) -> Result<Option<u64>, Bolt12Error> {
        self.get(ty)
            .map(|v| read_tu64(v).ok_or(Bolt12Error::Field(name)))
            .transpose()
    }

    /// `invoice_amount`, msat.
    ///
    /// # Errors
    /// [`Bolt12Error::Field`] if it is not a truncated u64.
    pub fn amount_msat(&self) -> Result<Option<u64>, Bolt12Error> {
        self.tu64(INVOICE_AMOUNT, "invoice_amount")
    }

    /// `invoice_payment_hash`.
    ///
    /// # Errors
    /// [`Bolt12Error::Field`] if it is not 32 bytes.
    pub fn payment_hash(&self) -> Result<Option<Hash32>, Bolt12Error> {
        self.get(INVOICE_PAYMENT_HASH)
            .map(|v| {
                v.try_into()
                    .map_err(|_| Bolt12Error::Field("invoice_payment_hash"))
            })
            .transpose()
    }

    /// `invoice_created_at`, UNIX seconds.
    ///
    /// # Errors
    /// [`Bolt12Error::Field`] if it is not a truncated u64.
    pub fn created_at(&self) -> Result<Option<u64>, Bolt12Error> {
        self.tu64(INVOICE_CREATED_AT, "invoice_created_at")
    }

    /// `invoice_relative_expiry`, seconds ([`DEFAULT_RELATIVE_EXPIRY`] when absent).
    ///
    /// # Errors
    /// [`Bolt12Error::Field`] if it is not a truncated u32.
    pub fn relative_expiry(&self) -> Result<u64, Bolt12Error> {
        match self.tu64(INVOICE_RELATIVE_EXPIRY, "invoice_relative_expiry")? {
            Some(e) if e > u64::from(u32::MAX) => {
                Err(Bolt12Error::Field("invoice_relative_expiry"))
            }
            Some(e) => Ok(e),
            None => Ok(DEFAULT_RELATIVE_EXPIRY),
        }
    }

    /// `offer_description`.
    ///
    /// # Errors
    /// [`Bolt12Error::Field`] if it is not UTF-8.
    pub fn description(&self) -> Result<Option<String>, Bolt12Error> {
        self.utf8(OFFER_DESCRIPTION, "offer_description")
    }

    /// `invreq_payer_note`.
    ///
    /// # Errors
    /// [`Bolt12Error::Field`] if it is not UTF-8.
    pub fn payer_note(&self) -> Result<Option<String>, Bolt12Error> {
        self.utf8(INVREQ_PAYER_NOTE, "invreq_payer_note")
    }

    fn utf8(&self, ty: u64, name: &'static str) -> Result<Option<String>, Bolt12Error> {
        self.get(ty)
            .map(|v| String::from_utf8(v.to_vec()).map_err(|_| Bolt12Error::Field(name)))
            .transpose()
    }

    /// Whether it has `invoice_paths`.
    pub fn has_paths(&self) -> bool {
        self.get(INVOICE_PATHS).is_some()
    }

    /// The smallest `cltv_expiry_delta` of its paths' `invoice_blindedpay`: the fewest blocks a
    /// payment's HTLC may leave when it reaches the node.
    pub fn min_path_cltv(&self) -> Option<u16> {
        let mut rest = self.get(INVOICE_BLINDEDPAY)?;
        let mut min: Option<u16> = None;
        // Each blinded_payinfo: fee_base u32, fee_ppm u32, cltv u16, htlc min and max u64, features.
        while rest.len() >= 28 {
            let cltv = u16::from_be_bytes([rest[8], rest[9]]);
            min = Some(min.map_or(cltv, |m| m.min(cltv)));
            let flen = usize::from(u16::from_be_bytes([rest[26], rest[27]]));
            rest = rest.get(28 + flen..)?;
        }
        min
    }

    /// The invoice as its issuer was asked to sign it: without signature and blinded paths
    /// (`createinvoice` adds the stub path again, with the same `path_id` for the same hash).
    pub fn unsigned_without_paths(&self) -> Invoice {
        let records = self
            .records
            .iter()
            .filter(|r| ![SIGNATURE, INVOICE_PATHS, INVOICE_BLINDEDPAY].contains(&r.ty))
            .cloned()
            .collect();
        Invoice { records }
    }

    /// Whether it is already signed.
    pub fn is_signed(&self) -> bool {
        self.get(SIGNATURE).is_some()
    }

    /// Whether it answers an offer with an issuer: one with `offer_issuer_id` or `offer_paths`,
    /// the offers Core Lightning looks up as the node's own.
    pub fn names_an_offer(&self) -> bool {
        self.get(OFFER_ISSUER_ID).is_some() || self.get(OFFER_PATHS).is_some()
    }

    /// `invoice_node_id`, if it is a public key.
    pub fn node_id(&self) -> Option<PublicKey> {
        PublicKey::from_slice(self.get(INVOICE_NODE_ID)?).ok()
    }

    /// The id of the offer it answers, as Core Lightning makes it (`common/bolt12.c`,
    /// `calc_offer`): SHA256 of its offer records (types 1 to 79, then 1,000,000,000 to
    /// 1,999,999,999) as they are encoded.
    pub fn offer_id(&self) -> Hash32 {
        let mut e = sha256::Hash::engine();
        for r in self
            .records
            .iter()
            .filter(|r| (1..=79).contains(&r.ty) || (1_000_000_000..=1_999_999_999).contains(&r.ty))
        {
            e.input(&record_bytes(r));
        }
        sha256::Hash::from_engine(e).to_byte_array()
    }

    /// The Merkle root of its fields, signature fields (240 to 1000) left out.
    pub fn merkle_root(&self) -> Hash32 {
        merkle_root(&self.records.iter().collect::<Vec<_>>())
    }

    /// What its signature signs: H("lightning" ‖ "invoice" ‖ "signature", Merkle root).
    pub fn signature_hash(&self) -> Hash32 {
        tagged(b"lightninginvoicesignature", &[&self.merkle_root()])
    }

    /// Adds Core Lightning's stub path: one hop, the node itself as introduction and recipient,
    /// `path_key` its ephemeral key, the recipient data holding only `path_id`; paid with no
    /// fee, `cltv_expiry_delta` blocks, up to 21 million bitcoin.
    ///
    /// # Errors
    /// [`Bolt12Error::Field`] if the keys give no valid blinded node id (negligible).
    pub fn add_stub_path<C: Signing + Verification>(
        &mut self,
        secp: &Secp256k1<C>,
        node_id: &PublicKey,
        path_key: &SecretKey,
        path_id: &Hash32,
        cltv_expiry_delta: u16,
    ) -> Result<(), Bolt12Error> {
        let first_path_key = PublicKey::from_secret_key(secp, path_key);
        let ss = SharedSecret::new(node_id, path_key).secret_bytes();
        let blinding = Scalar::from_be_bytes(hmac_sha256(b"blinded_node_id", &ss))
            .map_err(|_| Bolt12Error::Field("blinded path"))?;
        let blinded_node_id = node_id
            .mul_tweak(secp, &blinding)
            .map_err(|_| Bolt12Error::Field("blinded path"))?;
        let mut data = Vec::new();
        write_record(
            &mut data,
            &Record {
                ty: PATH_ID,
                value: path_id.to_vec(),
            },
        );
        let rho = hmac_sha256(b"rho", &ss);
        let tag = chacha20poly1305::ChaCha20Poly1305::new(&rho.into())
            .encrypt_in_place_detached(&[0u8; 12].into(), &[], &mut data)
            .map_err(|_| Bolt12Error::Field("blinded path"))?;
        data.extend_from_slice(&tag);

        let mut path = Vec::with_capacity(33 * 3 + 3 + data.len());
        path.extend_from_slice(&node_id.serialize());
        path.extend_from_slice(&first_path_key.serialize());
        path.push(1);
        path.extend_from_slice(&blinded_node_id.serialize());
        path.extend_from_slice(
            &u16::try_from(data.len())
                .map_err(|_| Bolt12Error::Field("blinded path"))?
                .to_be_bytes(),
        );
        path.extend_from_slice(&data);

        let mut payinfo = Vec::with_capacity(28);
        payinfo.extend_from_slice(&0u32.to_be_bytes());
        payinfo.extend_from_slice(&0u32.to_be_bytes());
        payinfo.extend_from_slice(&cltv_expiry_delta.to_be_bytes());
        payinfo.extend_from_slice(&0u64.to_be_bytes());
        payinfo.extend_from_slice(&MAX_MSAT.to_be_bytes());
        payinfo.extend_from_slice(&0u16.to_be_bytes());

        self.set(INVOICE_PATHS, path);
        self.set(INVOICE_BLINDEDPAY, payinfo);
        Ok(())
    }

    /// Signs it with `key` (BIP340, `aux` as the auxiliary randomness), replacing any signature.
    pub fn sign<C: Signing>(&mut self, secp: &Secp256k1<C>, key: &Keypair, aux: &[u8; 32]) {
        self.records.retain(|r| r.ty != SIGNATURE);
        let msg = secp256k1::Message::from_digest(self.signature_hash());
        let sig = secp.sign_schnorr_with_aux_rand(&msg, key, aux);
        self.set(SIGNATURE, sig.as_ref().to_vec());
    }

    /// Whether its signature is `node_id`'s over its Merkle root.
    pub fn signature_valid<C: Verification>(
        &self,
        secp: &Secp256k1<C>,
        node_id: &PublicKey,
    ) -> bool {
        let Some(sig) = self
            .get(SIGNATURE)
            .and_then(|s| secp256k1::schnorr::Signature::from_slice(s).ok())
        else {
            return false;
        };
        let msg = secp256k1::Message::from_digest(self.signature_hash());
        secp.verify_schnorr(&sig, &msg, &node_id.x_only_public_key().0)
            .is_ok()
    }
}

/// Checks a stored BOLT12 invoice against the event that recorded it: it parses, `node_id`
/// signed it, and its payment hash, amount, creation time and description are the event's.
///
/// # Errors
/// A sentence saying what differs.
pub fn verify_against_event(
    c: &invoiced_events::InvoiceCreated,
    node_id: &PublicKey,
) -> Result<(), String> {
    let inv = Invoice::decode(&c.body.bolt11).map_err(|e| format!("bolt12 does not parse: {e}"))?;
    if !inv.signature_valid(secp256k1::SECP256K1, node_id) {
        return Err(format!("bolt12 signature is not node {node_id}'s"));
    }
    let field = |e: Bolt12Error| e.to_string();
    if inv.payment_hash().map_err(field)? != Some(c.body.payment_hash.0) {
        return Err("bolt12 payment hash differs from the event".into());
    }
    if inv.amount_msat().map_err(field)? != c.body.amount_msat.map(Msat::as_msat) {
        return Err("bolt12 amount differs from the event".into());
    }
    if inv
        .created_at()
        .map_err(field)?
        .is_some_and(|t| t != c.body.created_at)
    {
        return Err("bolt12 created_at differs from the event".into());
    }
    if inv.description().map_err(field)?.unwrap_or_default() != c.body.description {
        return Err("bolt12 description differs from the event".into());
    }
    Ok(())
}

/// The `path_id` of the stub path (and what the payer's onion carries back): SHA256 of the
/// node's `bolt12-invoice-base` secret and the payment hash (`common/bolt12_id.c`).
pub fn path_id(invoice_base: &Hash32, payment_hash: &Hash32) -> Hash32 {
    let mut e = sha256::Hash::engine();
    e.input(invoice_base);
    e.input(payment_hash);
    sha256::Hash::from_engine(e).to_byte_array()
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut e = hmac::HmacEngine::<sha256::Hash>::new(key);
    e.input(data);
    hmac::Hmac::<sha256::Hash>::from_engine(e).to_byte_array()
}

/// BOLT12's H(tag, msg) = SHA256(SHA256(tag) ‖ SHA256(tag) ‖ msg).
fn tagged(tag: &[u8], msg: &[&[u8]]) -> Hash32 {
    let t = sha256::Hash::hash(tag).to_byte_array();
    let mut e = sha256::Hash::engine();
    e.input(&t);
    e.input(&t);
    for m in msg {
        e.input(m);
    }
    sha256::Hash::from_engine(e).to_byte_array()
}

fn branch(a: Hash32, b: Hash32) -> Hash32 {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    tagged(b"LnBranch", &[&lo, &hi])
}

fn record_bytes(r: &Record) -> Vec<u8> {
    let mut out = Vec::with_capacity(r.value.len() + 18);
    write_record(&mut out, r);
    out
}

/// BOLT12's Merkle root of `records`: one leaf per non-signature record, H("LnBranch") of
/// H("LnLeaf", record) and H("LnNonce" ‖ first record, type); pairs joined up a tree whose
/// missing right branches pass the left one up.
fn merkle_root(records: &[&Record]) -> Hash32 {
    let Some(first) = records.first() else {
        return [0; 32];
    };
    let mut nonce_tag = b"LnNonce".to_vec();
    nonce_tag.extend_from_slice(&record_bytes(first));
    let mut level: Vec<Hash32> = records
        .iter()
        .filter(|r| !(240..=1000).contains(&r.ty))
        .map(|r| {
            let mut ty = Vec::new();
            super::bigsize::write(&mut ty, r.ty);
            branch(
                tagged(b"LnLeaf", &[&record_bytes(r)]),
                tagged(&nonce_tag, &[&ty]),
            )
        })
        .collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|p| if let [a, b] = p { branch(*a, *b) } else { p[0] })
            .collect();
    }
    level.first().copied().unwrap_or([0; 32])
}

fn write_record(out: &mut Vec<u8>, r: &Record) {
    super::bigsize::write(out, r.ty);
    super::bigsize::write(out, r.value.len() as u64);
    out.extend_from_slice(&r.value);
}

/// A truncated u64: big-endian, at most 8 bytes, no leading zero.
fn read_tu64(v: &[u8]) -> Option<u64> {
    if v.len() > 8 || v.first() == Some(&0) {
        return None;
    }
    Some(v.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

/// BOLT12's bech32: no checksum, one case, `+` with optional whitespace joining parts.
fn from_bech32(s: &str) -> Result<(String, Vec<u8>), Bolt12Error> {
    let mut joined = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '+' {
            while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
                chars.next();
            }
        } else {
            joined.push(c);
        }
    }
    let lower = joined.to_ascii_lowercase();
    if joined != lower && joined != joined.to_ascii_uppercase() {
        return Err(Bolt12Error::Bech32);
    }
    let (hrp, data) = lower.rsplit_once('1').ok_or(Bolt12Error::Bech32)?;
    let mut out = Vec::with_capacity(data.len() * 5 / 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in data.bytes() {
        let v = CHARSET
            .iter()
            .position(|x| *x == c)
            .ok_or(Bolt12Error::Bech32)? as u32;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if bits >= 5 || acc != 0 {
        return Err(Bolt12Error::Bech32);
    }
    Ok((hrp.to_owned(), out))
}

fn to_bech32(hrp: &str, bytes: &[u8]) -> String {
    let mut s = String::with_capacity(hrp.len() + 1 + (bytes.len() * 8).div_ceil(5));
    s.push_str(hrp);
    s.push('1');
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in bytes {
        acc = (acc << 8) | u32::from(*b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            s.push(CHARSET[((acc >> bits) & 31) as usize] as char);
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        s.push(CHARSET[((acc << (5 - bits)) & 31) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An invoice Core Lightning v26.06.6 signed for its offer (captured on the test network),
    /// with what its `decode` said of it.
    const CLN_INVOICE: &str = include_str!("../../tests/data/cln_bolt12_invoice.txt");
    const CLN_NODE_ID: &str = "02234f82617ab4cb1962c958ddc23ba4a392c1c49a78ee87f26160f150657ceb43";
    const CLN_OFFER_ID: &str = "1737fa18ec026d458c0a2eabe2ddecbf26f08ab1db2ddb970cf0577ff1b7e063";

    fn cln() -> Invoice {
        Invoice::decode(CLN_INVOICE.trim()).unwrap()
    }

    #[test]
    fn reads_core_lightnings_invoice_and_checks_its_signature() {
        let inv = cln();
        let secp = Secp256k1::verification_only();
        let node: PublicKey = CLN_NODE_ID.parse().unwrap();
        assert_eq!(inv.node_id(), Some(node));
        assert!(
            inv.signature_valid(&secp, &node),
            "our Merkle root and tagged hash are Core Lightning's"
        );
        assert_eq!(hex::encode(inv.offer_id()), CLN_OFFER_ID);
        assert_eq!(
            inv.encode(),
            CLN_INVOICE.trim(),
            "re-encoding changes nothing"
        );
        assert_eq!(inv.amount_msat(), Ok(Some(5000)));
        assert_eq!(inv.description(), Ok(Some("coffee for two".into())));
        assert_eq!(inv.payer_note(), Ok(Some("thanks!".into())));
        assert_eq!(inv.created_at(), Ok(Some(1_796_532_250)));
        assert_eq!(inv.relative_expiry(), Ok(7200));
        assert_eq!(
            hex::encode(inv.payment_hash().unwrap().unwrap()),
            "60960125bd1012cc87151d2a496d907817f8ac57eb4608ec8b99cd9def869cae"
        );
        assert!(inv.is_signed() && inv.has_paths() && inv.names_an_offer());
        let mut changed = inv.clone();
        changed.set(INVOICE_AMOUNT, vec![0x13, 0x89]);
        assert!(
            !changed.signature_valid(&secp, &node),
            "another amount breaks the signature"
        );
    }

    #[test]
    fn a_signed_stub_path_invoice_verifies_and_its_path_opens_to_the_path_id() {
        let secp = Secp256k1::new();
        let node_key = SecretKey::from_slice(&[7; 32]).unwrap();
        let node = PublicKey::from_secret_key(&secp, &node_key);
        let mut inv = cln();
        inv.records
            .retain(|r| r.ty != SIGNATURE && r.ty != INVOICE_PATHS && r.ty != INVOICE_BLINDEDPAY);
        let path_key = SecretKey::from_slice(&[9; 32]).unwrap();
        let id = path_id(&[1; 32], &[2; 32]);
        inv.add_stub_path(&secp, &node, &path_key, &id, 18).unwrap();
        inv.sign(&secp, &Keypair::from_secret_key(&secp, &node_key), &[0; 32]);
        let again = Invoice::decode(&inv.encode()).unwrap();
        assert!(again.signature_valid(&secp, &node));

        // The recipient opens its hop as BOLT 4 says: ss = SHA256(k·E), rho, then ChaCha20-Poly1305.
        let path = again.get(INVOICE_PATHS).unwrap();
        assert_eq!(&path[..33], &node.serialize()[..]);
        let e = PublicKey::from_slice(&path[33..66]).unwrap();
        assert_eq!(path[66], 1, "one hop");
        let len = usize::from(u16::from_be_bytes([path[100], path[101]]));
        let mut data = path[102..102 + len].to_vec();
        let ss = SharedSecret::new(&e, &node_key).secret_bytes();
        let (body, tag) = data.split_at_mut(len - 16);
        chacha20poly1305::ChaCha20Poly1305::new(&hmac_sha256(b"rho", &ss).into())
            .decrypt_in_place_detached(&[0u8; 12].into(), &[], body, (&*tag).into())
            .unwrap();
        assert_eq!(&body[..2], &[6, 32]);
        assert_eq!(&body[2..], &id[..]);
        assert_eq!(again.min_path_cltv(), Some(18));
        assert_eq!(
            cln().min_path_cltv(),
            Some(10),
            "as decode showed Core Lightning's path"
        );
    }

    #[test]
    fn malformed_strings_are_refused() {
        assert_eq!(
            Invoice::decode("lno1qgsq"),
            Err(Bolt12Error::Prefix("lno".into()))
        );
        assert_eq!(
            Invoice::decode("lni1QGSq"),
            Err(Bolt12Error::Bech32),
            "mixed case"
        );
        assert_eq!(
            Invoice::decode("lni1b"),
            Err(Bolt12Error::Bech32),
            "not in the charset"
        );
        assert!(matches!(Invoice::decode("lni1"), Err(Bolt12Error::Tlv(_))));
        // Type 2 then type 1: out of order.
        let bytes = [2u8, 0, 1, 0];
        assert_eq!(
            Invoice::decode(&to_bech32(HRP, &bytes)),
            Err(Bolt12Error::Tlv("types not ascending"))
        );
        let bytes = [0xfdu8, 0, 0x10, 0];
        assert_eq!(
            Invoice::decode(&to_bech32(HRP, &bytes)),
            Err(Bolt12Error::Tlv("BigSize not minimal"))
        );
        let joined = format!(
            "{}+\n  {}",
            &CLN_INVOICE.trim()[..20],
            &CLN_INVOICE.trim()[20..]
        );
        assert_eq!(Invoice::decode(&joined), Ok(cln()), "BOLT12's + joins");
        assert_eq!(
            Invoice::decode(&CLN_INVOICE.trim().to_uppercase()),
            Ok(cln())
        );
    }

    proptest::proptest! {
        #[test]
        fn bech32_round_trips(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let s = to_bech32("lni", &bytes);
            proptest::prop_assert_eq!(from_bech32(&s), Ok(("lni".to_owned(), bytes)));
        }

        #[test]
        fn any_string_is_read_or_refused_without_panic(s in "\\PC{0,200}") {
            let _ = Invoice::decode(&s);
        }
    }
}
