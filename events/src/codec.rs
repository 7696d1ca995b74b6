//! The versioned binary encoding of log records, and their hash chain.
//!
//! A stored record is `[version: u8][min_reader_version: u8][bincode body]`, where the body is an
//! [`EventRecord`] in bincode 2's standard configuration with a size limit. This module is the only
//! place that knows bincode; swapping the codec means changing it alone.
//!
//! # Invariants
//! A record whose `min_reader_version` is above [`CURRENT_VERSION`] is refused
//! ([`CodecError::UnknownVersion`]): for a ledger, skipping an event would lose data.

use bitcoin::hashes::{sha256, Hash as _, HashEngine as _};
use serde::{Deserialize, Serialize};

use crate::{Event, Hash32};

/// The newest version this code writes and reads. Version 2 added [`Event::InvoiceCleaned`],
/// version 3 the hold invoice events, version 4 [`Event::Bolt12InvoiceCreated`] and
/// [`Event::HtlcsPaid`], version 5 [`Event::HashedInvoiceCreated`]; a record is written with the
/// version of its event's kind
/// ([`Event::format_version`]).
pub const CURRENT_VERSION: u8 = 5;
/// The checkpoint layout this code writes and reads. A checkpoint is a cache of the log: one of
/// any other version is not upcast but ignored (the log is replayed instead). Version 1 held whole
/// invoices; version 2 held the live [`InvoiceEntry`](crate::InvoiceEntry)s; version 3 holds the
/// projection's slots as they are (entries with `None` for deleted ones), so loading takes the
/// decoded vector over without a copy; version 4 adds the retention totals; version 5 the hold
/// state of hold invoices; version 6 the offer a BOLT12 invoice answers.
pub const SNAPSHOT_VERSION: u8 = 6;
/// The largest record body accepted, in bytes.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// The hash that precedes the first record.
pub const GENESIS_HASH: Hash32 = [0u8; 32];

/// One record of the log: an event with its sequence number, time and chain link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// 1-based position in the log.
    pub seq: u64,
    /// When the writer committed it, UNIX milliseconds.
    pub time_ms: u64,
    /// Hash of the previous record ([`GENESIS_HASH`] for the first).
    pub prev_hash: Hash32,
    /// The event.
    pub event: Event,
}

/// Why a record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Shorter than the version prefix.
    #[error("record too short")]
    Truncated,
    /// Written by a newer invoiced.
    #[error("record version {version} needs a reader of version {min_reader}, this is {CURRENT_VERSION}")]
    UnknownVersion {
        /// The writer's version.
        version: u8,
        /// The oldest reader it allows.
        min_reader: u8,
    },
    /// A checkpoint of another layout (a cache: the log is replayed instead).
    #[error("checkpoint version {0}, this reads version {SNAPSHOT_VERSION}")]
    SnapshotVersion(u8),
    /// The body is not a valid record.
    #[error("bad record body: {0}")]
    Decode(#[from] bincode::error::DecodeError),
    /// The record could not be encoded.
    #[error("cannot encode record: {0}")]
    Encode(#[from] bincode::error::EncodeError),
    /// Bytes left over after the body.
    #[error("{0} trailing bytes after record")]
    Trailing(usize),
    /// A checkpoint whose body does not match its hash.
    #[error("checkpoint damaged: its body does not match its hash")]
    Damaged,
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_RECORD_BYTES>()
}

/// Encodes a record with its version prefix.
///
/// # Errors
/// [`CodecError::Encode`] when the record exceeds the size limit.
pub fn encode_record(record: &EventRecord) -> Result<Vec<u8>, CodecError> {
    let version = record.event.format_version();
    let mut out = vec![version, version];
    let body = bincode::serde::encode_to_vec(record, config())?;
    if body.len() > MAX_RECORD_BYTES {
        return Err(CodecError::Encode(bincode::error::EncodeError::Other(
            "record too large",
        )));
    }
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes a stored record.
///
/// # Errors
/// [`CodecError`] for a short, newer, malformed or over-long record.
pub fn decode_record(bytes: &[u8]) -> Result<EventRecord, CodecError> {
    let [version, min_reader, body @ ..] = bytes else {
        return Err(CodecError::Truncated);
    };
    if *min_reader > CURRENT_VERSION {
        return Err(CodecError::UnknownVersion {
            version: *version,
            min_reader: *min_reader,
        });
    }
    let (record, used) = bincode::serde::decode_from_slice::<EventRecord, _>(body, config())?;
    if used != body.len() {
        return Err(CodecError::Trailing(body.len() - used));
    }
    Ok(record)
}

/// Encodes a projection checkpoint: `[version][version][SHA256 of body][bincode body]`. The
/// hash lets a damaged checkpoint be refused before decoding (a flipped length prefix could
/// otherwise ask for gigabytes); the body has no size limit.
///
/// # Errors
/// [`CodecError::Encode`] if serialisation fails.
pub fn encode_snapshot(s: &crate::Snapshot) -> Result<Vec<u8>, CodecError> {
    let body = bincode::serde::encode_to_vec(s, bincode::config::standard())?;
    let mut out = Vec::with_capacity(34 + body.len());
    out.extend_from_slice(&[SNAPSHOT_VERSION, SNAPSHOT_VERSION]);
    out.extend_from_slice(&record_hash(&body));
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes a projection checkpoint.
///
/// # Errors
/// [`CodecError`] for a short, damaged or malformed checkpoint, or one of another
/// [`SNAPSHOT_VERSION`].
pub fn decode_snapshot(bytes: &[u8]) -> Result<crate::Snapshot, CodecError> {
    let [version, min_reader, rest @ ..] = bytes else {
        return Err(CodecError::Truncated);
    };
    if *version != SNAPSHOT_VERSION || *min_reader != SNAPSHOT_VERSION {
        return Err(CodecError::SnapshotVersion(*version));
    }
    let (hash, body) = rest.split_at_checked(32).ok_or(CodecError::Truncated)?;
    if record_hash(body) != hash {
        return Err(CodecError::Damaged);
    }
    let (s, used) =
        bincode::serde::decode_from_slice::<crate::Snapshot, _>(body, bincode::config::standard())?;
    if used != body.len() {
        return Err(CodecError::Trailing(body.len() - used));
    }
    Ok(s)
}

/// The chain hash of a stored record: SHA256 of its encoded bytes (which include `prev_hash`).
pub fn record_hash(encoded: &[u8]) -> Hash32 {
    let mut engine = sha256::Hash::engine();
    engine.input(encoded);
    sha256::Hash::from_engine(engine).to_byte_array()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::{ChannelInfo, ChannelKey, PeerPolicy};
    use crate::event::{InvoiceCreated, PreimageSeal, RouteHintHop, Warning};
    use crate::{
        CreatedIndex, DeletedIndex, InvoiceBody, Label, Msat, NodeId, PayIndex, PaymentHash,
        PaymentSecret, ShortChannelId, UpdatedIndex,
    };
    use proptest::prelude::*;

    /// A fixed record, the content of the golden file `tests/data/record_v1_invoice_created.bin`.
    fn golden_record() -> EventRecord {
        EventRecord {
            seq: 7,
            time_ms: 1_795_532_824_123,
            prev_hash: [0xab; 32],
            event: Event::InvoiceCreated(InvoiceCreated {
                created_index: CreatedIndex(3),
                body: InvoiceBody {
                    label: Label::new("v1").unwrap(),
                    bolt11: "lnbcrt10n1p4st2qc".into(),
                    payment_hash: PaymentHash::from_byte_array([1; 32]),
                    payment_secret: PaymentSecret::from_byte_array([2; 32]),
                    preimage: PreimageSeal::Sealed {
                        nonce: [3; 32],
                        ciphertext: [4; 32],
                    },
                    amount_msat: Some(Msat::from_msat(1000)),
                    description: "tea".into(),
                    deschashonly: false,
                    created_at: 1_795_532_824,
                    expiry: 604_800,
                    expires_at: 1_796_137_624,
                    cltv: 10,
                    fallbacks: vec!["bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080".into()],
                    route_hints: vec![RouteHintHop {
                        node_id: NodeId::from_byte_array([2; 33]),
                        short_channel_id: ShortChannelId::from_u64(118 << 40 | 1 << 16),
                        fee_base_msat: 1,
                        fee_proportional_millionths: 10,
                        cltv_expiry_delta: 6,
                    }],
                    warnings: vec![Warning::Capacity],
                },
            }),
        }
    }

    fn channel_info() -> ChannelInfo {
        ChannelInfo {
            key: ChannelKey::ChannelId([0x42; 32]),
            peer_id: NodeId::from_byte_array([3; 33]),
            peer_connected: true,
            state: "CHANNELD_NORMAL".into(),
            short_channel_id: Some(ShortChannelId::new(118, 1, 0).unwrap()),
            alias_local: Some(ShortChannelId::new(1, 2, 3).unwrap()),
            alias_remote: None,
            private: false,
            scid_alias_only: false,
            total_msat: Msat::from_msat(200_000_000),
            to_us_msat: Msat::from_msat(50_000_000),
            receivable_msat: Msat::from_msat(148_000_000),
            our_reserve_msat: Msat::from_msat(2_000_000),
            their_reserve_msat: Msat::from_msat(2_000_000),
            remote_policy: Some(PeerPolicy {
                fee_base_msat: 1,
                fee_proportional_millionths: 10,
                cltv_expiry_delta: 6,
                htlc_minimum_msat: Msat::from_msat(0),
                htlc_maximum_msat: Msat::from_msat(198_000_000),
            }),
            incoming_capacity_msat: Some(Msat::from_msat(1_000_000_000)),
        }
    }

    /// One golden file per event variant, each with the record it must decode to.
    fn goldens() -> Vec<(&'static str, &'static [u8], EventRecord)> {
        let with = |event| EventRecord {
            event,
            ..golden_record()
        };
        macro_rules! golden {
            ($name:literal) => {
                (
                    $name,
                    include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/", $name))
                        .as_slice(),
                )
            };
        }
        let (a, b) = golden!("record_v1_invoice_created.bin");
        let (c, d) = golden!("record_v1_channel_opened.bin");
        let (e, f) = golden!("record_v1_channel_updated.bin");
        let (g, h) = golden!("record_v1_channel_closed.bin");
        let (i, j) = golden!("record_v1_invoice_paid.bin");
        let (k, l) = golden!("record_v1_invoice_expired.bin");
        let (m, n) = golden!("record_v1_invoice_deleted.bin");
        let (o, p) = golden!("record_v1_description_removed.bin");
        let (q, r) = golden!("record_v2_invoice_cleaned.bin");
        let (s, t) = golden!("record_v3_hold_invoice_created.bin");
        let (u, v) = golden!("record_v3_hold_accepted.bin");
        let (w, x) = golden!("record_v3_hold_settled.bin");
        let (y, z) = golden!("record_v3_hold_canceled.bin");
        let (aa, ab) = golden!("record_v4_bolt12_invoice_created.bin");
        let (ac, ad) = golden!("record_v4_htlcs_paid.bin");
        let (ae, af) = golden!("record_v5_hashed_invoice_created.bin");
        let parts = vec![
            crate::HeldPart {
                htlc: "103x1x0/7".into(),
                amount_msat: Msat::from_msat(600),
                cltv_expiry: 180,
            },
            crate::HeldPart {
                htlc: "104x2x1/0".into(),
                amount_msat: Msat::from_msat(400),
                cltv_expiry: 176,
            },
        ];
        let Event::InvoiceCreated(created) = golden_record().event else {
            unreachable!()
        };
        vec![
            (a, b, golden_record()),
            (c, d, with(Event::ChannelOpened(channel_info()))),
            (
                e,
                f,
                with(Event::ChannelUpdated(ChannelInfo {
                    peer_connected: false,
                    ..channel_info()
                })),
            ),
            (
                g,
                h,
                with(Event::ChannelClosed(ChannelKey::Scid(
                    ShortChannelId::new(118, 1, 0).unwrap(),
                ))),
            ),
            (
                i,
                j,
                with(Event::InvoicePaid(crate::InvoicePaid {
                    created_index: CreatedIndex(3),
                    pay_index: PayIndex(2),
                    updated_index: UpdatedIndex(5),
                    amount_received_msat: Msat::from_msat(1337),
                    paid_at: 1_795_532_900,
                })),
            ),
            (
                k,
                l,
                with(Event::InvoiceExpired(crate::InvoiceExpired {
                    created_index: CreatedIndex(3),
                    updated_index: UpdatedIndex(6),
                })),
            ),
            (
                m,
                n,
                with(Event::InvoiceDeleted(crate::InvoiceDeleted {
                    created_index: CreatedIndex(3),
                    deleted_index: DeletedIndex(1),
                    status: crate::InvoiceStatus::Paid,
                })),
            ),
            (
                o,
                p,
                with(Event::DescriptionRemoved(crate::DescriptionRemoved {
                    created_index: CreatedIndex(3),
                    updated_index: UpdatedIndex(7),
                })),
            ),
            (
                q,
                r,
                with(Event::InvoiceCleaned(crate::InvoiceCleaned {
                    created_index: CreatedIndex(3),
                    deleted_index: DeletedIndex(2),
                    status: crate::InvoiceStatus::Expired,
                    age_s: 86_400,
                    now_s: 1_796_300_000,
                })),
            ),
            (
                s,
                t,
                with(Event::HoldInvoiceCreated(InvoiceCreated {
                    body: InvoiceBody {
                        preimage: PreimageSeal::Withheld,
                        ..created.body.clone()
                    },
                    ..created.clone()
                })),
            ),
            (
                u,
                v,
                with(Event::HoldAccepted(crate::HoldAccepted {
                    created_index: CreatedIndex(3),
                    updated_index: UpdatedIndex(8),
                    parts: parts.clone(),
                    height: 150,
                })),
            ),
            (
                w,
                x,
                with(Event::HoldSettled(crate::HoldSettled {
                    created_index: CreatedIndex(3),
                    pay_index: PayIndex(3),
                    updated_index: UpdatedIndex(9),
                    amount_received_msat: Msat::from_msat(1000),
                    paid_at: 1_795_533_000,
                    revealed: Some(PreimageSeal::Sealed {
                        nonce: [5; 32],
                        ciphertext: [6; 32],
                    }),
                })),
            ),
            (
                y,
                z,
                with(Event::HoldCanceled(crate::HoldCanceled {
                    created_index: CreatedIndex(3),
                    updated_index: UpdatedIndex(10),
                    reason: crate::CancelReason::HtlcExpiry {
                        height: 170,
                        blocks_before: 6,
                    },
                })),
            ),
            (
                aa,
                ab,
                with(Event::Bolt12InvoiceCreated(crate::Bolt12Created {
                    invoice: InvoiceCreated {
                        body: InvoiceBody {
                            bolt11: "lni1qqg97jkedp9x7cgpgl5t28jnv5rrgq3q".into(),
                            fallbacks: vec![],
                            route_hints: vec![],
                            warnings: vec![],
                            ..created.body.clone()
                        },
                        ..created.clone()
                    },
                    local_offer_id: Some([7; 32]),
                })),
            ),
            (
                ac,
                ad,
                with(Event::HtlcsPaid(crate::HtlcsPaid {
                    paid: crate::InvoicePaid {
                        created_index: CreatedIndex(3),
                        pay_index: PayIndex(4),
                        updated_index: UpdatedIndex(11),
                        amount_received_msat: Msat::from_msat(1000),
                        paid_at: 1_795_533_100,
                    },
                    parts: parts.clone(),
                })),
            ),
            (
                ae,
                af,
                with(Event::HashedInvoiceCreated(crate::HashedCreated {
                    invoice: InvoiceCreated {
                        body: InvoiceBody {
                            description: "memo".into(),
                            deschashonly: true,
                            preimage: PreimageSeal::Withheld,
                            ..created.body.clone()
                        },
                        ..created.clone()
                    },
                    hold: true,
                    description_hash: [8; 32],
                })),
            ),
        ]
    }

    /// Writes golden files that are still empty (run once per new variant or version with
    /// `cargo test -p invoiced-events -- --ignored`); a written golden file is never rewritten.
    #[test]
    #[ignore]
    fn write_missing_golden() {
        for (name, bytes, record) in goldens() {
            if bytes.is_empty() {
                let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
                std::fs::write(path, encode_record(&record).unwrap()).unwrap();
            }
        }
    }

    #[test]
    fn golden_v1_records_still_decode() {
        for (name, bytes, record) in goldens() {
            assert!(!bytes.is_empty(), "{name} is empty");
            assert_eq!(decode_record(bytes).unwrap(), record, "{name}");
            assert_eq!(encode_record(&record).unwrap(), bytes, "{name}");
        }
    }

    #[test]
    fn each_record_carries_the_version_of_its_event_kind() {
        for (name, bytes, record) in goldens() {
            let v = record.event.format_version();
            assert_eq!(bytes[..2], [v, v], "{name}");
            assert!(name.starts_with(&format!("record_v{v}_")), "{name}");
        }
        // A reader of version 1 (the min_reader check as it was) stops at a version 2 record.
        let cleaned = goldens()
            .into_iter()
            .find(|(n, ..)| n.contains("cleaned"))
            .unwrap()
            .1;
        assert!(cleaned[1] > 1);
    }

    #[test]
    fn refuses_newer_and_broken_records() {
        let mut bytes = encode_record(&golden_record()).unwrap();
        bytes[1] = CURRENT_VERSION + 1;
        assert!(matches!(
            decode_record(&bytes),
            Err(CodecError::UnknownVersion { .. })
        ));
        assert!(matches!(decode_record(&[1]), Err(CodecError::Truncated)));
        let mut extra = encode_record(&golden_record()).unwrap();
        extra.push(0);
        assert!(matches!(
            decode_record(&extra),
            Err(CodecError::Trailing(1))
        ));
    }

    #[test]
    fn damaged_checkpoints_are_refused_before_decoding() {
        let snap = crate::Snapshot::from(&crate::Projections::new());
        let mut bytes = encode_snapshot(&snap).unwrap();
        assert_eq!(decode_snapshot(&bytes).unwrap(), snap);
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(matches!(decode_snapshot(&bytes), Err(CodecError::Damaged)));
        let mut old = encode_snapshot(&snap).unwrap();
        old[0] = 1;
        assert!(
            matches!(decode_snapshot(&old), Err(CodecError::SnapshotVersion(1))),
            "a version 1 checkpoint is ignored"
        );
        // Found by the fuzzer: a length prefix asking for 4 GiB (an out-of-memory before).
        let oom: &[u8] = include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/fuzz_oom_snapshot.bin"
        ));
        assert!(decode_snapshot(oom).is_err());
        assert!(decode_record(oom).is_err());
    }

    proptest! {
        #[test]
        fn round_trips(seq in any::<u64>(), label in "\\PC{0,40}", desc in "\\PC{0,200}",
                       amount in proptest::option::of(1u64..u64::MAX), expiry in any::<u64>()) {
            let mut rec = golden_record();
            rec.seq = seq;
            let Event::InvoiceCreated(ref mut c) = rec.event else { unreachable!() };
            c.body.label = Label::new(label).unwrap_or_else(|_| Label::new("x").unwrap());
            c.body.description = desc;
            c.body.amount_msat = amount.map(Msat::from_msat);
            c.body.expiry = expiry;
            let bytes = encode_record(&rec).unwrap();
            prop_assert_eq!(decode_record(&bytes).unwrap(), rec);
        }

        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = decode_record(&bytes);
        }
    }
}
