//! Keeps invoiced's view of the node's channels current, so route hints reflect them.
//!
//! The node's whole `listpeerchannels` answer is fed to invoiced's `syncchannels` at start, after
//! channel and peer notifications and new blocks (several within [`DEBOUNCE`] make one sync), and
//! every [`PERIOD`] in case a change came without a notification. The node's block height goes
//! with it: invoiced cancels a forgotten hold before its HTLCs' expiry by it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::Notify;

use crate::rpc_client::RpcPool;

/// Notifications within this window make one sync.
pub const DEBOUNCE: Duration = Duration::from_millis(500);
/// A sync at least this often.
pub const PERIOD: Duration = Duration::from_secs(60);
/// The notifications that say the channels may have changed.
pub const TOPICS: &[&str] = &[
    "channel_opened",
    "channel_state_changed",
    "connect",
    "disconnect",
];

/// Feeds the node's channels to invoiced.
pub struct ChannelFeed {
    node: Arc<RpcPool>,
    invoiced: Arc<RpcPool>,
    /// The node's block height, sent with the channels (0: not known yet, not sent).
    height: Arc<AtomicU32>,
    changed: Notify,
}

impl ChannelFeed {
    /// A feed from the node's RPC to invoiced's, with the block height `height` holds.
    pub fn new(node: Arc<RpcPool>, invoiced: Arc<RpcPool>, height: Arc<AtomicU32>) -> Self {
        ChannelFeed {
            node,
            invoiced,
            height,
            changed: Notify::new(),
        }
    }

    /// A notification said the channels may have changed.
    pub fn poke(&self) {
        self.changed.notify_one();
    }

    /// One sync: `listpeerchannels` on the node, `syncchannels` on invoiced.
    ///
    /// # Errors
    /// A message saying which side failed.
    pub async fn sync_once(&self) -> Result<usize, String> {
        let listed = self
            .node
            .call("listpeerchannels", &json!({}))
            .await
            .map_err(|e| format!("listpeerchannels: {e}"))?;
        let channels = listed.get("channels").cloned().unwrap_or_else(|| json!([]));
        let n = channels.as_array().map_or(0, Vec::len);
        let mut params = json!({ "channels": channels });
        match self.height.load(Ordering::Relaxed) {
            0 => {}
            h => params["blockheight"] = json!(h),
        }
        self.invoiced
            .call("syncchannels", &params)
            .await
            .map_err(|e| format!("syncchannels: {e}"))?;
        Ok(n)
    }

    /// Syncs now, then after every (debounced) change and every [`PERIOD`], for ever.
    pub async fn run(self: Arc<Self>) {
        loop {
            match self.sync_once().await {
                Ok(n) => log::debug!("fed {n} channel(s) to invoiced"),
                Err(e) => log::warn!("channel sync failed: {e}"),
            }
            let _ = tokio::time::timeout(PERIOD, self.changed.notified()).await;
            tokio::time::sleep(DEBOUNCE).await;
        }
    }
}
