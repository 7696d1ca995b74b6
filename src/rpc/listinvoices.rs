//! The `listinvoices` method: lookups by label, invstring or payment hash, and paging by index.

use invoiced_actors::store::StoreError;
use invoiced_events::{
    CreatedIndex, Hash32, InvoiceBook, InvoiceEntry, Label, PaymentHash, UpdatedIndex,
};
use lightning_invoice::SignedRawBolt11Invoice;
use serde::Serialize;
use serde_json::value::RawValue;

use super::error::{Internal, RpcError};
use super::object::{reveal_preimages, InvoiceJson};
use super::params::{as_string, bind, hash32, label_text, unsigned, ParamSpec};
use super::{to_raw, RpcContext};

/// Declared parameters, in positional order.
pub const SPEC: ParamSpec = ParamSpec {
    names: &[
        "label",
        "invstring",
        "payment_hash",
        "offer_id",
        "index",
        "start",
        "limit",
    ],
    aliases: &[],
    named_only: &[],
    required: 0,
};

/// Which invoices a `listinvoices` asks for.
#[derive(Debug)]
pub enum Lookup {
    /// All of them (paged by `index`, `start`, `limit`).
    All,
    /// The one with this label.
    Label(String),
    /// The one with this payment hash (given, or from `invstring`).
    Hash(PaymentHash),
    /// The BOLT12 invoices answering the node's offer with this id.
    Offer(Hash32),
}

/// The index a listing pages by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Index {
    /// `created` (and `deleted`, as Core Lightning pages it).
    Created,
    /// `updated`.
    Updated,
}

/// A `listinvoices` request, read and checked.
#[derive(Debug)]
pub struct ListQuery {
    /// Which invoices.
    pub lookup: Lookup,
    /// The paging index, if any.
    pub index: Option<Index>,
    /// The first index value.
    pub start: Option<u64>,
    /// How many at most.
    pub limit: Option<u64>,
}

/// Strips a `lightning:` prefix (any case) and lower-cases, as Core Lightning does.
pub fn normalise_invstring(s: &str) -> String {
    let s = s.trim();
    // `get` keeps a client's text whose 10th byte is inside a character from panicking.
    let s = match (s.get(..10), s.get(10..)) {
        (Some(prefix), Some(rest)) if prefix.eq_ignore_ascii_case("lightning:") => rest,
        _ => s,
    };
    s.to_ascii_lowercase()
}

fn invstring_hash(v: &RawValue) -> Result<PaymentHash, RpcError> {
    let bad = || RpcError::invalid_params("Invalid invstring");
    let text = normalise_invstring(&as_string(v).ok_or_else(bad)?);
    if text.starts_with(invoiced_actors::policy::bolt12::HRP) {
        return invoiced_actors::policy::bolt12::Invoice::decode(&text)
            .ok()
            .and_then(|i| i.payment_hash().ok().flatten())
            .map(PaymentHash)
            .ok_or_else(bad);
    }
    let raw: SignedRawBolt11Invoice = text.parse().map_err(|_| bad())?;
    raw.raw_invoice()
        .payment_hash()
        .map(|h| PaymentHash(*AsRef::<[u8; 32]>::as_ref(&h.0)))
        .ok_or_else(bad)
}

/// The `listinvoices` result.
#[derive(Serialize)]
struct Listing<'a> {
    invoices: Vec<InvoiceJson<'a>>,
}

/// Runs `listinvoices`.
pub async fn listinvoices(
    ctx: &RpcContext,
    params: Option<&RawValue>,
) -> Result<Box<RawValue>, RpcError> {
    let ListQuery {
        lookup,
        index,
        start,
        limit,
    } = parse_query(params)?;
    let unavailable = |e: StoreError| RpcError::internal(Internal::Invoices, e);
    let entries = ctx
        .invoices
        .pick(|s| collect(&s.invoices, lookup, index, start, limit))
        .map_err(unavailable)?;
    // A long listing reads, decodes and encodes off the RPC thread, so it holds nobody up; a
    // short one (a lookup) is done here, cheaper than two hops to the blocking pool.
    let long = entries.len() > INLINE_LISTING;
    let reader = ctx.invoices.clone();
    let found = off_thread_if(long, move || reader.invoices(entries).map_err(unavailable)).await?;
    let preimages = reveal_preimages(ctx, &found).await?;
    off_thread_if(long, move || {
        let invoices = found
            .iter()
            .zip(&preimages)
            .map(|(r, p)| InvoiceJson::new(r, p.as_ref()))
            .collect();
        to_raw(&Listing { invoices })
    })
    .await
}

/// Reads `listinvoices` params.
///
/// # Errors
/// -32602 naming the parameter, or the conflict, in Core Lightning's words.
pub fn parse_query(params: Option<&RawValue>) -> Result<ListQuery, RpcError> {
    let mut lookups = 0;
    let (mut lookup, mut index, mut start, mut limit) = (Lookup::All, None, None, None);
    for (name, v) in bind(params, &SPEC)? {
        match name {
            "label" => lookup = Lookup::Label(label_text(v, "label")?),
            "invstring" => lookup = Lookup::Hash(invstring_hash(v)?),
            "payment_hash" => lookup = Lookup::Hash(hash32(v, "payment_hash")?),
            "offer_id" => lookup = Lookup::Offer(hash32(v, "offer_id")?),
            "index" => {
                index = Some(match as_string(v).as_deref() {
                    // Core Lightning accepts `deleted` and pages it as `created`
                    // (`wallet/invoices.c`: invoices_first); tests/interop checks it against lightningd.
                    Some("created" | "deleted") => Index::Created,
                    Some("updated") => Index::Updated,
                    _ => return Err(RpcError::bad_param("index", "unknown index", v.get())),
                })
            }
            "start" => {
                start = Some(unsigned(
                    v,
                    "start",
                    "should be an unsigned 64 bit integer",
                    u64::MAX,
                )?)
            }
            "limit" => {
                limit = Some(unsigned(
                    v,
                    "limit",
                    "should be an unsigned 32 bit integer",
                    u64::from(u32::MAX),
                )?)
            }
            other => {
                return Err(RpcError::invalid_params(format!(
                    "unhandled parameter {other}"
                )))
            }
        }
        if matches!(name, "label" | "invstring" | "payment_hash" | "offer_id") {
            lookups += 1;
        }
    }
    if lookups > 1 {
        return Err(RpcError::invalid_params(
            "Can only specify one of {label}, {invstring}, {payment_hash} or {offer_id}",
        ));
    }
    if index.is_none() && start.unwrap_or(0) != 0 {
        return Err(RpcError::invalid_params(
            "Can only specify {start} with {index}",
        ));
    }
    if index.is_none() && limit.is_some() {
        return Err(RpcError::invalid_params(
            "Can only specify {limit} with {index}",
        ));
    }
    Ok(ListQuery {
        lookup,
        index,
        start,
        limit,
    })
}

/// Listings of at most this many invoices are read and encoded on the RPC thread.
const INLINE_LISTING: usize = 64;

/// Runs `work` on tokio's blocking pool if `off`, else here.
async fn off_thread_if<T: Send + 'static>(
    off: bool,
    work: impl FnOnce() -> Result<T, RpcError> + Send + 'static,
) -> Result<T, RpcError> {
    if !off {
        return work();
    }
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| RpcError::internal(Internal::Listing, e))?
}

/// The entries a listing asks for, copied out of the projection.
fn collect(
    book: &InvoiceBook,
    lookup: Lookup,
    index: Option<Index>,
    start: Option<u64>,
    limit: Option<u64>,
) -> Vec<InvoiceEntry> {
    match lookup {
        Lookup::Offer(o) => book
            .from_created_index(CreatedIndex(0))
            .filter(|e| e.local_offer_id.as_deref() == Some(&o))
            .cloned()
            .collect(),
        Lookup::Label(l) => Label::any(l)
            .ok()
            .and_then(|l| book.by_label(&l))
            .into_iter()
            .cloned()
            .collect(),
        Lookup::Hash(h) => book.by_hash(&h).into_iter().cloned().collect(),
        Lookup::All => {
            let start = start.unwrap_or(0);
            let limit = limit.map_or(usize::MAX, |l| l as usize);
            match index {
                None | Some(Index::Created) => book
                    .from_created_index(CreatedIndex(start))
                    .take(limit)
                    .cloned()
                    .collect(),
                // Never-updated invoices have updated_index 0: with start 0 they come first.
                Some(Index::Updated) if start == 0 => {
                    let never = book
                        .from_created_index(CreatedIndex(0))
                        .filter(|e| e.updated_index == UpdatedIndex(0));
                    never
                        .chain(book.from_updated_index(UpdatedIndex(1)))
                        .take(limit)
                        .cloned()
                        .collect()
                }
                Some(Index::Updated) => book
                    .from_updated_index(UpdatedIndex(start))
                    .take(limit)
                    .cloned()
                    .collect(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::normalise_invstring;

    #[test]
    fn the_prefix_is_cut_only_on_a_character_boundary() {
        assert_eq!(normalise_invstring(" LIGHTNING:LNBC1X "), "lnbc1x");
        assert_eq!(normalise_invstring("lightnin€xyz"), "lightnin€xyz");
        assert_eq!(normalise_invstring("€€€€"), "€€€€");
        assert_eq!(normalise_invstring("lightning:"), "");
        assert_eq!(normalise_invstring("lightning"), "lightning");
    }
}
