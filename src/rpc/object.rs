//! The invoice object of `listinvoices`, `delinvoice`, `settleinvoice` and the waits, in Core
//! Lightning's key order. The preimage is shown only once paid, and comes from the KeySigner.

use invoiced_actors::key_signer::RevealPreimages;
use invoiced_events::{Hash32, InvoiceRecord, InvoiceStatus};
use serde_json::{Map, Value};

use super::error::{RpcError, LIGHTNINGD};
use super::RpcContext;

/// The JSON of one invoice; `preimage` is shown only if it is paid.
pub fn invoice_json(r: &InvoiceRecord, preimage: Option<&Hash32>) -> Value {
    let c = &r.created;
    let mut m = Map::new();
    m.insert("label".into(), c.label.as_str().into());
    m.insert("bolt11".into(), c.bolt11.clone().into());
    m.insert("payment_hash".into(), hex::encode(c.payment_hash).into());
    if let Some(a) = c.amount_msat {
        m.insert("amount_msat".into(), a.into());
    }
    m.insert("status".into(), r.status.as_str().into());
    if let (InvoiceStatus::Paid, Some(p)) = (r.status, &r.payment) {
        m.insert("pay_index".into(), p.pay_index.into());
        m.insert("amount_received_msat".into(), p.amount_received_msat.into());
        m.insert("paid_at".into(), p.paid_at.into());
        if let Some(pre) = preimage {
            m.insert("payment_preimage".into(), hex::encode(pre).into());
        }
    }
    if let Some(d) = r.description() {
        m.insert("description".into(), d.into());
    }
    m.insert("expires_at".into(), c.expires_at.into());
    m.insert("created_index".into(), c.created_index.into());
    if r.updated_index != 0 {
        m.insert("updated_index".into(), r.updated_index.into());
    }
    Value::Object(m)
}

/// The JSON of several invoices, revealing the preimages of the paid ones in one round trip.
///
/// # Errors
/// -1 when the KeySigner does not answer.
pub async fn invoices_json(ctx: &RpcContext, records: &[InvoiceRecord]) -> Result<Vec<Value>, RpcError> {
    let paid: Vec<usize> = records.iter().enumerate().filter(|(_, r)| r.status == InvoiceStatus::Paid).map(|(i, _)| i).collect();
    let mut preimages: Vec<Option<Hash32>> = vec![None; records.len()];
    if !paid.is_empty() {
        let seals = paid.iter().map(|&i| (records[i].created.preimage.clone(), records[i].created.payment_hash)).collect();
        let opened = ctx
            .signer
            .send(RevealPreimages { seals })
            .await
            .map_err(|e| RpcError::new(LIGHTNINGD, format!("internal actor unavailable: {e}")))?;
        for (i, p) in paid.into_iter().zip(opened) {
            preimages[i] = p;
        }
    }
    Ok(records.iter().zip(&preimages).map(|(r, p)| invoice_json(r, p.as_ref())).collect())
}
