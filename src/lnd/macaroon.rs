//! Macaroons as LND bakes and checks them: the version 2 binary format of libmacaroons, an
//! identifier that is LND's (`0x03` followed by an `lnrpc.MacaroonId` naming the permissions),
//! and one root key kept in the API's directory.
//!
//! A call is allowed when its macaroon's chain of HMACs verifies under the root key, every
//! first-party caveat it carries is one this service knows and holds (none are baked here; a
//! holder may add `time-before` or `ipaddr`, as LND's own ones), and the permissions in its
//! identifier include every one the method needs ([`required`]).

use bitcoin::hashes::{hmac, sha256, Hash as _, HashEngine as _};
use prost::Message as _;

use super::proto::lnrpc::{MacaroonId, Op};

/// The identifier's version byte (the macaroon bakery's `LatestVersion`, as LND writes it).
const ID_VERSION: u8 = 3;

/// The key every macaroon's root key is derived with (libmacaroons' key generator).
const KEY_GENERATOR: &[u8] = b"macaroons-key-generator";

/// Field types of the version 2 format.
const EOS: u8 = 0;
const LOCATION: u8 = 1;
const IDENTIFIER: u8 = 2;
const VID: u8 = 4;
const SIGNATURE: u8 = 6;

/// A permission: an entity and an action on it (LND's `bakery.Op`).
pub type Permission = (&'static str, &'static str);

/// What LND's write permissions add to its read ones: the admin macaroon has both.
pub const WRITE: &[Permission] = &[
    ("onchain", "write"),
    ("offchain", "write"),
    ("address", "write"),
    ("message", "write"),
    ("peers", "write"),
    ("info", "write"),
    ("invoices", "write"),
    ("signer", "generate"),
    ("macaroon", "generate"),
    ("macaroon", "write"),
];

/// What the admin macaroon may do: everything (LND's read and write permissions).
pub fn admin() -> Vec<Permission> {
    [READONLY, WRITE].concat()
}

/// What the invoice macaroon may do: invoices and addresses, no payment.
pub const INVOICE: &[Permission] = &[
    ("invoices", "read"),
    ("invoices", "write"),
    ("address", "read"),
    ("address", "write"),
    ("onchain", "read"),
];

/// What the readonly macaroon may do: read everything, change nothing.
pub const READONLY: &[Permission] = &[
    ("onchain", "read"),
    ("offchain", "read"),
    ("address", "read"),
    ("message", "read"),
    ("peers", "read"),
    ("info", "read"),
    ("invoices", "read"),
    ("signer", "read"),
    ("macaroon", "read"),
];

/// The permissions a method needs, by its gRPC path (LND's own table for these methods);
/// `None` for a method this service does not serve.
pub fn required(path: &str) -> Option<&'static [Permission]> {
    Some(match path {
        "/lnrpc.Lightning/GetInfo" => &[("info", "read")],
        "/lnrpc.Lightning/ChannelBalance" => &[("offchain", "read")],
        "/lnrpc.Lightning/AddInvoice" => &[("invoices", "write")],
        "/lnrpc.Lightning/LookupInvoice"
        | "/lnrpc.Lightning/ListInvoices"
        | "/lnrpc.Lightning/SubscribeInvoices"
        | "/invoicesrpc.Invoices/SubscribeSingleInvoice" => &[("invoices", "read")],
        "/invoicesrpc.Invoices/AddHoldInvoice"
        | "/invoicesrpc.Invoices/SettleInvoice"
        | "/invoicesrpc.Invoices/CancelInvoice"
        | "/invoicesrpc.Invoices/LookupInvoiceV2" => &[("invoices", "write")],
        "/routerrpc.Router/SendPaymentV2" => &[("offchain", "write")],
        "/routerrpc.Router/TrackPaymentV2" => &[("offchain", "read")],
        _ => return None,
    })
}

/// Why a macaroon does not allow a call, in LND's words.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No macaroon came with the call.
    #[error("expected 1 macaroon, got 0")]
    Missing,
    /// The macaroon is not hex or not a version 2 macaroon.
    #[error("cannot get macaroon: {0}")]
    Malformed(&'static str),
    /// Its signature is not one the root key makes.
    #[error("verification failed: signature mismatch after caveat verification")]
    Signature,
    /// A caveat this service does not know or that does not hold.
    #[error("verification failed: caveat {0:?} not satisfied")]
    Caveat(String),
    /// It lacks a permission the method needs.
    #[error("permission denied")]
    Permission,
}

/// A decoded macaroon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Macaroon {
    location: String,
    identifier: Vec<u8>,
    caveats: Vec<Vec<u8>>,
    signature: [u8; 32],
}

fn hmac32(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut engine = hmac::HmacEngine::<sha256::Hash>::new(key);
    engine.input(msg);
    hmac::Hmac::<sha256::Hash>::from_engine(engine).to_byte_array()
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_field(out: &mut Vec<u8>, kind: u8, data: &[u8]) {
    out.push(kind);
    put_varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

/// Reads the version 2 format field by field.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, Refusal> {
        let (&b, rest) = self
            .0
            .split_first()
            .ok_or(Refusal::Malformed("truncated"))?;
        self.0 = rest;
        Ok(b)
    }

    fn varint(&mut self) -> Result<usize, Refusal> {
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return usize::try_from(n).map_err(|_| Refusal::Malformed("field too long"));
            }
        }
        Err(Refusal::Malformed("bad length"))
    }

    /// The next field of kind `kind`, if the next one is of that kind.
    fn field(&mut self, kind: u8) -> Result<Option<&'a [u8]>, Refusal> {
        if self.0.first() != Some(&kind) {
            return Ok(None);
        }
        self.byte()?;
        let len = self.varint()?;
        if len > self.0.len() {
            return Err(Refusal::Malformed("truncated"));
        }
        let (data, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(Some(data))
    }

    fn end_of_section(&mut self) -> Result<(), Refusal> {
        match self.byte()? {
            EOS => Ok(()),
            _ => Err(Refusal::Malformed("unexpected field")),
        }
    }
}

impl Macaroon {
    /// A new macaroon for `permissions`, under `root_key`, with `nonce` making it unique.
    pub fn bake(root_key: &[u8; 32], nonce: [u8; 32], permissions: &[Permission]) -> Macaroon {
        let mut by_entity: Vec<Op> = Vec::new();
        for (entity, action) in permissions {
            match by_entity.iter_mut().find(|o| o.entity == *entity) {
                Some(op) => op.actions.push((*action).to_owned()),
                None => by_entity.push(Op {
                    entity: (*entity).to_owned(),
                    actions: vec![(*action).to_owned()],
                }),
            }
        }
        let id = MacaroonId {
            nonce: nonce.to_vec(),
            storage_id: b"0".to_vec(),
            ops: by_entity,
        };
        let mut identifier = vec![ID_VERSION];
        identifier.extend(id.encode_to_vec());
        let signature = hmac32(&hmac32(KEY_GENERATOR, root_key), &identifier);
        Macaroon {
            location: "lnd".into(),
            identifier,
            caveats: Vec::new(),
            signature,
        }
    }

    /// The macaroon with a first-party caveat added (as a holder adds one).
    #[must_use]
    pub fn with_caveat(mut self, caveat: &str) -> Macaroon {
        self.signature = hmac32(&self.signature, caveat.as_bytes());
        self.caveats.push(caveat.as_bytes().to_vec());
        self
    }

    /// The version 2 binary form (what `admin.macaroon` holds).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![2];
        put_field(&mut out, LOCATION, self.location.as_bytes());
        put_field(&mut out, IDENTIFIER, &self.identifier);
        out.push(EOS);
        for c in &self.caveats {
            put_field(&mut out, IDENTIFIER, c);
            out.push(EOS);
        }
        out.push(EOS);
        put_field(&mut out, SIGNATURE, &self.signature);
        out
    }

    /// Reads the version 2 binary form.
    ///
    /// # Errors
    /// [`Refusal::Malformed`] for anything else.
    pub fn from_bytes(bytes: &[u8]) -> Result<Macaroon, Refusal> {
        let mut r = Reader(bytes);
        if r.byte()? != 2 {
            return Err(Refusal::Malformed("not a version 2 macaroon"));
        }
        let location = r.field(LOCATION)?.unwrap_or_default();
        let identifier = r
            .field(IDENTIFIER)?
            .ok_or(Refusal::Malformed("no identifier"))?;
        r.end_of_section()?;
        let mut caveats = Vec::new();
        while r.0.first() != Some(&EOS) {
            r.field(LOCATION)?;
            let id = r
                .field(IDENTIFIER)?
                .ok_or(Refusal::Malformed("caveat without identifier"))?;
            if r.field(VID)?.is_some() {
                return Err(Refusal::Caveat(String::from_utf8_lossy(id).into_owned()));
            }
            r.end_of_section()?;
            caveats.push(id.to_vec());
        }
        r.end_of_section()?;
        let signature = r
            .field(SIGNATURE)?
            .and_then(|s| <[u8; 32]>::try_from(s).ok())
            .ok_or(Refusal::Malformed("no signature"))?;
        if !r.0.is_empty() {
            return Err(Refusal::Malformed("trailing bytes"));
        }
        Ok(Macaroon {
            location: String::from_utf8_lossy(location).into_owned(),
            identifier: identifier.to_vec(),
            caveats,
            signature,
        })
    }

    /// What this macaroon grants under `root_key`, if its signature verifies and every caveat
    /// is understood: its permissions, and the time its `time-before` caveats end it (`None`:
    /// never).
    ///
    /// # Errors
    /// The [`Refusal`] in LND's words.
    pub fn verify(&self, root_key: &[u8; 32]) -> Result<Grant, Refusal> {
        let mut sig = hmac32(&hmac32(KEY_GENERATOR, root_key), &self.identifier);
        for c in &self.caveats {
            sig = hmac32(&sig, c);
        }
        let signature_ok: bool =
            subtle::ConstantTimeEq::ct_eq(&sig[..], &self.signature[..]).into();
        if !signature_ok {
            return Err(Refusal::Signature);
        }
        let mut until: Option<u64> = None;
        for c in &self.caveats {
            let end = time_before(c)?;
            until = Some(until.map_or(end, |u| u.min(end)));
        }
        let id = self
            .identifier
            .split_first()
            .filter(|(v, _)| **v == ID_VERSION)
            .and_then(|(_, rest)| MacaroonId::decode(rest).ok())
            .ok_or(Refusal::Malformed("identifier is not LND's"))?;
        Ok(Grant { ops: id.ops, until })
    }

    /// Whether this macaroon, under `root_key`, allows a call that needs `needed` at UNIX time
    /// `now` (for `time-before` caveats).
    ///
    /// # Errors
    /// The [`Refusal`] in LND's words.
    pub fn allows(
        &self,
        root_key: &[u8; 32],
        needed: &[Permission],
        now: u64,
    ) -> Result<(), Refusal> {
        self.verify(root_key)?.allows(needed, now)
    }
}

/// What a verified macaroon grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    ops: Vec<Op>,
    /// The end its `time-before` caveats set, UNIX seconds.
    until: Option<u64>,
}

impl Grant {
    /// Whether it allows a call that needs `needed` at UNIX time `now`.
    ///
    /// # Errors
    /// [`Refusal::Caveat`] once a `time-before` has passed; [`Refusal::Permission`].
    pub fn allows(&self, needed: &[Permission], now: u64) -> Result<(), Refusal> {
        if let Some(until) = self.until.filter(|u| now >= *u) {
            return Err(Refusal::Caveat(format!("time-before {until} passed")));
        }
        let has = |(entity, action): &Permission| {
            self.ops
                .iter()
                .any(|o| o.entity == *entity && o.actions.iter().any(|a| a == action))
        };
        if needed.iter().all(has) {
            Ok(())
        } else {
            Err(Refusal::Permission)
        }
    }
}

/// The first-party caveats understood: `time-before RFC3339` (LND's `timeout` caveat, as
/// `lncli bakemacaroon --timeout` writes it), whose time is returned. Any other is refused, as a
/// caveat that is not understood cannot be held.
fn time_before(caveat: &[u8]) -> Result<u64, Refusal> {
    let text = String::from_utf8_lossy(caveat).into_owned();
    text.strip_prefix("time-before ")
        .and_then(unix_of_rfc3339)
        .ok_or(Refusal::Caveat(text))
}

/// Seconds since the epoch of an RFC 3339 time in UTC (`2026-12-06T10:00:00Z`, fractions
/// allowed), or `None`.
fn unix_of_rfc3339(s: &str) -> Option<u64> {
    let s = s.trim().strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.split('.').next()?;
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    #[test]
    fn a_baked_macaroon_reads_back_and_allows_its_permissions_only() {
        let admin = Macaroon::bake(&KEY, [1; 32], &admin());
        let again = Macaroon::from_bytes(&admin.to_bytes()).unwrap();
        assert_eq!(again, admin);
        let invoice = Macaroon::bake(&KEY, [2; 32], INVOICE);
        let readonly = Macaroon::bake(&KEY, [3; 32], READONLY);
        let add = required("/lnrpc.Lightning/AddInvoice").unwrap();
        let pay = required("/routerrpc.Router/SendPaymentV2").unwrap();
        let info = required("/lnrpc.Lightning/GetInfo").unwrap();
        assert_eq!(admin.allows(&KEY, pay, 0), Ok(()));
        assert_eq!(invoice.allows(&KEY, add, 0), Ok(()));
        assert_eq!(
            invoice.allows(&KEY, pay, 0),
            Err(Refusal::Permission),
            "cannot pay"
        );
        assert_eq!(invoice.allows(&KEY, info, 0), Err(Refusal::Permission));
        assert_eq!(readonly.allows(&KEY, info, 0), Ok(()));
        assert_eq!(
            readonly.allows(&KEY, add, 0),
            Err(Refusal::Permission),
            "cannot create"
        );
        assert_eq!(
            admin.allows(&[8; 32], info, 0),
            Err(Refusal::Signature),
            "another key"
        );
    }

    #[test]
    fn caveats_chain_the_signature_and_must_hold() {
        let m =
            Macaroon::bake(&KEY, [1; 32], READONLY).with_caveat("time-before 2026-12-06T10:00:00Z");
        let info = required("/lnrpc.Lightning/GetInfo").unwrap();
        let at = unix_of_rfc3339("2026-12-06T10:00:00Z").unwrap();
        assert_eq!(at, 1_796_551_200);
        assert_eq!(m.allows(&KEY, info, at - 1), Ok(()));
        assert!(matches!(m.allows(&KEY, info, at), Err(Refusal::Caveat(_))));
        let unknown = Macaroon::bake(&KEY, [1; 32], READONLY).with_caveat("ipaddr 10.0.0.1");
        assert!(matches!(
            unknown.allows(&KEY, info, 0),
            Err(Refusal::Caveat(_))
        ));
        // A caveat removed leaves a signature that does not verify.
        let mut stripped = m.clone();
        stripped.caveats.clear();
        assert_eq!(stripped.allows(&KEY, info, 0), Err(Refusal::Signature));
    }

    #[test]
    fn garbage_is_refused_not_a_panic() {
        for bytes in [
            &[][..],
            &[2],
            &[2, 1, 200],
            &[3, 0, 0],
            &[2, 2, 1, 3, 0, 0, 6, 1, 0],
        ] {
            assert!(Macaroon::from_bytes(bytes).is_err(), "{bytes:?}");
        }
    }
}
