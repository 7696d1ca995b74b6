//! The node's side: `syncchannels`, `updatechannel` and `listincoming`.
//!
//! Entries are Core Lightning `listpeerchannels` entries (v24+ integers, or the older `"Nmsat"`
//! strings); unknown fields are ignored, so a real `lightning-cli listpeerchannels` dump can be
//! fed in as it is. Every entry is checked before anything changes; a bad one is refused with
//! -32602 naming the entry and the field.

use invoiced_actors::channel_monitor::{
    duplicate_key, IncomingView, ListIncoming, SyncChannels, SyncSummary,
};
use invoiced_actors::hold_keeper::BlockHeight;
use invoiced_events::{ChannelInfo, ChannelKey, Msat, NodeId, PeerPolicy, ShortChannelId};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::error::RpcError;
use super::params::{bind, block_height, required, ParamSpec};
use super::RpcContext;

/// `syncchannels` parameters (the shape of `listpeerchannels` output).
pub const SYNC_SPEC: ParamSpec = ParamSpec {
    names: &["channels", "blockheight"],
    aliases: &[],
    named_only: &[],
    required: 1,
};

/// The largest amount accepted in an entry: 21,000,000 BTC.
const MAX_MSAT: u64 = 2_100_000_000_000_000_000;

struct Entry<'a> {
    at: String,
    obj: &'a Map<String, Value>,
}

impl<'a> Entry<'a> {
    fn bad(&self, field: &str, reason: &str, v: &Value) -> RpcError {
        RpcError::bad_param(&format!("{}.{field}", self.at), reason, &v.to_string())
    }

    fn missing(&self, field: &str) -> RpcError {
        RpcError::invalid_params(format!("{}.{field}: missing", self.at))
    }

    fn get(&self, field: &str) -> Option<&'a Value> {
        self.obj.get(field).filter(|v| !v.is_null())
    }

    fn amount_of(&self, field: &str, v: &Value) -> Result<Msat, RpcError> {
        let n = match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s
                .strip_suffix("msat")
                .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|d| d.parse().ok()),
            _ => None,
        };
        n.filter(|n| *n <= MAX_MSAT)
            .map(Msat)
            .ok_or_else(|| self.bad(field, "should be a non-negative amount in msat", v))
    }

    fn amount(&self, field: &str) -> Result<Msat, RpcError> {
        let v = self.get(field).ok_or_else(|| self.missing(field))?;
        self.amount_of(field, v)
    }

    fn opt_amount(&self, field: &str) -> Result<Option<Msat>, RpcError> {
        self.get(field)
            .map(|v| self.amount_of(field, v))
            .transpose()
    }

    fn boolean(&self, field: &str, default: bool) -> Result<bool, RpcError> {
        match self.get(field) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(self.bad(field, "should be a boolean", v)),
        }
    }

    fn scid_of(&self, field: &str, v: &Value) -> Result<ShortChannelId, RpcError> {
        v.as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| self.bad(field, "should be a short channel id of form NxNxN", v))
    }

    fn opt_scid(&self, field: &str) -> Result<Option<ShortChannelId>, RpcError> {
        self.get(field).map(|v| self.scid_of(field, v)).transpose()
    }

    fn sub(&self, field: &str) -> Result<Option<Entry<'a>>, RpcError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Object(obj)) => Ok(Some(Entry {
                at: format!("{}.{field}", self.at),
                obj,
            })),
            Some(v) => Err(self.bad(field, "should be an object", v)),
        }
    }

    fn uint(&self, field: &str, max: u64) -> Result<u64, RpcError> {
        let v = self.get(field).ok_or_else(|| self.missing(field))?;
        v.as_u64()
            .filter(|n| *n <= max)
            .ok_or_else(|| self.bad(field, &format!("should be an integer from 0 to {max}"), v))
    }
}

/// Reads one `listpeerchannels` entry; `at` names it in errors (e.g. `channels[3]`).
///
/// # Errors
/// -32602 naming the entry and field.
pub fn parse_entry(v: &Value, at: &str) -> Result<ChannelInfo, RpcError> {
    let Value::Object(obj) = v else {
        return Err(RpcError::bad_param(
            at,
            "should be an object",
            &v.to_string(),
        ));
    };
    let e = Entry {
        at: at.to_owned(),
        obj,
    };
    let state = match e.get("state") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 64 => s.clone(),
        Some(v) => return Err(e.bad("state", "should be a channel state name", v)),
        None => return Err(e.missing("state")),
    };
    let short_channel_id = e.opt_scid("short_channel_id")?;
    let (alias_local, alias_remote) = match e.sub("alias")? {
        Some(a) => (a.opt_scid("local")?, a.opt_scid("remote")?),
        None => (None, None),
    };
    let balances = e.balances()?;
    Ok(ChannelInfo {
        key: e.key(short_channel_id, alias_local)?,
        peer_id: e.node_id("peer_id")?,
        peer_connected: e.boolean("peer_connected", false)?,
        state,
        short_channel_id,
        alias_local,
        alias_remote,
        private: e.boolean("private", false)?,
        scid_alias_only: e.scid_alias_only()?,
        total_msat: balances.total,
        to_us_msat: balances.to_us,
        receivable_msat: balances.receivable,
        our_reserve_msat: balances.our_reserve,
        their_reserve_msat: balances.their_reserve,
        remote_policy: e.remote_policy()?,
        incoming_capacity_msat: e.opt_amount("incoming_capacity_msat")?,
    })
}

/// The amounts of a channel: its size, our side, and what the peer can send us.
struct Balances {
    total: Msat,
    to_us: Msat,
    receivable: Msat,
    our_reserve: Msat,
    their_reserve: Msat,
}

impl Entry<'_> {
    fn node_id(&self, field: &str) -> Result<NodeId, RpcError> {
        let v = self.get(field).ok_or_else(|| self.missing(field))?;
        v.as_str()
            .and_then(|s| hex::decode(s).ok())
            .filter(|b| secp256k1::PublicKey::from_slice(b).is_ok())
            .and_then(|b| NodeId::try_from(b.as_slice()).ok())
            .ok_or_else(|| self.bad(field, "should be a node id", v))
    }

    /// Size and balances; what the peer can send us, when not given, is its side less the
    /// reserve it must keep.
    fn balances(&self) -> Result<Balances, RpcError> {
        let total = self.amount("total_msat")?;
        let to_us = self.amount("to_us_msat")?;
        if to_us > total {
            return Err(self.bad("to_us_msat", "should not exceed total_msat", &json!(to_us)));
        }
        let our_reserve = self.opt_amount("our_reserve_msat")?.unwrap_or(Msat::ZERO);
        let their_reserve = self.opt_amount("their_reserve_msat")?.unwrap_or(Msat::ZERO);
        let receivable = match self.opt_amount("receivable_msat")? {
            Some(r) => r,
            None => total.saturating_sub(to_us).saturating_sub(their_reserve),
        };
        Ok(Balances {
            total,
            to_us,
            receivable,
            our_reserve,
            their_reserve,
        })
    }

    /// Whether the channel type negotiated `option_scid_alias`.
    fn scid_alias_only(&self) -> Result<bool, RpcError> {
        let Some(t) = self.sub("channel_type")? else {
            return Ok(false);
        };
        match t.get("names") {
            None => Ok(false),
            Some(Value::Array(names)) => Ok(names.iter().any(|n| {
                n.as_str().is_some_and(|n| {
                    n.starts_with("scid_alias") || n.starts_with("option_scid_alias")
                })
            })),
            Some(v) => Err(t.bad("names", "should be an array of strings", v)),
        }
    }

    /// The peer's policy towards us (`updates.remote`).
    fn remote_policy(&self) -> Result<Option<PeerPolicy>, RpcError> {
        let remote = self
            .sub("updates")?
            .map(|u| u.sub("remote"))
            .transpose()?
            .flatten();
        let Some(r) = remote else {
            return Ok(None);
        };
        Ok(Some(PeerPolicy {
            fee_base_msat: r.uint("fee_base_msat", u64::from(u32::MAX))? as u32,
            fee_proportional_millionths: r
                .uint("fee_proportional_millionths", u64::from(u32::MAX))?
                as u32,
            cltv_expiry_delta: r.uint("cltv_expiry_delta", u64::from(u16::MAX))? as u16,
            htlc_minimum_msat: r.amount("htlc_minimum_msat")?,
            htlc_maximum_msat: r.amount("htlc_maximum_msat")?,
        }))
    }

    /// Its identity: the channel id, else the real scid, else our local alias.
    fn key(
        &self,
        short_channel_id: Option<ShortChannelId>,
        alias_local: Option<ShortChannelId>,
    ) -> Result<ChannelKey, RpcError> {
        if let Some(v) = self.get("channel_id") {
            let id: [u8; 32] = v
                .as_str()
                .and_then(|s| hex::decode(s).ok())
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| self.bad("channel_id", "should be 64 hex digits", v))?;
            return Ok(ChannelKey::ChannelId(id));
        }
        match (short_channel_id, alias_local) {
            (Some(s), _) => Ok(ChannelKey::Scid(s)),
            (None, Some(a)) => Ok(ChannelKey::LocalAlias(a)),
            (None, None) => Err(RpcError::invalid_params(format!(
                "{}: needs channel_id, short_channel_id or alias.local to be told apart",
                self.at
            ))),
        }
    }
}

fn summary_json(s: SyncSummary) -> Value {
    json!({ "opened": s.opened, "updated": s.updated, "closed": s.closed, "channels": s.total })
}

async fn sync(ctx: &RpcContext, channels: Vec<ChannelInfo>, full: bool) -> Result<Value, RpcError> {
    if let Some(key) = duplicate_key(&channels) {
        return Err(RpcError::invalid_params(format!(
            "channels: channel {key} appears twice"
        )));
    }
    let summary = ctx.monitor.send(SyncChannels { channels, full }).await??;
    Ok(summary_json(summary))
}

/// Runs `syncchannels {channels: [...]}`: the node's whole channel list.
pub async fn syncchannels(ctx: &RpcContext, params: Option<&RawValue>) -> Result<Value, RpcError> {
    let (channels, height) = parse_sync(params)?;
    // The node's block height comes with its channels: the hold invoices' safety cancel runs on it.
    if let Some(h) = height {
        ctx.holds.do_send(BlockHeight(h));
    }
    sync(ctx, channels, true).await
}

/// Reads `syncchannels` params: every entry checked, and the node's block height if given.
///
/// # Errors
/// -32602 naming the entry and its field.
pub fn parse_sync(params: Option<&RawValue>) -> Result<(Vec<ChannelInfo>, Option<u32>), RpcError> {
    let (mut list, mut height) = (None, None);
    for (name, v) in bind(params, &SYNC_SPEC)? {
        if name == "blockheight" {
            height = Some(block_height(v, "blockheight")?);
            continue;
        }
        let items: Vec<Value> = serde_json::from_str(v.get())
            .map_err(|_| RpcError::bad_param("channels", "should be an array", v.get()))?;
        list = Some(items);
    }
    let items = required(list, "channels")?;
    let channels = items
        .iter()
        .enumerate()
        .map(|(i, v)| parse_entry(v, &format!("channels[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((channels, height))
}

/// Runs `updatechannel {...}`: one entry, given as the params object (or as `{"channel": {...}}`).
pub async fn updatechannel(ctx: &RpcContext, params: Option<&RawValue>) -> Result<Value, RpcError> {
    sync(ctx, vec![parse_update(params)?], false).await
}

/// Reads `updatechannel` params: one entry, as the params object, `{"channel": {...}}` or `[{...}]`.
///
/// # Errors
/// -32602 naming the field.
pub fn parse_update(params: Option<&RawValue>) -> Result<ChannelInfo, RpcError> {
    let v: Value = params
        .map(|p| serde_json::from_str(p.get()))
        .transpose()
        .map_err(|_| RpcError::invalid_params("Expected a channel entry object"))?
        .unwrap_or(Value::Null);
    let entry = match &v {
        Value::Object(m) if m.len() == 1 && m.get("channel").is_some_and(Value::is_object) => {
            &m["channel"]
        }
        Value::Array(a) if a.len() == 1 => &a[0],
        Value::Object(_) => &v,
        _ => return Err(RpcError::invalid_params("Expected a channel entry object")),
    };
    parse_entry(entry, "channel")
}

fn view_json(view: IncomingView) -> Value {
    let channels: Vec<Value> = view
        .channels
        .into_iter()
        .map(|c| {
            let ch = &c.channel;
            let mut m = Map::new();
            m.insert("id".into(), ch.peer_id.to_hex().into());
            if let Some(s) = ch.listed_scid() {
                m.insert("short_channel_id".into(), s.to_string().into());
            }
            m.insert("channel".into(), ch.key.to_string().into());
            m.insert("state".into(), ch.state.clone().into());
            m.insert("peer_connected".into(), ch.peer_connected.into());
            m.insert("public".into(), (!ch.private).into());
            m.insert("receivable_msat".into(), ch.receivable_msat.0.into());
            m.insert("incoming_capacity_msat".into(), c.capacity_msat.into());
            if let Some(p) = ch.incoming_capacity_msat {
                m.insert("peer_incoming_capacity_msat".into(), p.0.into());
            }
            if let Some(p) = &ch.remote_policy {
                m.insert("fee_base_msat".into(), p.fee_base_msat.into());
                m.insert(
                    "fee_proportional_millionths".into(),
                    p.fee_proportional_millionths.into(),
                );
                m.insert("cltv_expiry_delta".into(), p.cltv_expiry_delta.into());
                m.insert("htlc_max_msat".into(), p.htlc_maximum_msat.0.into());
            }
            m.insert("candidate".into(), c.excluded.is_none().into());
            if let Some(ex) = &c.excluded {
                m.insert("reason".into(), ex.code().into());
                m.insert("explanation".into(), ex.explain().into());
            }
            Value::Object(m)
        })
        .collect();
    json!({ "has_public_channel": view.has_public, "channels": channels })
}

/// Runs `listincoming`.
pub async fn listincoming(ctx: &RpcContext, params: Option<&RawValue>) -> Result<Value, RpcError> {
    bind(params, &ParamSpec::NONE)?;
    let view = ctx.monitor.send(ListIncoming).await?;
    Ok(view_json(view))
}
