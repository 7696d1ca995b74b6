//! The invoice object of `listinvoices`, `delinvoice`, `settleinvoice` and the waits, in Core
//! Lightning's key order. The preimage is shown only once paid, and comes from the KeySigner.
//!
//! [`InvoiceJson`] is the one definition of that object: small answers turn it into a `Value`,
//! a listing serialises thousands of them straight to text.

use core::fmt;

use invoiced_actors::key_signer::RevealPreimages;
use invoiced_events::{
    CreatedIndex, InvoiceRecord, InvoiceStatus, Msat, PayIndex, PaymentHash, PaymentPreimage,
    PreimageSeal, UpdatedIndex,
};
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::error::RpcError;
use super::RpcContext;

/// Bytes written as lower-case hex, without an intermediate string.
struct Hex<'a>(&'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl Serialize for Hex<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

fn never_updated(v: &UpdatedIndex) -> bool {
    *v == UpdatedIndex::default()
}

/// One invoice as the RPC shows it (fields in Core Lightning's order; absent ones skipped).
#[derive(Serialize)]
pub struct InvoiceJson<'a> {
    label: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    bolt11: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bolt12: Option<&'a str>,
    payment_hash: PaymentHash,
    #[serde(skip_serializing_if = "Option::is_none")]
    amount_msat: Option<Msat>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pay_index: Option<PayIndex>,
    #[serde(skip_serializing_if = "Option::is_none")]
    amount_received_msat: Option<Msat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    paid_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payment_preimage: Option<&'a PaymentPreimage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    /// Our extension, for an invoice whose `h` field is a hash its creator gave (the
    /// `description` is then a note beside it).
    #[serde(skip_serializing_if = "Option::is_none")]
    description_hash: Option<Hex<'a>>,
    expires_at: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    local_offer_id: Option<Hex<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    invreq_payer_note: Option<String>,
    created_index: CreatedIndex,
    #[serde(skip_serializing_if = "never_updated")]
    updated_index: UpdatedIndex,
    /// Our extension, for hold invoices only: holdinvoice's state.
    #[serde(skip_serializing_if = "Option::is_none")]
    hold_state: Option<&'static str>,
}

impl<'a> InvoiceJson<'a> {
    /// The object of `r`; `preimage` is shown only if it is paid.
    pub fn new(r: &'a InvoiceRecord, preimage: Option<&'a PaymentPreimage>) -> Self {
        let c = &r.created;
        let payment = match (r.status, &r.payment) {
            (InvoiceStatus::Paid, Some(p)) => Some(p),
            _ => None,
        };
        let bolt12 = r.is_bolt12();
        // As Core Lightning: the payer's note is read back from the invoice of a local offer.
        let invreq_payer_note = r.local_offer_id.and_then(|_| {
            invoiced_actors::policy::bolt12::Invoice::decode(&c.body.bolt11)
                .ok()?
                .payer_note()
                .ok()
                .flatten()
        });
        InvoiceJson {
            label: c.body.label.as_str(),
            bolt11: (!bolt12).then_some(c.body.bolt11.as_str()),
            bolt12: bolt12.then_some(c.body.bolt11.as_str()),
            payment_hash: c.body.payment_hash,
            amount_msat: c.body.amount_msat,
            status: r.status.as_str(),
            pay_index: payment.map(|p| p.pay_index),
            amount_received_msat: payment.map(|p| p.amount_received_msat),
            paid_at: payment.map(|p| p.paid_at),
            payment_preimage: payment.and(preimage),
            // A BOLT12 invoice's description is its offer's, which may have none; an invoice
            // with a given hash may have no note.
            description: r
                .description()
                .filter(|d| !((bolt12 || r.given_description_hash.is_some()) && d.is_empty())),
            description_hash: r.given_description_hash.as_ref().map(|h| Hex(h)),
            expires_at: c.body.expires_at,
            local_offer_id: r.local_offer_id.as_ref().map(|o| Hex(o)),
            invreq_payer_note,
            created_index: c.created_index,
            updated_index: r.updated_index,
            hold_state: r.hold.as_ref().map(|h| h.state.as_str()),
        }
    }
}

/// The JSON of one invoice; `preimage` is shown only if it is paid.
pub fn invoice_json(r: &InvoiceRecord, preimage: Option<&PaymentPreimage>) -> Value {
    // Serialising this struct to a Value cannot fail (no maps with non-string keys).
    serde_json::to_value(InvoiceJson::new(r, preimage)).unwrap_or(Value::Null)
}

/// The preimages of the paid ones among `records` (`None` for the others), revealed by the
/// KeySigner in one round trip.
///
/// # Errors
/// -1 when the KeySigner does not answer.
pub async fn reveal_preimages(
    ctx: &RpcContext,
    records: &[InvoiceRecord],
) -> Result<Vec<Option<PaymentPreimage>>, RpcError> {
    let paid: Vec<(usize, &PreimageSeal)> = records
        .iter()
        .enumerate()
        .filter(|(_, r)| r.status == InvoiceStatus::Paid)
        .filter_map(|(i, r)| Some((i, r.preimage_seal()?)))
        .collect();
    reveal(ctx, records, paid).await
}

/// The preimages behind `seals` (index into `records`, seal), in one round trip to the
/// KeySigner; `None` for the records not named.
///
/// # Errors
/// -1 when the KeySigner does not answer.
pub async fn reveal(
    ctx: &RpcContext,
    records: &[InvoiceRecord],
    seals: Vec<(usize, &PreimageSeal)>,
) -> Result<Vec<Option<PaymentPreimage>>, RpcError> {
    let mut preimages: Vec<Option<PaymentPreimage>> = vec![None; records.len()];
    let paid: Vec<usize> = seals.iter().map(|(i, _)| *i).collect();
    if !paid.is_empty() {
        let seals = seals
            .into_iter()
            .map(|(i, seal)| (seal.clone(), records[i].created.body.payment_hash))
            .collect();
        let opened = ctx.signer.send(RevealPreimages { seals }).await?;
        for (i, p) in paid.into_iter().zip(opened) {
            preimages[i] = p;
        }
    }
    Ok(preimages)
}

/// The JSON of several invoices, with the paid ones' preimages.
///
/// # Errors
/// -1 when the KeySigner does not answer.
pub async fn invoices_json(
    ctx: &RpcContext,
    records: &[InvoiceRecord],
) -> Result<Vec<Value>, RpcError> {
    let preimages = reveal_preimages(ctx, records).await?;
    Ok(records
        .iter()
        .zip(&preimages)
        .map(|(r, p)| invoice_json(r, p.as_ref()))
        .collect())
}
