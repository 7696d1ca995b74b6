//! The node's channels as invoiced knows them, and their projection.
//!
//! Owns the channel record (the fields of Core Lightning's `listpeerchannels` entry that route
//! hints need) and [`ChannelBook`], the fold of the channel events. Which channel is a hint
//! candidate, and why not, is the ChannelMonitor's business; this module only keeps the facts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::NodeId;
use crate::{Msat, ShortChannelId};

/// Channel states in which a channel can take HTLCs (Core Lightning's hint candidates).
pub const USABLE_STATES: [&str; 2] = ["CHANNELD_NORMAL", "CHANNELD_AWAITING_SPLICE"];

/// How a channel is identified across updates: its `channel_id` when the node gives one, else
/// its real scid, else our local alias.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ChannelKey {
    /// The 32-byte channel id.
    ChannelId(#[serde(with = "crate::ids::hex32")] [u8; 32]),
    /// The real short channel id.
    Scid(ShortChannelId),
    /// Our local alias.
    LocalAlias(ShortChannelId),
}

impl core::fmt::Display for ChannelKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ChannelKey::ChannelId(id) => {
                for b in id {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
            ChannelKey::Scid(s) | ChannelKey::LocalAlias(s) => s.fmt(f),
        }
    }
}

/// The peer's channel_update towards us.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerPolicy {
    /// Base fee, msat.
    pub fee_base_msat: u32,
    /// Proportional fee, millionths.
    pub fee_proportional_millionths: u32,
    /// CLTV delta.
    pub cltv_expiry_delta: u16,
    /// Smallest HTLC the peer forwards to us.
    pub htlc_minimum_msat: Msat,
    /// Largest HTLC the peer forwards to us.
    pub htlc_maximum_msat: Msat,
}

/// One channel, as the node last reported it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelInfo {
    /// Identity across updates.
    pub key: ChannelKey,
    /// The peer's node id.
    pub peer_id: NodeId,
    /// Whether the peer is connected.
    pub peer_connected: bool,
    /// Core Lightning's channel state name, e.g. `CHANNELD_NORMAL`.
    pub state: String,
    /// The real scid, once confirmed.
    pub short_channel_id: Option<ShortChannelId>,
    /// The alias we gave the peer.
    pub alias_local: Option<ShortChannelId>,
    /// The alias the peer gave us (what goes into hints for alias channels).
    pub alias_remote: Option<ShortChannelId>,
    /// Unannounced.
    pub private: bool,
    /// Negotiated `option_scid_alias`: hints must use the remote alias.
    pub scid_alias_only: bool,
    /// Channel size.
    pub total_msat: Msat,
    /// Our balance.
    pub to_us_msat: Msat,
    /// What the peer can send us now.
    pub receivable_msat: Msat,
    /// The reserve we must keep.
    pub our_reserve_msat: Msat,
    /// The reserve the peer must keep.
    pub their_reserve_msat: Msat,
    /// The peer's policy towards us; `None` when the peer sent no update (never a hint).
    pub remote_policy: Option<PeerPolicy>,
    /// What the rest of the network can route to the peer; `Some(0)` = dead end, `None` = unknown.
    pub incoming_capacity_msat: Option<Msat>,
}

impl ChannelInfo {
    /// Whether the state can take HTLCs.
    pub fn usable_state(&self) -> bool {
        USABLE_STATES.contains(&self.state.as_str())
    }

    /// The id `listincoming` shows: the real scid, or our local alias before there is one.
    pub fn listed_scid(&self) -> Option<ShortChannelId> {
        self.short_channel_id.or(self.alias_local)
    }
}

/// All known channels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChannelBook {
    channels: BTreeMap<ChannelKey, ChannelInfo>,
}

impl ChannelBook {
    /// Records an opened or updated channel.
    pub fn upsert(&mut self, info: &ChannelInfo) {
        self.channels.insert(info.key.clone(), info.clone());
    }

    /// Forgets a closed channel; `false` if it was not known.
    pub fn remove(&mut self, key: &ChannelKey) -> bool {
        self.channels.remove(key).is_some()
    }

    /// The channel with this key.
    pub fn get(&self, key: &ChannelKey) -> Option<&ChannelInfo> {
        self.channels.get(key)
    }

    /// Every channel, in key order.
    pub fn iter(&self) -> impl Iterator<Item = &ChannelInfo> {
        self.channels.values()
    }

    /// How many channels are known.
    pub fn len(&self) -> usize {
        self.channels.len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }
}
