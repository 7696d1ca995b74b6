//! BOLT11 construction in Core Lightning's field order, and fallback-address parsing by its rules.
//!
//! Owns the layout of the invoices we sign: HRP `ln` + network + the shortest amount multiplier;
//! then `s`, `p`, `d` or `h`, `x` (left out when 3600), `c`, `f`…, `r`…, `9` with feature bits 8
//! and 14 compulsory, 17 and 25 optional; no `n` field. It builds the raw invoice only: signing
//! is the [`crate::key_signer::KeySigner`]'s job. All bech32 work is lightning-invoice's.

use bitcoin::hashes::{sha256, Hash as _};
use bitcoin::{PubkeyHash, ScriptHash, WitnessVersion};
use invoiced_events::{AmountOrAny, Msat, Network, PaymentHash, PaymentSecret, RouteHintHop};
use lightning_invoice::{
    Currency, Description, ExpiryTime, Fallback, MinFinalCltvExpiryDelta, PositiveTimestamp,
    PrivateRoute, RawBolt11Invoice, RawDataPart, RawHrp, RawTaggedField, SiPrefix, TaggedField,
};
use lightning_types::features::Bolt11InvoiceFeatures;
use lightning_types::routing::{RouteHint, RouteHintHop as LdkHop, RoutingFees};
use secp256k1::PublicKey;

/// The largest amount an invoice can carry so that decoders read it back: BOLT11 readers hold the
/// amount in pico-BTC as a u64 (lightning-invoice does; Core Lightning's own `decode` fails
/// above it), so msat × 10 must fit. That is about 18,446,744 BTC, below the 21,000,000 BTC cap.
pub const MAX_INVOICE_MSAT: u64 = u64::MAX / 10;
/// The BOLT11 default expiry, which Core Lightning leaves out of the invoice.
pub const DEFAULT_BOLT11_EXPIRY: u64 = 3600;
/// The largest expiry accepted: the `x` field holds at most 60 bits in Core Lightning's encoder.
pub const MAX_EXPIRY: u64 = (1 << 60) - 1;
/// The largest `cltv`: Core Lightning writes the `c` field from 16 bits.
pub const MAX_CLTV: u32 = u16::MAX as u32;
/// Core Lightning's feature bits, little-endian bytes: 8 and 14 compulsory, 17 and 25 optional.
const FEATURES_LE: [u8; 4] = [0x00, 0x41, 0x02, 0x02];

/// Why a value cannot go into a BOLT11 invoice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// Above [`MAX_INVOICE_MSAT`].
    #[error(
        "should be at most {MAX_INVOICE_MSAT}msat, the largest amount a BOLT11 invoice can carry"
    )]
    Amount,
    /// Above [`MAX_EXPIRY`].
    #[error("should be at most {MAX_EXPIRY} seconds")]
    Expiry,
    /// Above [`MAX_CLTV`].
    #[error("should be at most {MAX_CLTV}")]
    Cltv,
}

/// An amount a BOLT11 invoice can carry, or any: checked once, at the edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvoiceAmount(Option<Msat>);

impl InvoiceAmount {
    /// The payer chooses.
    pub const ANY: InvoiceAmount = InvoiceAmount(None);

    /// `amount`, if an invoice can carry it.
    ///
    /// # Errors
    /// [`LimitError::Amount`] above [`MAX_INVOICE_MSAT`].
    pub fn new(amount: AmountOrAny) -> Result<Self, LimitError> {
        Self::from_msat(amount.msat())
    }

    /// `msat` (`None` for any), if an invoice can carry it.
    ///
    /// # Errors
    /// [`LimitError::Amount`] above [`MAX_INVOICE_MSAT`].
    pub fn from_msat(msat: Option<Msat>) -> Result<Self, LimitError> {
        match msat {
            Some(m) if m.as_msat() > MAX_INVOICE_MSAT => Err(LimitError::Amount),
            m => Ok(InvoiceAmount(m)),
        }
    }

    /// The amount, `None` for any.
    pub fn msat(self) -> Option<Msat> {
        self.0
    }
}

/// A relative expiry BOLT11 can encode, seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expiry(u64);

impl Expiry {
    /// One week, Core Lightning's default.
    pub const WEEK: Expiry = Expiry(604_800);

    /// `secs`, if it fits.
    ///
    /// # Errors
    /// [`LimitError::Expiry`] above [`MAX_EXPIRY`].
    pub fn new(secs: u64) -> Result<Self, LimitError> {
        if secs > MAX_EXPIRY {
            Err(LimitError::Expiry)
        } else {
            Ok(Expiry(secs))
        }
    }

    /// Seconds.
    pub fn secs(self) -> u64 {
        self.0
    }
}

/// A `min_final_cltv_expiry` BOLT11 (as Core Lightning writes it) can encode, blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cltv(u16);

impl Cltv {
    /// `blocks`, if it fits.
    ///
    /// # Errors
    /// [`LimitError::Cltv`] above [`MAX_CLTV`].
    pub fn new(blocks: u64) -> Result<Self, LimitError> {
        u16::try_from(blocks)
            .map(Cltv)
            .map_err(|_| LimitError::Cltv)
    }

    /// Blocks.
    pub fn blocks(self) -> u32 {
        u32::from(self.0)
    }
}

/// Everything an invoice says, before signing.
#[derive(Clone, Debug)]
pub struct InvoiceDraft {
    /// Network (selects the HRP).
    pub network: Network,
    /// The amount (or any).
    pub amount: InvoiceAmount,
    /// Invoice timestamp, UNIX seconds.
    pub timestamp: u64,
    /// The description, checked once at the edge: its text goes in `d`, or its SHA256 in `h`
    /// when it is hash-only.
    pub description: invoiced_events::Description,
    /// Relative expiry (`x`, left out at BOLT11's default).
    pub expiry: Expiry,
    /// `c`.
    pub cltv: Cltv,
    /// `f` fields, in order.
    pub fallbacks: Vec<Fallback>,
    /// `r` fields, one hop each.
    pub route_hints: Vec<RouteHintHop>,
}

/// Why a draft cannot be encoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DraftError {
    /// The timestamp does not fit 35 bits.
    #[error("timestamp out of range")]
    Timestamp,
    /// The description does not fit a `d` field.
    #[error("description too long")]
    Description,
    /// A route hint has a bad node id.
    #[error("route hint node id is not a public key")]
    HintNodeId,
}

/// The lightning-invoice currency of a network.
pub fn currency(network: Network) -> Currency {
    match network {
        Network::Bitcoin => Currency::Bitcoin,
        Network::Testnet | Network::Testnet4 => Currency::BitcoinTestnet,
        Network::Signet => Currency::Signet,
        Network::Regtest => Currency::Regtest,
    }
}

/// The shortest HRP amount for `msat`, as Core Lightning writes it. Only an [`InvoiceAmount`]'s
/// msat come here, so the pico-BTC form (×10) always fits.
fn hrp_amount(msat: u64) -> (u64, Option<SiPrefix>) {
    const MSAT_PER_BTC: u64 = 100_000_000_000;
    if msat.is_multiple_of(MSAT_PER_BTC) {
        (msat / MSAT_PER_BTC, None)
    } else if msat.is_multiple_of(100_000_000) {
        (msat / 100_000_000, Some(SiPrefix::Milli))
    } else if msat.is_multiple_of(100_000) {
        (msat / 100_000, Some(SiPrefix::Micro))
    } else if msat.is_multiple_of(100) {
        (msat / 100, Some(SiPrefix::Nano))
    } else {
        (msat * 10, Some(SiPrefix::Pico))
    }
}

fn tagged(field: TaggedField) -> RawTaggedField {
    RawTaggedField::KnownSemantics(field)
}

/// Lays out the raw invoice in Core Lightning's field order, with its payment hash (`p`) and
/// payment secret (`s`), which only the KeySigner knows before the invoice exists.
///
/// # Errors
/// [`DraftError`] when a field cannot be represented.
pub fn build_raw(
    draft: &InvoiceDraft,
    payment_hash: &PaymentHash,
    payment_secret: &PaymentSecret,
) -> Result<RawBolt11Invoice, DraftError> {
    let (raw_amount, si_prefix) = match draft.amount.msat().map(|m| hrp_amount(m.as_msat())) {
        Some((a, p)) => (Some(a), p),
        None => (None, None),
    };
    let hrp = RawHrp {
        currency: currency(draft.network),
        raw_amount,
        si_prefix,
    };
    let timestamp = PositiveTimestamp::from_unix_timestamp(draft.timestamp)
        .map_err(|_| DraftError::Timestamp)?;

    let mut fields = Vec::with_capacity(7 + draft.fallbacks.len() + draft.route_hints.len());
    fields.push(tagged(TaggedField::PaymentSecret(
        lightning_types::payment::PaymentSecret(payment_secret.0),
    )));

    fields.push(tagged(TaggedField::PaymentHash(lightning_invoice::Sha256(
        sha256::Hash::from_byte_array(payment_hash.0),
    ))));
    if let Some(h) = draft.description.committed_hash() {
        fields.push(tagged(TaggedField::DescriptionHash(
            lightning_invoice::Sha256(sha256::Hash::from_byte_array(h)),
        )));
    } else {
        // Both hold BOLT11's 639-byte rule: a `Description` that is not hash-only always fits.
        let d = Description::new(draft.description.text().to_owned())
            .map_err(|_| DraftError::Description)?;
        fields.push(tagged(TaggedField::Description(d)));
    }
    if draft.expiry.secs() != DEFAULT_BOLT11_EXPIRY {
        fields.push(tagged(TaggedField::ExpiryTime(ExpiryTime::from_seconds(
            draft.expiry.secs(),
        ))));
    }
    fields.push(tagged(TaggedField::MinFinalCltvExpiryDelta(
        MinFinalCltvExpiryDelta(u64::from(draft.cltv.blocks())),
    )));
    for f in &draft.fallbacks {
        fields.push(tagged(TaggedField::Fallback(f.clone())));
    }
    for hop in &draft.route_hints {
        let src_node_id =
            PublicKey::from_slice(hop.node_id.as_ref()).map_err(|_| DraftError::HintNodeId)?;
        let route = RouteHint(vec![LdkHop {
            src_node_id,
            short_channel_id: hop.short_channel_id.to_u64(),
            fees: RoutingFees {
                base_msat: hop.fee_base_msat,
                proportional_millionths: hop.fee_proportional_millionths,
            },
            cltv_expiry_delta: hop.cltv_expiry_delta,
            htlc_minimum_msat: None,
            htlc_maximum_msat: None,
        }]);
        let private = PrivateRoute::new(route).map_err(|_| DraftError::HintNodeId)?;
        fields.push(tagged(TaggedField::PrivateRoute(private)));
    }
    fields.push(tagged(TaggedField::Features(
        Bolt11InvoiceFeatures::from_le_bytes(FEATURES_LE.to_vec()),
    )));
    Ok(RawBolt11Invoice {
        hrp,
        data: RawDataPart {
            timestamp,
            tagged_fields: fields,
        },
    })
}

/// Checks a stored bolt11 against the event that recorded it (with the description hash it gave,
/// if any): it parses, its signature recovers `node_id`, and it is exactly the invoice the
/// event's fields lay out (every field, in order).
///
/// # Errors
/// A sentence saying what differs.
pub fn verify_against_event(
    c: &invoiced_events::InvoiceCreated,
    given_description_hash: Option<invoiced_events::Hash32>,
    network: Network,
    node_id: &PublicKey,
) -> Result<(), String> {
    let signed: lightning_invoice::SignedRawBolt11Invoice = c
        .body
        .bolt11
        .parse()
        .map_err(|e| format!("bolt11 does not parse: {e}"))?;
    let payee = signed
        .recover_payee_pub_key()
        .map_err(|e| format!("signature does not recover a key: {e}"))?;
    if payee.0 != *node_id {
        return Err(format!("signed by {}, not by node {node_id}", payee.0));
    }
    if !signed.check_signature() {
        return Err("signature invalid".into());
    }
    let fallbacks = c
        .body
        .fallbacks
        .iter()
        .map(|f| parse_fallback(f, network))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("event fallback: {e}"))?;
    let draft = InvoiceDraft {
        network,
        amount: InvoiceAmount::from_msat(c.body.amount_msat)
            .map_err(|e| format!("event amount: {e}"))?,
        timestamp: c.body.created_at,
        description: match given_description_hash {
            Some(h) => invoiced_events::Description::with_hash(h, c.body.description.clone()),
            None => {
                invoiced_events::Description::new(c.body.description.clone(), c.body.deschashonly)
                    .map_err(|e| format!("event description: {e}"))?
            }
        },
        expiry: Expiry::new(c.body.expiry).map_err(|e| format!("event expiry: {e}"))?,
        cltv: Cltv::new(u64::from(c.body.cltv)).map_err(|e| format!("event cltv: {e}"))?,
        fallbacks,
        route_hints: c.body.route_hints.clone(),
    };
    let expected = build_raw(&draft, &c.body.payment_hash, &c.body.payment_secret)
        .map_err(|e| format!("event cannot be laid out: {e}"))?;
    let actual = signed.raw_invoice();
    if actual.hrp != expected.hrp {
        return Err(format!(
            "amount or network differs: bolt11 has {}, event says {}",
            actual.hrp, expected.hrp
        ));
    }
    if actual.data.timestamp != expected.data.timestamp {
        return Err("timestamp differs from created_at".into());
    }
    for (i, (a, e)) in actual
        .data
        .tagged_fields
        .iter()
        .zip(&expected.data.tagged_fields)
        .enumerate()
    {
        if a != e {
            return Err(format!(
                "tagged field {i} differs from the event: {a:?} vs {e:?}"
            ));
        }
    }
    if actual.data.tagged_fields.len() != expected.data.tagged_fields.len() {
        return Err("the bolt11 has a different number of fields than the event".into());
    }
    if c.body.expires_at != c.body.created_at.saturating_add(c.body.expiry) {
        return Err("expires_at is not created_at + expiry".into());
    }
    Ok(())
}

/// Why a fallback address was refused (Core Lightning's two cases, both code -1).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FallbackError {
    /// Not an address we can read for this network.
    #[error("Fallback address not valid")]
    NotValid,
    /// A base58 address of another network.
    #[error("Fallback address does not match our network {0}")]
    WrongNetwork(Network),
}

/// The longest address there can be: BIP 173 limits a segwit address to 90 characters (BIP 350
/// keeps it; the longest on Bitcoin's networks is 76, a 40-byte program on regtest); a base58
/// address has at most 35.
pub const MAX_ADDRESS_LEN: usize = 90;

/// Reads one fallback address with Core Lightning's rules: base58 with our P2PKH/P2SH version
/// (another version: [`FallbackError::WrongNetwork`]); segwit only with our own HRP.
///
/// Anything longer than [`MAX_ADDRESS_LEN`] is refused before it is decoded: base58 decoding
/// costs the square of its length (a 200 kB string took 37 s).
///
/// # Errors
/// [`FallbackError`] as above.
pub fn parse_fallback(addr: &str, network: Network) -> Result<Fallback, FallbackError> {
    if addr.len() > MAX_ADDRESS_LEN {
        return Err(FallbackError::NotValid);
    }
    if let Ok(bytes) = bitcoin::base58::decode_check(addr) {
        let [version, payload @ ..] = bytes.as_slice() else {
            return Err(FallbackError::NotValid);
        };
        let hash: [u8; 20] = payload.try_into().map_err(|_| FallbackError::NotValid)?;
        let (p2pkh, p2sh) = network.base58_versions();
        return if *version == p2pkh {
            Ok(Fallback::PubKeyHash(PubkeyHash::from_byte_array(hash)))
        } else if *version == p2sh {
            Ok(Fallback::ScriptHash(ScriptHash::from_byte_array(hash)))
        } else {
            Err(FallbackError::WrongNetwork(network))
        };
    }
    let (hrp, version, program) =
        bitcoin::bech32::segwit::decode(addr).map_err(|_| FallbackError::NotValid)?;
    if !hrp.as_str().eq_ignore_ascii_case(network.segwit_hrp()) {
        return Err(FallbackError::NotValid);
    }
    let version = WitnessVersion::try_from(version).map_err(|_| FallbackError::NotValid)?;
    Ok(Fallback::SegWitProgram { version, program })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limits_are_in_the_types() {
        assert_eq!(
            InvoiceAmount::from_msat(Some(Msat(MAX_INVOICE_MSAT)))
                .unwrap()
                .msat(),
            Some(Msat(MAX_INVOICE_MSAT))
        );
        assert_eq!(
            InvoiceAmount::from_msat(Some(Msat(MAX_INVOICE_MSAT + 1))),
            Err(LimitError::Amount)
        );
        assert_eq!(InvoiceAmount::new(AmountOrAny::Any), Ok(InvoiceAmount::ANY));
        // The largest amount still lays out without overflow (pico-BTC × 10 fits a u64).
        let (a, p) = hrp_amount(MAX_INVOICE_MSAT);
        assert_eq!((a, p), (MAX_INVOICE_MSAT * 10, Some(SiPrefix::Pico)));
        assert_eq!(Expiry::new(MAX_EXPIRY).unwrap().secs(), MAX_EXPIRY);
        assert_eq!(Expiry::new(MAX_EXPIRY + 1), Err(LimitError::Expiry));
        assert_eq!(Cltv::new(u64::from(MAX_CLTV)).unwrap().blocks(), MAX_CLTV);
        assert_eq!(Cltv::new(u64::from(MAX_CLTV) + 1), Err(LimitError::Cltv));
    }

    #[test]
    fn amount_multipliers_are_the_shortest() {
        let cases = [
            (10_000, "100n"),
            (50_000, "500n"),
            (123_000, "1230n"),
            (100_000, "1u"),
            (1_000, "10n"),
            (42, "420p"),
            (123_456, "1234560p"),
            (500_000_000, "5m"),
            (150_000_000_000, "1500m"),
            (200_000_000_000, "2"),
        ];
        for (msat, want) in cases {
            let (a, p) = hrp_amount(msat);
            let suffix = p
                .map(|p| match p {
                    SiPrefix::Milli => "m",
                    SiPrefix::Micro => "u",
                    SiPrefix::Nano => "n",
                    SiPrefix::Pico => "p",
                })
                .unwrap_or("");
            assert_eq!(format!("{a}{suffix}"), want, "{msat}");
        }
    }

    #[test]
    fn fallbacks_follow_core_lightning() {
        let r = Network::Regtest;
        assert!(matches!(
            parse_fallback("bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", r),
            Ok(Fallback::SegWitProgram { .. })
        ));
        assert!(matches!(
            parse_fallback("mngSebah93kkVhSZzmVHFkyKo3D9QPKKzZ", r),
            Ok(Fallback::PubKeyHash(_))
        ));
        assert!(matches!(
            parse_fallback("2MxqzNANJNAdMjHQq8ZLkwzooxAFiRzXvEz", r),
            Ok(Fallback::ScriptHash(_))
        ));
        assert_eq!(
            parse_fallback("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", r),
            Err(FallbackError::WrongNetwork(r))
        );
        assert_eq!(
            parse_fallback("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", r),
            Err(FallbackError::NotValid)
        );
        assert_eq!(
            parse_fallback("tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", r),
            Err(FallbackError::NotValid)
        );
        assert_eq!(
            parse_fallback("notanaddress", r),
            Err(FallbackError::NotValid)
        );
        assert!(parse_fallback("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", Network::Bitcoin).is_ok());
    }

    #[test]
    fn the_longest_address_is_read_and_a_longer_string_refused_unread() {
        // A 40-byte witness program: the longest segwit address, 76 characters on regtest.
        let program = bitcoin::WitnessProgram::new(WitnessVersion::V16, &[7u8; 40]).unwrap();
        let longest =
            bitcoin::Address::from_witness_program(program, bitcoin::Network::Regtest).to_string();
        assert_eq!(longest.len(), 76);
        assert!(matches!(
            parse_fallback(&longest, Network::Regtest),
            Ok(Fallback::SegWitProgram { .. })
        ));
        // Base58 decoding is quadratic: a megabyte of valid base58 characters would take minutes.
        let started = std::time::Instant::now();
        assert_eq!(
            parse_fallback(&"1".repeat(1 << 20), Network::Bitcoin),
            Err(FallbackError::NotValid)
        );
        assert_eq!(
            parse_fallback(&"q".repeat(MAX_ADDRESS_LEN + 1), Network::Bitcoin),
            Err(FallbackError::NotValid)
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "a long string was decoded"
        );
    }
}
