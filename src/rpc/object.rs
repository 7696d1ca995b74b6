//! The invoice object of `listinvoices` (and later the wait and delete methods), in Core
//! Lightning's key order.

use invoiced_events::InvoiceRecord;
use serde_json::{Map, Value};

/// The JSON of one invoice as seen at UNIX time `now`.
pub fn invoice_json(r: &InvoiceRecord, now: u64) -> Value {
    let c = &r.created;
    let mut m = Map::new();
    m.insert("label".into(), c.label.as_str().into());
    m.insert("bolt11".into(), c.bolt11.clone().into());
    m.insert("payment_hash".into(), hex::encode(c.payment_hash).into());
    if let Some(a) = c.amount_msat {
        m.insert("amount_msat".into(), a.into());
    }
    m.insert("status".into(), r.status_at(now).as_str().into());
    m.insert("description".into(), c.description.clone().into());
    m.insert("expires_at".into(), c.expires_at.into());
    m.insert("created_index".into(), c.created_index.into());
    if r.updated_index != 0 {
        m.insert("updated_index".into(), r.updated_index.into());
    }
    Value::Object(m)
}
