//! KeySigner: the only holder of key material.
//!
//! Owns the node key (derived from `hsm_secret` exactly as Core Lightning derives it), invoice
//! signing, and the preimage scheme: generated preimages are HMAC(preimage key, nonce)
//! with a random per-invoice nonce kept in the event; caller-supplied preimages are kept as
//! preimage XOR HMAC(seal key, nonce). Neither key leaves this actor, and `Debug` shows no secret.

use actix::prelude::*;
use bitcoin::hashes::{hmac, sha256, Hash as _, HashEngine as _};
use invoiced_events::{Hash32, PaymentHash, PaymentPreimage, PaymentSecret, PreimageSeal};
use lightning_invoice::{RawBolt11Invoice, SignedRawBolt11Invoice};
use secp256k1::{PublicKey, Secp256k1, SecretKey, SignOnly};

pub use crate::entropy::{EntropySource, OsEntropy};

pub use crate::hsm_secret::HSM_SECRET_LEN;

/// Errors of the key store.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// No salt gave a valid key (practically impossible).
    #[error("hsm_secret gives no valid node key")]
    NoValidKey,
    /// A sealed preimage did not open to the payment hash.
    #[error("preimage seal does not match its payment hash")]
    SealMismatch,
    /// The preimage was withheld by the caller (a hold invoice made from its hash).
    #[error("the preimage was withheld")]
    Withheld,
}

/// Where a new invoice's preimage comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreimageSource {
    /// Generated here.
    Generate,
    /// The caller's, kept sealed.
    Supplied(PaymentPreimage),
    /// Only its hash is known: the caller reveals the preimage when settling (hold invoices).
    Withheld(PaymentHash),
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Hash32 {
    let mut engine = hmac::HmacEngine::<sha256::Hash>::new(key);
    for p in parts {
        engine.input(p);
    }
    hmac::Hmac::<sha256::Hash>::from_engine(engine).to_byte_array()
}

/// HKDF-SHA256 with a 32-byte output (one expand block).
fn hkdf32(salt: &[u8], ikm: &[u8], info: &[u8]) -> Hash32 {
    let prk = hmac_sha256(salt, &[ikm]);
    hmac_sha256(&prk, &[info, &[1u8]])
}

/// The node key as Core Lightning derives it: HKDF-SHA256(salt = one byte, starting at 0, info
/// `nodeid`), incrementing the salt until the output is a valid secret key.
///
/// # Errors
/// [`KeyError::NoValidKey`] if no salt below 256 works.
pub fn derive_node_key(hsm_secret: &[u8]) -> Result<SecretKey, KeyError> {
    let hsm_secret = hsm_secret
        .get(..HSM_SECRET_LEN)
        .ok_or(KeyError::NoValidKey)?;
    (0u8..=255)
        .find_map(|salt| SecretKey::from_slice(&hkdf32(&[salt], hsm_secret, b"nodeid")).ok())
        .ok_or(KeyError::NoValidKey)
}

/// Core Lightning's derived secrets (hsmd's `derive_secret`, the RPC `makesecret`):
/// HKDF-SHA256 of the whole seed with info "derived secrets", then of that with `info`.
pub fn make_secret(seed: &[u8], info: &[u8]) -> Hash32 {
    hkdf32(&[], &hkdf32(&[], seed, b"derived secrets"), info)
}

/// SHA256 of `data`.
pub fn sha256(data: &[u8]) -> Hash32 {
    sha256::Hash::hash(data).to_byte_array()
}

/// Core Lightning's payment secret: SHA256 of the preimage with its first byte XOR 0x01.
pub fn payment_secret_for(preimage: &PaymentPreimage) -> PaymentSecret {
    let mut tweaked = preimage.0;
    tweaked[0] ^= 1;
    PaymentSecret(sha256(&tweaked))
}

/// The keys a signer holds, derived once from `hsm_secret`. Every KeySigner (one on each
/// arbiter) is made from a copy, so the secret itself is read once and not kept.
#[derive(Clone)]
pub struct SignerKeys {
    node_key: SecretKey,
    node_id: PublicKey,
    preimage_key: Hash32,
    seal_key: Hash32,
    /// Core Lightning's `invoicesecret_base` (`makesecret bolt12-invoice-base`).
    bolt12_base: Hash32,
}

impl core::fmt::Debug for SignerKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SignerKeys")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

impl SignerKeys {
    /// Derives the keys from `hsm_secret`.
    ///
    /// # Errors
    /// [`KeyError::NoValidKey`] as [`derive_node_key`].
    pub fn derive(seed: &[u8]) -> Result<Self, KeyError> {
        let node_key = derive_node_key(seed)?;
        let hsm_secret = &seed[..HSM_SECRET_LEN];
        let node_id = PublicKey::from_secret_key(&Secp256k1::signing_only(), &node_key);
        Ok(SignerKeys {
            node_key,
            node_id,
            preimage_key: hkdf32(&[0], hsm_secret, b"invoiced preimage"),
            seal_key: hkdf32(&[0], hsm_secret, b"invoiced preimage seal"),
            bolt12_base: make_secret(seed, b"bolt12-invoice-base"),
        })
    }

    /// The node id.
    pub fn node_id(&self) -> PublicKey {
        self.node_id
    }
}

/// The key holder: one on each RPC arbiter and one on the main arbiter, all with the same keys.
pub struct KeySigner {
    keys: SignerKeys,
    secp: Secp256k1<SignOnly>,
    entropy: Box<dyn EntropySource>,
}

impl core::fmt::Debug for KeySigner {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeySigner")
            .field("node_id", &self.keys.node_id)
            .finish_non_exhaustive()
    }
}

impl KeySigner {
    /// Builds the signer from `hsm_secret`.
    ///
    /// # Errors
    /// [`KeyError::NoValidKey`] as [`derive_node_key`].
    pub fn new(hsm_secret: &[u8], entropy: Box<dyn EntropySource>) -> Result<Self, KeyError> {
        Ok(Self::with_keys(SignerKeys::derive(hsm_secret)?, entropy))
    }

    /// A signer holding `keys`.
    pub fn with_keys(keys: SignerKeys, entropy: Box<dyn EntropySource>) -> Self {
        KeySigner {
            keys,
            secp: Secp256k1::signing_only(),
            entropy,
        }
    }

    /// The node id.
    pub fn node_id(&self) -> PublicKey {
        self.keys.node_id
    }

    /// Makes the preimage of a new invoice (or seals the caller's), returning its keys. For a
    /// withheld preimage the payment secret is random: no preimage exists here to derive it from.
    pub fn derive_payment_keys(&mut self, source: PreimageSource) -> PaymentKeys {
        let mut nonce = [0u8; 32];
        self.entropy.fill(&mut nonce);
        let (preimage, seal) = match source {
            PreimageSource::Generate => (
                PaymentPreimage(hmac_sha256(&self.keys.preimage_key, &[&nonce])),
                PreimageSeal::Derived { nonce },
            ),
            PreimageSource::Supplied(p) => (p, self.seal_with(p, nonce)),
            PreimageSource::Withheld(hash) => {
                return PaymentKeys {
                    payment_hash: hash,
                    payment_secret: PaymentSecret(nonce),
                    seal: PreimageSeal::Withheld,
                };
            }
        };
        PaymentKeys {
            payment_hash: PaymentHash::of(&preimage),
            payment_secret: payment_secret_for(&preimage),
            seal,
        }
    }

    fn seal_with(&self, PaymentPreimage(p): PaymentPreimage, nonce: Hash32) -> PreimageSeal {
        let pad = hmac_sha256(&self.keys.seal_key, &[&nonce]);
        let mut ciphertext = [0u8; 32];
        for (c, (a, b)) in ciphertext.iter_mut().zip(p.iter().zip(pad.iter())) {
            *c = a ^ b;
        }
        PreimageSeal::Sealed { nonce, ciphertext }
    }

    /// Seals a preimage revealed later (the settle of a hold invoice made from its hash).
    pub fn seal(&mut self, preimage: PaymentPreimage) -> PreimageSeal {
        let mut nonce = [0u8; 32];
        self.entropy.fill(&mut nonce);
        self.seal_with(preimage, nonce)
    }

    /// Recovers the preimage behind a seal, checking it against the payment hash.
    ///
    /// # Errors
    /// [`KeyError::SealMismatch`] if the seal does not open to `payment_hash`.
    pub fn open_seal(
        &self,
        seal: &PreimageSeal,
        payment_hash: &PaymentHash,
    ) -> Result<PaymentPreimage, KeyError> {
        let preimage = match seal {
            PreimageSeal::Derived { nonce } => hmac_sha256(&self.keys.preimage_key, &[nonce]),
            PreimageSeal::Sealed { nonce, ciphertext } => {
                let pad = hmac_sha256(&self.keys.seal_key, &[nonce]);
                let mut p = [0u8; 32];
                for (o, (a, b)) in p.iter_mut().zip(ciphertext.iter().zip(pad.iter())) {
                    *o = a ^ b;
                }
                p
            }
            PreimageSeal::Withheld => return Err(KeyError::Withheld),
        };
        if sha256(&preimage) == payment_hash.0 {
            Ok(PaymentPreimage(preimage))
        } else {
            Err(KeyError::SealMismatch)
        }
    }

    /// Signs a raw invoice with the node key (RFC 6979, so deterministic).
    pub fn sign_invoice(&self, raw: RawBolt11Invoice) -> SignedRawBolt11Invoice {
        let signed: Result<_, core::convert::Infallible> =
            raw.sign(|msg| Ok(self.secp.sign_ecdsa_recoverable(msg, &self.keys.node_key)));
        match signed {
            Ok(s) => s,
            Err(never) => match never {},
        }
    }
}

/// One signer runs on each RPC arbiter (each with the same keys), beside that arbiter's
/// InvoiceCreator: signing, the CPU-heavy part of an invoice, is a message on the same thread,
/// and uses every core as the arbiters do.
impl Actor for KeySigner {
    type Context = Context<Self>;
}

/// The public keys of a new invoice's preimage.
#[derive(Clone, Debug)]
pub struct PaymentKeys {
    /// SHA256 of the preimage.
    pub payment_hash: PaymentHash,
    /// The `s` field.
    pub payment_secret: PaymentSecret,
    /// How the preimage is recovered later.
    pub seal: PreimageSeal,
}

/// Query: the node id.
#[derive(Message)]
#[rtype(result = "PublicKey")]
pub struct GetNodeId;

impl Handler<GetNodeId> for KeySigner {
    type Result = MessageResult<GetNodeId>;
    fn handle(&mut self, _: GetNodeId, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.keys.node_id)
    }
}

/// The result of [`SignNewInvoice`].
#[derive(Clone, Debug)]
pub struct SignedNewInvoice {
    /// The new preimage's hash, secret and seal.
    pub keys: PaymentKeys,
    /// The signed invoice.
    pub bolt11: String,
}

/// Command: make the preimage of a new invoice (or seal the caller's), lay out `draft` with its
/// hash and secret, sign and encode it — one message, so an invoice crosses threads once.
#[derive(Message)]
#[rtype(result = "Result<SignedNewInvoice, crate::policy::bolt11::DraftError>")]
pub struct SignNewInvoice {
    /// Where the preimage comes from.
    pub preimage: PreimageSource,
    /// Everything but the payment hash and secret (which are filled in here).
    pub draft: crate::policy::bolt11::InvoiceDraft,
}

impl Handler<SignNewInvoice> for KeySigner {
    type Result = Result<SignedNewInvoice, crate::policy::bolt11::DraftError>;
    fn handle(&mut self, msg: SignNewInvoice, _: &mut Context<Self>) -> Self::Result {
        let keys = self.derive_payment_keys(msg.preimage);
        let raw =
            crate::policy::bolt11::build_raw(&msg.draft, &keys.payment_hash, &keys.payment_secret)?;
        Ok(SignedNewInvoice {
            bolt11: self.sign_invoice(raw).to_string(),
            keys,
        })
    }
}

/// The result of [`SignBolt12`].
#[derive(Clone, Debug)]
pub struct SignedBolt12 {
    /// The signed `lni1…` string.
    pub invoice: String,
    /// The `path_id` its payments carry back (see [`crate::policy::bolt12::path_id`]).
    pub path_id: Hash32,
    /// The preimage's seal.
    pub seal: PreimageSeal,
}

/// Command: complete and sign a BOLT12 invoice as Core Lightning's `createinvoice` does — a
/// stub blinded path to the node when it has no path (`cltv_expiry_delta` blocks), then the
/// node's BIP340 signature.
#[derive(Message)]
#[rtype(result = "Result<SignedBolt12, crate::policy::bolt12::Bolt12Error>")]
pub struct SignBolt12 {
    /// The unsigned invoice.
    pub invoice: crate::policy::bolt12::Invoice,
    /// Its preimage (the caller's: Core Lightning's offers plugin picks it).
    pub preimage: PaymentPreimage,
    /// The stub path's `cltv_expiry_delta`.
    pub cltv_expiry_delta: u16,
}

impl Handler<SignBolt12> for KeySigner {
    type Result = Result<SignedBolt12, crate::policy::bolt12::Bolt12Error>;
    fn handle(&mut self, mut msg: SignBolt12, _: &mut Context<Self>) -> Self::Result {
        let secp = secp256k1::SECP256K1;
        let path_id =
            crate::policy::bolt12::path_id(&self.keys.bolt12_base, &sha256(&msg.preimage.0));
        if !msg.invoice.has_paths() {
            let path_key = loop {
                let mut k = [0u8; 32];
                self.entropy.fill(&mut k);
                if let Ok(k) = SecretKey::from_slice(&k) {
                    break k;
                }
            };
            msg.invoice.add_stub_path(
                secp,
                &self.keys.node_id,
                &path_key,
                &path_id,
                msg.cltv_expiry_delta,
            )?;
        }
        let mut aux = [0u8; 32];
        self.entropy.fill(&mut aux);
        msg.invoice.sign(
            secp,
            &secp256k1::Keypair::from_secret_key(secp, &self.keys.node_key),
            &aux,
        );
        Ok(SignedBolt12 {
            invoice: msg.invoice.encode(),
            path_id,
            seal: self.seal(msg.preimage),
        })
    }
}

/// Command: seal a preimage the caller revealed (a preimage is never stored in plaintext).
#[derive(Message)]
#[rtype(result = "PreimageSeal")]
pub struct SealPreimage(pub PaymentPreimage);

impl Handler<SealPreimage> for KeySigner {
    type Result = MessageResult<SealPreimage>;
    fn handle(&mut self, SealPreimage(p): SealPreimage, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.seal(p))
    }
}

/// Query: the preimages behind seals (for invoices once paid). `None` where a seal does not open
/// to its payment hash.
#[derive(Message)]
#[rtype(result = "Vec<Option<PaymentPreimage>>")]
pub struct RevealPreimages {
    /// Each seal with its payment hash.
    pub seals: Vec<(PreimageSeal, PaymentHash)>,
}

impl Handler<RevealPreimages> for KeySigner {
    type Result = MessageResult<RevealPreimages>;
    fn handle(&mut self, msg: RevealPreimages, _: &mut Context<Self>) -> Self::Result {
        MessageResult(
            msg.seals
                .iter()
                .map(|(seal, hash)| self.open_seal(seal, hash).ok())
                .collect(),
        )
    }
}

/// Query: the layer of an onion meant for this node (for a payment the node injected into its
/// own channels: whether it ends here, and what it says).
#[derive(Message)]
#[rtype(result = "Result<crate::policy::onion::Peeled, crate::policy::onion::OnionError>")]
pub struct PeelOnion {
    /// The 1,366-byte packet.
    pub onion: Vec<u8>,
    /// The payment's hash (the packet's associated data).
    pub payment_hash: PaymentHash,
}

impl Handler<PeelOnion> for KeySigner {
    type Result = MessageResult<PeelOnion>;
    fn handle(&mut self, msg: PeelOnion, _: &mut Context<Self>) -> Self::Result {
        MessageResult(crate::policy::onion::peel(
            &msg.onion,
            &msg.payment_hash.0,
            &self.keys.node_key,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic source for tests.
    struct Counter(u8);
    impl EntropySource for Counter {
        fn fill(&mut self, buf: &mut [u8]) {
            for b in buf {
                self.0 = self.0.wrapping_add(1);
                *b = self.0;
            }
        }
    }

    fn secret() -> [u8; 32] {
        core::array::from_fn(|i| i as u8 + 1)
    }

    #[test]
    fn node_id_matches_core_lightning() {
        let signer = KeySigner::new(&secret(), Box::new(Counter(0))).unwrap();
        assert_eq!(
            signer.node_id().to_string(),
            "037d8d1109836a88daf2b86d6e52e12351f9c274f597b78eca941525b309096ca8"
        );
    }

    #[test]
    fn payment_secret_matches_schema_example() {
        let p = [1u8; 32];
        assert_eq!(hex::encode(sha256(&p))[..8], *"72cd6e84");
        assert_eq!(
            payment_secret_for(&PaymentPreimage(p)).to_hex()[..8],
            *"915c7594"
        );
    }

    #[test]
    fn seals_open_to_the_preimage_and_hide_it() {
        let mut signer = KeySigner::new(&secret(), Box::new(Counter(0))).unwrap();
        let supplied = [7u8; 32];
        let keys = signer.derive_payment_keys(PreimageSource::Supplied(PaymentPreimage(supplied)));
        assert_eq!(keys.payment_hash.0, sha256(&supplied));
        let PreimageSeal::Sealed { ciphertext, .. } = &keys.seal else {
            panic!("not sealed")
        };
        assert_ne!(*ciphertext, supplied);
        assert_eq!(
            signer.open_seal(&keys.seal, &keys.payment_hash).unwrap(),
            PaymentPreimage(supplied)
        );

        let generated = signer.derive_payment_keys(PreimageSource::Generate);
        let preimage = signer
            .open_seal(&generated.seal, &generated.payment_hash)
            .unwrap();
        assert_eq!(generated.payment_secret, payment_secret_for(&preimage));
        assert!(signer
            .open_seal(&generated.seal, &keys.payment_hash)
            .is_err());
        // Another hsm_secret cannot open it.
        let other = KeySigner::new(&[9; 32], Box::new(Counter(0))).unwrap();
        assert!(other.open_seal(&keys.seal, &keys.payment_hash).is_err());
        assert!(!format!("{signer:?}").contains("node_key"));
        // Withheld: the caller's hash, a random secret, nothing to open until a seal is revealed.
        let hash = PaymentHash(sha256(&[9; 32]));
        let withheld = signer.derive_payment_keys(PreimageSource::Withheld(hash));
        assert_eq!(
            (withheld.payment_hash, &withheld.seal),
            (hash, &PreimageSeal::Withheld)
        );
        assert_ne!(
            withheld.payment_secret,
            signer
                .derive_payment_keys(PreimageSource::Withheld(hash))
                .payment_secret
        );
        assert!(matches!(
            signer.open_seal(&withheld.seal, &hash),
            Err(KeyError::Withheld)
        ));
        let revealed = signer.seal(PaymentPreimage([9; 32]));
        assert_eq!(
            signer.open_seal(&revealed, &hash).unwrap(),
            PaymentPreimage([9; 32])
        );
    }
}
