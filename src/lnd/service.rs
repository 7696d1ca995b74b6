//! One implementation of each call, shared by the gRPC and the REST surface: LND's request in,
//! LND's answer (or a `tonic::Status` in LND's words) out, by way of invoiced's socket for
//! invoices and the node's socket for the rest.

use std::path::Path;

use serde_json::{json, Value};
use tonic::Status;

use super::invoice;
use super::proto::{invoicesrpc, lnrpc};
use crate::rpc_client::{CallError, RpcPool};

/// Invoices read from invoiced at a time.
const PAGE: u64 = 1000;

/// The two sockets behind the API.
pub struct Service {
    invoiced: RpcPool,
    node: RpcPool,
}

/// An error of a socket as LND's status: a refused request is the caller's (`Unknown`, the
/// code LND answers most refusals with, its message kept), an unreachable socket `Unavailable`.
pub fn status_of(what: &str, e: &CallError) -> Status {
    match e {
        CallError::Rpc(err) => {
            Status::unknown(err["message"].as_str().unwrap_or("refused").to_owned())
        }
        CallError::Unreachable(why) => Status::unavailable(format!("{what}: {why}")),
    }
}

impl Service {
    /// The API over invoiced's socket at `invoiced` and the node's at `node`.
    pub fn new(invoiced: &Path, node: &Path) -> Service {
        Service {
            invoiced: RpcPool::new(invoiced),
            node: RpcPool::new(node),
        }
    }

    /// A call on invoiced's socket.
    ///
    /// # Errors
    /// invoiced's refusal as a status, or `Unavailable`.
    pub async fn invoiced(&self, method: &str, params: Value) -> Result<Value, Status> {
        self.invoiced_raw(method, params)
            .await
            .map_err(|e| status_of("invoiced", &e))
    }

    /// A call on invoiced's socket, its error as it came.
    ///
    /// # Errors
    /// invoiced's error object, or unreachable.
    pub async fn invoiced_raw(&self, method: &str, params: Value) -> Result<Value, CallError> {
        self.invoiced.call(method, &params).await
    }

    /// A call on the node's socket.
    ///
    /// # Errors
    /// The node's refusal as a status, or `Unavailable`.
    pub async fn node(&self, method: &str, params: Value) -> Result<Value, Status> {
        self.node_raw(method, params)
            .await
            .map_err(|e| status_of("the node", &e))
    }

    /// A call on the node's socket, its error as it came.
    ///
    /// # Errors
    /// The node's error object, or unreachable.
    pub async fn node_raw(&self, method: &str, params: Value) -> Result<Value, CallError> {
        self.node.call(method, &params).await
    }

    /// `AddInvoice`: a new invoice through invoiced.
    ///
    /// # Errors
    /// LND's refusal of a bad request, or invoiced's refusal passed on.
    pub async fn add_invoice(
        &self,
        req: lnrpc::Invoice,
    ) -> Result<lnrpc::AddInvoiceResponse, Status> {
        let mut drawn = [0u8; 32];
        getrandom::getrandom(&mut drawn).map_err(|e| Status::internal(e.to_string()))?;
        let bad = |e: invoice::AddError| Status::invalid_argument(e.to_string());
        let preimage = invoice::preimage_of(&req, drawn).map_err(bad)?;
        let (params, hash) = invoice::add_params(&req, preimage).map_err(bad)?;
        let made = self.invoiced("invoice", params).await.map_err(|s| {
            if s.message().contains("already") || s.message().contains("Duplicate") {
                Status::already_exists("invoice with payment hash already exists")
            } else {
                s
            }
        })?;
        Ok(lnrpc::AddInvoiceResponse {
            r_hash: hash.to_vec(),
            payment_request: made["bolt11"].as_str().unwrap_or_default().to_owned(),
            add_index: made["created_index"].as_u64().unwrap_or(0),
            payment_addr: invoice::hex_bytes(&made["payment_secret"]),
        })
    }

    /// `LookupInvoice` (and `LookupInvoiceV2` by hash): the invoice with this payment hash.
    ///
    /// # Errors
    /// `NotFound` when there is none; `InvalidArgument` for a hash that is not 32 bytes.
    pub async fn lookup_invoice(&self, hash: &[u8]) -> Result<lnrpc::Invoice, Status> {
        if hash.len() != 32 {
            return Err(Status::invalid_argument(format!(
                "payment hash must be exactly 32 bytes, is instead {}",
                hash.len()
            )));
        }
        let found = self
            .invoiced("listinvoices", json!({"payment_hash": hex::encode(hash)}))
            .await?;
        found["invoices"]
            .get(0)
            .map(invoice::to_lnd)
            .ok_or_else(|| Status::not_found("unable to locate invoice"))
    }

    /// `AddHoldInvoice`: a hold invoice for the caller's payment hash, through invoiced's
    /// `holdinvoice`; its payments are held until `SettleInvoice` or `CancelInvoice`.
    ///
    /// # Errors
    /// LND's refusal of a bad request, or invoiced's refusal passed on.
    pub async fn add_hold_invoice(
        &self,
        req: invoicesrpc::AddHoldInvoiceRequest,
    ) -> Result<invoicesrpc::AddHoldInvoiceResp, Status> {
        let hash = <[u8; 32]>::try_from(req.hash.as_slice())
            .map_err(|_| Status::invalid_argument("hash must be exactly 32 bytes"))?;
        let as_invoice = lnrpc::Invoice {
            memo: req.memo,
            value: req.value,
            value_msat: req.value_msat,
            description_hash: req.description_hash,
            expiry: req.expiry,
            fallback_addr: req.fallback_addr,
            cltv_expiry: req.cltv_expiry,
            private: req.private,
            ..Default::default()
        };
        let params = invoice::hold_params(&as_invoice, hash)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        // holdinvoice answers the invoice as committed: nothing to read back.
        let made = self.invoiced("holdinvoice", params).await?;
        Ok(invoicesrpc::AddHoldInvoiceResp {
            payment_request: made["bolt11"].as_str().unwrap_or_default().to_owned(),
            add_index: made["created_index"].as_u64().unwrap_or(0),
            payment_addr: invoice::hex_bytes(&made["payment_secret"]),
        })
    }

    /// `SettleInvoice`: the held payment of the hold invoice of this preimage, taken.
    ///
    /// # Errors
    /// invoiced's refusal (no such hold invoice, or not `ACCEPTED`).
    pub async fn settle_invoice(
        &self,
        req: invoicesrpc::SettleInvoiceMsg,
    ) -> Result<invoicesrpc::SettleInvoiceResp, Status> {
        if req.preimage.len() != 32 {
            return Err(Status::invalid_argument(
                "preimage must be exactly 32 bytes",
            ));
        }
        self.invoiced(
            "holdinvoicesettle",
            json!({"preimage": hex::encode(&req.preimage)}),
        )
        .await?;
        Ok(invoicesrpc::SettleInvoiceResp {})
    }

    /// `CancelInvoice`: the hold invoice of this hash canceled, its held parts failed.
    ///
    /// # Errors
    /// invoiced's refusal (no such hold invoice, or settled already).
    pub async fn cancel_invoice(
        &self,
        req: invoicesrpc::CancelInvoiceMsg,
    ) -> Result<invoicesrpc::CancelInvoiceResp, Status> {
        if req.payment_hash.len() != 32 {
            return Err(Status::invalid_argument(
                "payment hash must be exactly 32 bytes",
            ));
        }
        self.invoiced(
            "holdinvoicecancel",
            json!({"payment_hash": hex::encode(&req.payment_hash)}),
        )
        .await?;
        Ok(invoicesrpc::CancelInvoiceResp {})
    }

    /// `LookupInvoiceV2`: as `LookupInvoice`, by payment hash (the other references, payment
    /// address and AMP set id, are not kept by invoiced).
    ///
    /// # Errors
    /// As [`Service::lookup_invoice`]; `Unimplemented` for another reference.
    pub async fn lookup_invoice_v2(
        &self,
        req: invoicesrpc::LookupInvoiceMsg,
    ) -> Result<lnrpc::Invoice, Status> {
        use invoicesrpc::lookup_invoice_msg::InvoiceRef;
        match req.invoice_ref {
            Some(InvoiceRef::PaymentHash(h)) => self.lookup_invoice(&h).await,
            Some(_) => Err(Status::unimplemented(
                "only payment_hash lookups: invoiced keeps no AMP set ids, nor an index by payment address",
            )),
            None => Err(Status::invalid_argument("invoice_ref is required")),
        }
    }

    /// `ListInvoices`: a page of invoices by `add_index`, forwards from `index_offset` or, with
    /// `reversed`, backwards from it (from the newest when 0), as LND pages them.
    ///
    /// # Errors
    /// LND's refusal of a date range that ends before it starts; invoiced's refusal.
    pub async fn list_invoices(
        &self,
        req: lnrpc::ListInvoiceRequest,
    ) -> Result<lnrpc::ListInvoiceResponse, Status> {
        let (from, to) = (req.creation_date_start, req.creation_date_end);
        if from != 0 && to != 0 && from >= to {
            return Err(Status::unknown(format!(
                "start date({from}) must be before end date({to})"
            )));
        }
        let max = if req.num_max_invoices == 0 {
            100
        } else {
            req.num_max_invoices
        };
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        let keep = |inv: &lnrpc::Invoice| {
            let date = u64::try_from(inv.creation_date).unwrap_or(0);
            let open = matches!(
                inv.state(),
                lnrpc::invoice::InvoiceState::Open | lnrpc::invoice::InvoiceState::Accepted
            );
            (!req.pending_only || open) && (from == 0 || date >= from) && (to == 0 || date <= to)
        };
        let mut out = Vec::new();
        if req.reversed {
            let mut end = match req.index_offset {
                0 => self.wait_index("created", 0).await?,
                n => n - 1,
            };
            while end >= 1 && out.len() < max {
                let start = end.saturating_sub(PAGE - 1).max(1);
                // `limit` counts the invoices that exist, so a gap lets later ones in: cut at `end`.
                let page = self.created_range(start, end - start + 1).await?;
                let page = page.into_iter().filter(|i| i.add_index <= end).rev();
                out.extend(page.filter(|i| keep(i)).take(max - out.len()));
                end = start - 1;
            }
            out.reverse();
        } else {
            let mut next = req.index_offset + 1;
            loop {
                let page = self.created_range(next, PAGE).await?;
                let short = page.len() < usize::try_from(PAGE).unwrap_or(usize::MAX);
                for inv in page {
                    next = next.max(inv.add_index + 1);
                    if out.len() < max && keep(&inv) {
                        out.push(inv);
                    }
                }
                if short || out.len() >= max {
                    break;
                }
            }
        }
        Ok(lnrpc::ListInvoiceResponse {
            first_index_offset: out.first().map_or(0, |i| i.add_index),
            last_index_offset: out.last().map_or(0, |i| i.add_index),
            invoices: out,
        })
    }

    /// Up to `limit` invoices from `created_index` `start` on, as LND's.
    async fn created_range(&self, start: u64, limit: u64) -> Result<Vec<lnrpc::Invoice>, Status> {
        let listed = self
            .invoiced(
                "listinvoices",
                json!({"index": "created", "start": start, "limit": limit}),
            )
            .await?;
        Ok(listed["invoices"]
            .as_array()
            .into_iter()
            .flatten()
            .map(invoice::to_lnd)
            .collect())
    }

    /// invoiced's counter `index` (`created`, `updated`, …) once it reaches `nextvalue`: at
    /// once if it has (0: its value now), else when it does (`wait invoices`).
    ///
    /// # Errors
    /// invoiced's refusal, or `Unavailable`.
    pub async fn wait_index(&self, index: &str, nextvalue: u64) -> Result<u64, Status> {
        let now = self
            .invoiced(
                "wait",
                json!({"subsystem": "invoices", "indexname": index, "nextvalue": nextvalue}),
            )
            .await?;
        Ok(now[index].as_u64().unwrap_or(nextvalue))
    }

    /// `ChannelBalance`: what the node's channels hold, ours and theirs, from its
    /// `listpeerchannels` (open channels; those still opening as pending).
    ///
    /// # Errors
    /// The node's refusal, or `Unavailable`.
    #[allow(deprecated)]
    pub async fn channel_balance(&self) -> Result<lnrpc::ChannelBalanceResponse, Status> {
        let listed = self.node("listpeerchannels", json!({})).await?;
        let msat = |v: &Value| v.as_u64().unwrap_or(0);
        let (mut local, mut remote, mut pending_local, mut pending_remote) = (0, 0, 0, 0);
        for ch in listed["channels"].as_array().into_iter().flatten() {
            let (ours, total) = (msat(&ch["to_us_msat"]), msat(&ch["total_msat"]));
            let theirs = total.saturating_sub(ours);
            match ch["state"].as_str().unwrap_or_default() {
                "CHANNELD_NORMAL" | "CHANNELD_AWAITING_SPLICE" => {
                    local += ours;
                    remote += theirs;
                }
                "CHANNELD_AWAITING_LOCKIN"
                | "DUALOPEND_AWAITING_LOCKIN"
                | "DUALOPEND_OPEN_COMMITTED" => {
                    pending_local += ours;
                    pending_remote += theirs;
                }
                _ => {}
            }
        }
        let amount = |m: u64| {
            Some(lnrpc::Amount {
                sat: m / 1000,
                msat: m,
            })
        };
        Ok(lnrpc::ChannelBalanceResponse {
            balance: i64::try_from(local / 1000).unwrap_or(i64::MAX),
            pending_open_balance: i64::try_from(pending_local / 1000).unwrap_or(i64::MAX),
            local_balance: amount(local),
            remote_balance: amount(remote),
            unsettled_local_balance: amount(0),
            unsettled_remote_balance: amount(0),
            pending_open_local_balance: amount(pending_local),
            pending_open_remote_balance: amount(pending_remote),
            custom_channel_data: Vec::new(),
        })
    }

    /// `GetInfo`: the node's identity and state, as LND's fields (the deprecated `chains` filled
    /// as LND still fills it).
    #[allow(deprecated)]
    ///
    /// # Errors
    /// The node's refusal, or `Unavailable`.
    pub async fn get_info(&self) -> Result<lnrpc::GetInfoResponse, Status> {
        let info = self.node("getinfo", json!({})).await?;
        let network = info["network"].as_str().unwrap_or("bitcoin");
        let count = |k: &str| u32::try_from(info[k].as_u64().unwrap_or(0)).unwrap_or(u32::MAX);
        let id = info["id"].as_str().unwrap_or_default().to_owned();
        let uris = info["address"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| Some(format!("{id}@{}:{}", a["address"].as_str()?, a["port"])))
            .collect();
        Ok(lnrpc::GetInfoResponse {
            version: format!(
                "0.20.3-beta invoiced-{} core-lightning-{}",
                env!("CARGO_PKG_VERSION"),
                info["version"].as_str().unwrap_or("?")
            ),
            identity_pubkey: id,
            alias: info["alias"].as_str().unwrap_or_default().to_owned(),
            color: format!("#{}", info["color"].as_str().unwrap_or("000000")),
            num_active_channels: count("num_active_channels"),
            num_inactive_channels: count("num_inactive_channels"),
            num_pending_channels: count("num_pending_channels"),
            num_peers: count("num_peers"),
            block_height: count("blockheight"),
            synced_to_chain: info.get("warning_bitcoind_sync").is_none()
                && info.get("warning_lightningd_sync").is_none(),
            synced_to_graph: true,
            chains: vec![lnrpc::Chain {
                chain: "bitcoin".into(),
                network: if network == "bitcoin" {
                    "mainnet"
                } else {
                    network
                }
                .to_owned(),
            }],
            uris,
            ..Default::default()
        })
    }
}
