//! One implementation of each call, shared by the gRPC and the REST surface: LND's request in,
//! LND's answer (or a `tonic::Status` in LND's words) out, by way of invoiced's socket for
//! invoices and the node's socket for the rest.

use std::path::Path;

use serde_json::{json, Value};
use tonic::Status;

use super::invoice;
use super::proto::lnrpc;
use crate::rpc_client::{CallError, RpcPool};

/// The two sockets behind the API.
pub struct Service {
    invoiced: RpcPool,
    node: RpcPool,
}

/// An error of a socket as LND's status: a refused request is the caller's (`Unknown`, the
/// code LND answers most refusals with, its message kept), an unreachable socket `Unavailable`.
fn status_of(what: &str, e: &CallError) -> Status {
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

    async fn invoiced(&self, method: &str, params: Value) -> Result<Value, Status> {
        self.invoiced
            .call(method, &params)
            .await
            .map_err(|e| status_of("invoiced", &e))
    }

    async fn node(&self, method: &str, params: Value) -> Result<Value, Status> {
        self.node
            .call(method, &params)
            .await
            .map_err(|e| status_of("the node", &e))
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
        let payment_addr = made["payment_secret"]
            .as_str()
            .and_then(|s| hex::decode(s).ok())
            .unwrap_or_default();
        Ok(lnrpc::AddInvoiceResponse {
            r_hash: hash.to_vec(),
            payment_request: made["bolt11"].as_str().unwrap_or_default().to_owned(),
            add_index: made["created_index"].as_u64().unwrap_or(0),
            payment_addr,
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
