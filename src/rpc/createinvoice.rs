//! `createinvoice {invstring, label, preimage}` for BOLT12: the invoice a node's offers plugin
//! builds for an `invoice_request`, completed, signed and recorded here, so that BOLT12 invoices
//! live in the same log and index space as every other (see docs/PLUGIN.md, "BOLT12").
//!
//! Checks and errors in `json_createinvoice`'s order (`lightningd/invoice.c`): -32602 for an
//! unparsable string, an invoice already signed, no `invoice_amount`, no
//! `invoice_payment_hash`, or a preimage that is not the hash's; then 901 and 900 as `invoice`
//! gives them, 900 with the existing invoice as `data` (the offers plugin re-sends an unpaid one).
//! `local_offer_id` (ours) is set by `invoiced-cln` after the node said the offer is its own and
//! active (lightningd's 907 is the plugin's); it must be the invoice's offer id.

use invoiced_actors::invoice_creator::{Bolt12Request, CreateBolt12, CreateError};
use invoiced_actors::key_signer::sha256;
use invoiced_actors::policy::bolt12::Invoice;
use invoiced_events::{Label, Msat, PaymentPreimage};
use serde_json::value::RawValue;
use serde_json::Value;

use super::error::{Internal, RpcError};
use super::object::invoice_json;
use super::params::{as_string, bind, hash32, hex32, label_text, required, ParamSpec};
use super::RpcContext;

/// `createinvoice` parameters.
pub const SPEC: ParamSpec = ParamSpec {
    names: &["invstring", "label", "preimage"],
    aliases: &[],
    named_only: &["local_offer_id"],
    required: 3,
};

/// Reads and checks `createinvoice` params into a request.
///
/// # Errors
/// -32602 naming the parameter or what the invoice lacks.
pub fn parse_createinvoice(
    params: Option<&RawValue>,
    cltv: invoiced_actors::policy::bolt11::Cltv,
) -> Result<Bolt12Request, RpcError> {
    let (mut invstring, mut label, mut preimage, mut offer) = (None, None, None, None);
    for (name, v) in bind(params, &SPEC)? {
        match name {
            "invstring" => {
                invstring = Some(as_string(v).ok_or_else(|| {
                    RpcError::bad_param("invstring", "should be a string", v.get())
                })?)
            }
            "label" => label = Some(label_text(v, "label")?),
            "preimage" => {
                preimage = Some(PaymentPreimage(hex32(
                    v,
                    "preimage",
                    "should be 64 hex digits",
                )?))
            }
            _ => offer = Some(hash32(v, "local_offer_id")?),
        }
    }
    let invstring = required(invstring, "invstring")?;
    let label = Label::any(required(label, "label")?).map_err(|e| RpcError::label(&e))?;
    let preimage = required(preimage, "preimage")?;
    let invoice = Invoice::decode(&invstring)
        .map_err(|e| RpcError::unparsable_invoice(&invstring, &e.to_string()))?;
    let field = |e: invoiced_actors::policy::bolt12::Bolt12Error| {
        RpcError::unparsable_invoice(&invstring, &e.to_string())
    };
    if invoice.is_signed() {
        return Err(RpcError::invalid_params("invoice already signed"));
    }
    let amount_msat = invoice
        .amount_msat()
        .map_err(field)?
        .ok_or_else(|| RpcError::invalid_params("Missing invoice_amount in invoice"))?;
    let hash = invoice
        .payment_hash()
        .map_err(field)?
        .ok_or_else(|| RpcError::invalid_params("Missing payment_hash in invoice"))?;
    if sha256(&preimage.0) != hash {
        return Err(RpcError::invalid_params("Incorrect preimage"));
    }
    if offer.is_some_and(|o| o != invoice.offer_id()) {
        return Err(RpcError::invalid_params(
            "local_offer_id: is not the invoice's offer",
        ));
    }
    Ok(Bolt12Request {
        description: invoice.description().map_err(field)?.unwrap_or_default(),
        created_at: invoice.created_at().map_err(field)?,
        expiry: invoice.relative_expiry().map_err(field)?,
        invoice,
        label,
        preimage,
        amount_msat: Msat(amount_msat),
        local_offer_id: offer,
        cltv,
    })
}

/// Runs `createinvoice`: the new invoice as `listinvoices` shows it.
pub async fn createinvoice(ctx: &RpcContext, params: Option<&RawValue>) -> Result<Value, RpcError> {
    let req = parse_createinvoice(params, ctx.cltv_final)?;
    let label = req.label.clone();
    let record = match ctx.creator.send(CreateBolt12(req)).await? {
        Ok(record) => record,
        Err(e @ CreateError::DuplicateLabel(_)) => {
            // Core Lightning's `fail_exists`: the invoice under the label as data.
            let existing = by(ctx, |b| b.by_label(&label).cloned())?;
            return Err(RpcError::from(e).with_data(existing.map(|r| invoice_json(&r, None))));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(invoice_json(&record, None))
}

/// The invoice `find` picks out of the projection, read whole from the log.
fn by(
    ctx: &RpcContext,
    find: impl FnOnce(&invoiced_events::InvoiceBook) -> Option<invoiced_events::InvoiceEntry>,
) -> Result<Option<invoiced_events::InvoiceRecord>, RpcError> {
    let entry = ctx
        .invoices
        .pick(|s| find(&s.invoices))
        .map_err(|e| RpcError::internal(Internal::Invoices, e))?;
    entry
        .map(|e| ctx.invoices.invoice(e))
        .transpose()
        .map_err(|e| RpcError::internal(Internal::Invoices, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use invoiced_actors::policy::bolt11::Cltv;

    fn params(v: serde_json::Value) -> Box<RawValue> {
        serde_json::value::to_raw_value(&v).unwrap()
    }

    /// Core Lightning's invoice, signed: refused as already signed, after the preimage and
    /// label are read; each parameter's error names it.
    #[test]
    fn refusals_name_what_is_wrong() {
        let cltv = Cltv::new(18).unwrap();
        let signed = include_str!("../../actors/tests/data/cln_bolt12_invoice.txt").trim();
        let p = params(
            serde_json::json!({"invstring": signed, "label": "l", "preimage": "00".repeat(32)}),
        );
        assert_eq!(
            parse_createinvoice(Some(&p), cltv).unwrap_err().message,
            "invoice already signed"
        );
        let p = params(
            serde_json::json!({"invstring": "lni1qqqqq", "label": "l", "preimage": "00".repeat(32)}),
        );
        assert!(parse_createinvoice(Some(&p), cltv)
            .unwrap_err()
            .message
            .starts_with("Unparsable invoice 'lni1qqqqq': "));
        let p = params(
            serde_json::json!({"invstring": "x".repeat(5000), "label": "l", "preimage": "00".repeat(32)}),
        );
        assert!(
            parse_createinvoice(Some(&p), cltv)
                .unwrap_err()
                .message
                .len()
                < 400,
            "the string is echoed cut"
        );
        let p = params(serde_json::json!({"invstring": signed, "label": "l", "preimage": "zz"}));
        assert!(parse_createinvoice(Some(&p), cltv)
            .unwrap_err()
            .message
            .starts_with("preimage: "));
        let p = params(serde_json::json!({"invstring": signed, "label": "l"}));
        assert_eq!(
            parse_createinvoice(Some(&p), cltv).unwrap_err().code,
            -32602
        );
    }
}
