//! `invoiced-cln`: the Core Lightning plugin that puts invoiced in front of a node.
//!
//! Started by lightningd (`plugin=/path/to/invoiced-cln` and `invoiced-rpc-file=PATH` in its
//! config), it connects to a running invoiced and, once it has checked that invoiced signs with
//! the node's own key on the node's network, takes over:
//! - the invoice commands on the node's socket ([`forward`], the `rpc_command` hook),
//! - payments to invoiced's invoices ([`htlc`], the `htlc_accepted` hook), hold invoices' HTLCs
//!   held until settled or canceled, and holdinvoice's commands ([`forward::HOLD_METHODS`]),
//! - invoiced's view of the node's channels ([`channels`]).
//!
//! [`crate::rpc_client`] is the pooled JSON-RPC client both sides are reached with. The plugin keeps no
//! state of its own on disk: invoices live in invoiced's log, the parts of settled payments in
//! the node's datastore.

pub mod bolt12;
pub mod channels;

pub mod forward;
pub mod htlc;
pub mod selfpay;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cln_plugin::options::{DefaultIntegerConfigOption, StringConfigOption};
use cln_plugin::{Builder, ConfiguredPlugin, HookBuilder, HookFilter, Plugin};
use serde_json::{json, Value};

use crate::rpc_client::RpcPool;
use channels::ChannelFeed;
use htlc::Payments;

/// Path of invoiced's JSON-RPC socket.
pub const RPC_FILE: StringConfigOption<'static> = StringConfigOption::new_str_no_default(
    "invoiced-rpc-file",
    "Path of invoiced's JSON-RPC socket (required)",
);
/// Seconds a multi-part payment may take to complete.
pub const MPP_TIMEOUT: DefaultIntegerConfigOption<'static> =
    DefaultIntegerConfigOption::new_i64_with_default(
        "invoiced-mpp-timeout",
        60,
        "Seconds the parts of a payment may take to reach its total",
    );
/// Blocks before an HTLC's expiry at which a held one is failed while invoiced is unreachable.
pub const CLTV_SAFETY: DefaultIntegerConfigOption<'static> = DefaultIntegerConfigOption::new_i64_with_default(
    "invoiced-cltv-safety",
    6,
    "While invoiced is unreachable, hold a payable HTLC until it is this many blocks from expiry",
);
/// Time for a last log line to reach lightningd before the plugin exits.
const LOG_FLUSH: Duration = Duration::from_millis(200);
/// How long start-up waits for invoiced to answer.
const CONNECT_PATIENCE: Duration = Duration::from_secs(10);

/// What every callback shares.
#[derive(Clone)]
pub struct State {
    invoiced: Arc<RpcPool>,
    payments: Arc<Payments>,
    feed: Arc<ChannelFeed>,
    /// lightningd's socket, for the twins of self-payments ([`selfpay`]).
    node: Arc<PathBuf>,
    /// This node's id.
    node_id: Arc<str>,
}

/// The topic announced for each invoice created through the node: Core Lightning's
/// `invoice_creation` may be sent only by lightningd itself (it refuses a plugin that announces a
/// native topic), so ours carries the same fields under its own name.
pub const CREATION_TOPIC: &str = "invoiced_invoice_creation";
/// The same for each payment the node received for invoiced (`invoice_payment`'s fields).
pub const PAYMENT_TOPIC: &str = "invoiced_invoice_payment";

async fn on_rpc_command(p: Plugin<State>, payload: Value) -> Result<Value, anyhow::Error> {
    let command = &payload["rpc_command"];
    if selfpay::is_own_call(&command["id"]) {
        return Ok(json!({ "result": "continue" }));
    }
    if let Some(method) = command["method"]
        .as_str()
        .filter(|m| selfpay::INTERCEPTED.contains(m))
    {
        let state = p.state();
        return Ok(selfpay::intercept(
            &state.invoiced,
            &state.node,
            &state.node_id,
            &state.payments,
            method,
            &command["params"],
        )
        .await);
    }
    if let Some(invstring) = (command["method"] == "createinvoice")
        .then(|| bolt12::bolt12_invstring(&command["params"]))
        .flatten()
    {
        let state = p.state();
        let answer =
            bolt12::createinvoice(&state.invoiced, &state.node, invstring, &command["params"])
                .await;
        let made = &answer["return"]["result"];
        if let Some(label) = made["label"].as_str() {
            notify_creation(&p, json!({ "label": label, "msat": made["amount_msat"] })).await;
        }
        return Ok(answer);
    }
    let label = (payload["rpc_command"]["method"] == "invoice")
        .then(|| forward::invoice_label(&payload["rpc_command"]["params"]))
        .flatten();
    let answer = forward::rpc_command(&p.state().invoiced, payload).await;
    if let (Some(label), Some(bolt11)) = (label, answer["return"]["result"]["bolt11"].as_str()) {
        notify_creation(&p, forward::creation_payload(&label, bolt11)).await;
    }
    Ok(answer)
}

/// Announces an invoice created through the node (`label`, and `msat` when it has an amount);
/// made from the request and its answer, so it costs invoiced no second call.
async fn notify_creation(p: &Plugin<State>, payload: Value) {
    if let Err(e) = p
        .send_custom_notification(CREATION_TOPIC.to_owned(), payload)
        .await
    {
        log::warn!("cannot send {CREATION_TOPIC}: {e}");
    }
}

/// Announces every payment the plugin settled, in the order settled.
async fn notify_payments(
    p: Plugin<State>,
    mut paid: tokio::sync::mpsc::UnboundedReceiver<htlc::Paid>,
) {
    while let Some(pay) = paid.recv().await {
        let payload = json!({ "msat": pay.msat, "preimage": pay.preimage, "label": pay.label });
        if let Err(e) = p
            .send_custom_notification(PAYMENT_TOPIC.to_owned(), payload)
            .await
        {
            log::warn!("cannot send {PAYMENT_TOPIC}: {e}");
        }
    }
}

/// Not `async`: cln-plugin calls this as it reads each call and runs the future as a task, so
/// the HTLC takes its place in its payment's line here, in the order lightningd sent them.
fn on_htlc_accepted(
    p: Plugin<State>,
    payload: Value,
) -> impl Future<Output = Result<Value, anyhow::Error>> {
    let payments = Arc::clone(&p.state().payments);
    let arrival = payments.arrive(&payload);
    async move { Ok(payments.htlc_accepted(arrival).await) }
}

async fn on_hold_method(
    p: Plugin<State>,
    method: &'static str,
    params: Value,
) -> Result<Value, anyhow::Error> {
    let answer = forward::hold_method(&p.state().invoiced, method, params).await;
    if let (true, Ok(v)) = (method == "holdinvoice", &answer) {
        if let (Some(label), Some(bolt11)) = (v["label"].as_str(), v["bolt11"].as_str()) {
            notify_creation(&p, forward::creation_payload(label, bolt11)).await;
        }
    }
    answer
}

async fn on_channel_change(p: Plugin<State>, _: Value) -> Result<(), anyhow::Error> {
    p.state().feed.poke();
    Ok(())
}

/// lightningd paid an invoice of its own table: the twin of a self-payment, deleted now that
/// the payment is complete (invoiced had settled it first).
async fn on_invoice_payment(p: Plugin<State>, v: Value) -> Result<(), anyhow::Error> {
    if let Some(label) = v["invoice_payment"]["label"].as_str() {
        selfpay::delete_twin(&p.state().node, label).await;
    }
    Ok(())
}

async fn on_block_added(p: Plugin<State>, v: Value) -> Result<(), anyhow::Error> {
    if let Some(h) = v["block_added"]["height"]
        .as_u64()
        .and_then(|h| u32::try_from(h).ok())
    {
        p.state().payments.saw_height(h);
        // The height reaches invoiced with the channels: the hold invoices' safety cancel runs on it.
        p.state().feed.poke();
    }
    Ok(())
}

/// The node's and invoiced's identities agree (then: the node's id and block height), or why not.
async fn check_identity(node: &RpcPool, invoiced: &RpcPool) -> Result<(String, u32), String> {
    let ours = node
        .call("getinfo", &json!({}))
        .await
        .map_err(|e| format!("the node's getinfo failed: {e}"))?;
    let started = Instant::now();
    let theirs = loop {
        match invoiced.call("getinfo", &json!({})).await {
            Ok(v) => break v,
            Err(e) if started.elapsed() >= CONNECT_PATIENCE => {
                return Err(format!(
                    "invoiced did not answer at {} within {CONNECT_PATIENCE:?}: {e}",
                    invoiced.path().display()
                ))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    };
    if ours["id"] != theirs["id"] {
        return Err(format!(
            "invoiced signs as {} but this node is {}: its invoices would be unpayable; give invoiced this node's hsm_secret",
            theirs["id"], ours["id"]
        ));
    }
    if ours["network"] != theirs["network"] {
        return Err(format!(
            "invoiced runs on {} but this node on {}",
            theirs["network"], ours["network"]
        ));
    }
    let height = ours["blockheight"]
        .as_u64()
        .and_then(|h| u32::try_from(h).ok())
        .unwrap_or(0);
    Ok((ours["id"].as_str().unwrap_or_default().to_owned(), height))
}

type Input = Box<dyn tokio::io::AsyncRead + Send + Unpin>;
type Output = Box<dyn tokio::io::AsyncWrite + Send + Unpin>;

/// stdin and stdout for the plugin protocol. lightningd gives a plugin pipes: they are read and
/// written non-blocking on the runtime's own thread. `tokio::io::stdin()`/`stdout()` would hand
/// every read and write to a blocking-pool thread, and those wake-ups were most of the plugin's
/// CPU per invoice. Anything else (a terminal, a file) falls back to them.
fn protocol_io() -> (Input, Output) {
    use std::os::fd::AsFd as _;
    use tokio::net::unix::pipe;
    let input: Input = match std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .and_then(pipe::Receiver::from_owned_fd)
    {
        Ok(rx) => Box::new(rx),
        Err(_) => Box::new(tokio::io::stdin()),
    };
    let output: Output = match std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .and_then(pipe::Sender::from_owned_fd)
    {
        Ok(tx) => Box::new(tx),
        Err(_) => Box::new(tokio::io::stdout()),
    };
    (input, output)
}

fn node_rpc_path(lightning_dir: &str, rpc_file: &str) -> PathBuf {
    Path::new(lightning_dir).join(rpc_file)
}

/// Runs the plugin on stdin/stdout until lightningd stops it.
///
/// # Errors
/// If the plugin protocol fails.
pub async fn run() -> Result<(), anyhow::Error> {
    let Some(configured) = declare().configure().await? else {
        return Ok(());
    };
    let Some(rpc_file) = configured.option(&RPC_FILE)?.filter(|f| !f.is_empty()) else {
        configured
            .disable("invoiced-rpc-file is not set: give the path of invoiced's socket")
            .await?;
        return Ok(());
    };
    let config = configured.configuration();
    let node_path = Arc::new(node_rpc_path(&config.lightning_dir, &config.rpc_file));
    let node = Arc::new(RpcPool::new(node_path.as_path()));
    let invoiced = Arc::new(RpcPool::new(rpc_file));
    let (node_id, height) = identity_or_refuse(&node, &invoiced).await?;
    let (paid_tx, paid_rx) = tokio::sync::mpsc::unbounded_channel();
    let payments = Arc::new(payments(&configured, &invoiced, &node, paid_tx)?);
    payments.saw_height(height);
    let feed = Arc::new(ChannelFeed::new(
        node,
        Arc::clone(&invoiced),
        payments.height_source(),
    ));
    let plugin = configured
        .start(State {
            invoiced,
            payments,
            feed: Arc::clone(&feed),
            node: node_path,
            node_id: node_id.into(),
        })
        .await?;
    log::info!(
        "invoiced-cln: invoices on this node are served by invoiced at {}",
        plugin.state().invoiced.path().display()
    );
    tokio::spawn(feed.run());
    tokio::spawn(Arc::clone(&plugin.state().payments).watch_holds());
    tokio::spawn(notify_payments(plugin.clone(), paid_rx));
    plugin.join().await
}

/// What the plugin tells lightningd it has, on stdin/stdout: its options, the `rpc_command`
/// hook on the invoice commands, the `htlc_accepted` hook, its notification topics, the
/// subscriptions (blocks, payments, channel changes) and the hold invoice methods.
fn declare() -> Builder<State, Input, Output> {
    let filters = forward::FORWARDED
        .iter()
        .chain(selfpay::INTERCEPTED)
        .chain(&["createinvoice"])
        .map(|m| HookFilter::Str((*m).to_owned()))
        .collect();
    let (input, output) = protocol_io();
    let mut builder = Builder::new(input, output)
        .option(RPC_FILE)
        .option(MPP_TIMEOUT)
        .option(CLTV_SAFETY)
        .hook_from_builder(HookBuilder::new("rpc_command", on_rpc_command).filters(filters))
        .hook("htlc_accepted", on_htlc_accepted)
        .notification(cln_plugin::messages::NotificationTopic::new(CREATION_TOPIC))
        .notification(cln_plugin::messages::NotificationTopic::new(PAYMENT_TOPIC))
        .subscribe("block_added", on_block_added)
        .subscribe("invoice_payment", on_invoice_payment);
    for topic in channels::TOPICS {
        builder = builder.subscribe(topic, on_channel_change);
    }
    for &(method, description) in forward::HOLD_METHODS {
        builder = builder.rpcmethod(method, description, move |p, params| {
            on_hold_method(p, method, params)
        });
    }
    builder
}

/// The node's id and block height once [`check_identity`] holds; else logs why the plugin
/// refuses to start, gives the line time to reach lightningd, and fails.
async fn identity_or_refuse(
    node: &RpcPool,
    invoiced: &RpcPool,
) -> Result<(String, u32), anyhow::Error> {
    match check_identity(node, invoiced).await {
        Ok(identity) => Ok(identity),
        Err(why) => {
            // Not a voluntary `disable`: exiting before init is answered makes lightningd stop
            // when the plugin is important, instead of serving invoices from its own table.
            log::error!("invoiced-cln refuses to start: {why}");
            tokio::time::sleep(LOG_FLUSH).await;
            Err(anyhow::anyhow!("invoiced-cln refuses to start: {why}"))
        }
    }
}

/// The payments to invoiced's invoices, with the configured MPP timeout and CLTV safety margin;
/// each settled payment is sent on `paid`.
fn payments(
    configured: &ConfiguredPlugin<State, Input, Output>,
    invoiced: &Arc<RpcPool>,
    node: &Arc<RpcPool>,
    paid: tokio::sync::mpsc::UnboundedSender<htlc::Paid>,
) -> Result<Payments, anyhow::Error> {
    let mpp_timeout = Duration::from_secs(
        u64::try_from(configured.option(&MPP_TIMEOUT)?)
            .unwrap_or(60)
            .max(1),
    );
    let cltv_safety = u32::try_from(configured.option(&CLTV_SAFETY)?).unwrap_or(6);
    Ok(Payments::new(
        Arc::clone(invoiced),
        Arc::clone(node),
        mpp_timeout,
        cltv_safety,
        paid,
    ))
}
