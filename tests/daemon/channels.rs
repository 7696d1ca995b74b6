//! Channels and route hints over the socket: Core Lightning's selection and warnings.

use serde_json::{json, Value};

use crate::harness::{check_bolt11, Daemon, FIXTURE_NODE_ID};

const PEER_B: &str = "0266e4598d1d3c415f572a8488830b60f7e744ed9235eb0b1ba93283b315c03518";
const PEER_C: &str = "03864ef025fde8fb587d989186ce6a4a186895ee44a926bfc370e2c366597a3f8f";

/// A listpeerchannels entry: channel `n` with peer `peer`, 200,000 sat, `receivable` msat
/// inbound, public, connected, peer fees 1/10/6.
fn entry(n: u8, peer: &str, receivable: u64) -> Value {
    json!({
        "peer_id": peer,
        "peer_connected": true,
        "state": "CHANNELD_NORMAL",
        "short_channel_id": format!("{}x1x0", 100 + u32::from(n)),
        "channel_id": format!("{:02x}", n).repeat(32),
        "private": false,
        "alias": {"local": format!("9{n}x9x9")},
        "total_msat": 200_000_000u64,
        "to_us_msat": 200_000_000u64 - receivable - 2_000_000,
        "receivable_msat": receivable,
        "our_reserve_msat": 2_000_000,
        "their_reserve_msat": 2_000_000,
        "channel_type": {"bits": [12], "names": ["static_remotekey/even"]},
        "updates": {"remote": {"fee_base_msat": 1, "fee_proportional_millionths": 10, "cltv_expiry_delta": 6,
                               "htlc_minimum_msat": 0, "htlc_maximum_msat": 198_000_000u64}},
        "incoming_capacity_msat": 1_000_000_000u64,
    })
}

fn with(mut v: Value, patch: Value) -> Value {
    for (k, p) in patch.as_object().unwrap() {
        v[k] = p.clone();
    }
    v
}

fn sync(d: &Daemon, channels: Vec<Value>) -> Value {
    d.call("syncchannels", json!({"channels": channels}))
        .unwrap()
}

fn invoice(d: &Daemon, label: &str, amount: Value, extra: Value) -> Value {
    let mut p = json!({"amount_msat": amount, "label": label, "description": "d"});
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    d.call("invoice", p).unwrap()
}

fn warnings(r: &Value) -> Vec<String> {
    r.as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("warning_"))
        .cloned()
        .collect()
}

fn routes(d: &Daemon, r: &Value) -> Vec<Value> {
    check_bolt11(r["bolt11"].as_str().unwrap(), FIXTURE_NODE_ID);
    let dec = d.call("decode", json!([r["bolt11"]])).unwrap();
    dec.get("routes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

#[test]
fn one_public_channel_gives_one_hint_with_the_peers_fees() {
    let d = Daemon::start();
    assert_eq!(
        sync(&d, vec![entry(1, PEER_B, 150_000_000)]),
        json!({"opened": 1, "updated": 0, "closed": 0, "channels": 1})
    );
    let r = invoice(&d, "one", json!(123456), json!({}));
    assert_eq!(warnings(&r), Vec::<String>::new());
    let routes = routes(&d, &r);
    assert_eq!(routes.len(), 1);
    assert_eq!(
        routes[0],
        json!([{"pubkey": PEER_B, "short_channel_id": "101x1x0", "fee_base_msat": 1, "fee_proportional_millionths": 10, "cltv_expiry_delta": 6}])
    );
    // Above capacity: warning_capacity; the round-robin fallback still offers the channel.
    let r = invoice(&d, "big", json!(150_000_001u64), json!({}));
    assert_eq!(warnings(&r), ["warning_capacity"]);
    assert_eq!(self::routes(&d, &r).len(), 1);
    // The peer's htlc maximum caps capacity exactly.
    sync(
        &d,
        vec![with(
            entry(1, PEER_B, 150_000_000),
            json!({"updates": {"remote": {"fee_base_msat": 1337, "fee_proportional_millionths": 137, "cltv_expiry_delta": 6, "htlc_minimum_msat": 0, "htlc_maximum_msat": 4_000_000}}}),
        )],
    );
    let r = invoice(&d, "at-max", json!(3_999_999), json!({}));
    assert_eq!(self::routes(&d, &r)[0][0]["fee_base_msat"], json!(1337));
    assert_eq!(
        warnings(&invoice(&d, "over-max", json!(4_000_001), json!({}))),
        ["warning_capacity"]
    );
    // An any-amount invoice counts as 1 msat.
    let r = invoice(&d, "any", json!("any"), json!({}));
    assert_eq!(self::routes(&d, &r).len(), 1);
}

#[test]
fn offline_dead_end_onchain_and_mpp() {
    let d = Daemon::start();
    sync(
        &d,
        vec![with(
            entry(1, PEER_B, 150_000_000),
            json!({"peer_connected": false}),
        )],
    );
    let r = invoice(&d, "off", json!(123456), json!({}));
    assert_eq!(warnings(&r), ["warning_offline"]);
    assert!(routes(&d, &r).is_empty());

    sync(
        &d,
        vec![with(
            entry(1, PEER_B, 150_000_000),
            json!({"incoming_capacity_msat": 0}),
        )],
    );
    let r = invoice(&d, "dead", json!(123456), json!({}));
    assert_eq!(warnings(&r), ["warning_deadends"]);
    assert!(routes(&d, &r).is_empty());

    let s = sync(
        &d,
        vec![with(
            entry(1, PEER_B, 150_000_000),
            json!({"state": "ONCHAIN"}),
        )],
    );
    assert_eq!(s["updated"], json!(1));
    let r = invoice(&d, "onchain", json!(123456), json!({}));
    assert!(routes(&d, &r).is_empty());
    assert_eq!(warnings(&r), ["warning_capacity"]);

    sync(
        &d,
        vec![entry(1, PEER_B, 60_000_000), entry(2, PEER_C, 60_000_000)],
    );
    let r = invoice(&d, "mpp", json!("100000sat"), json!({}));
    assert_eq!(warnings(&r), ["warning_mpp"]);
    assert_eq!(routes(&d, &r).len(), 2);
}

#[test]
fn private_channels() {
    let d = Daemon::start();
    let private = with(
        entry(2, PEER_C, 150_000_000),
        json!({"private": true, "alias": {"local": "92x9x9", "remote": "5x6x7"}}),
    );
    sync(&d, vec![private.clone()]);
    // A node with only private channels hints them, by the peer's alias.
    let r = invoice(&d, "priv", json!(123456), json!({}));
    assert_eq!(warnings(&r), Vec::<String>::new());
    let rs = routes(&d, &r);
    assert_eq!(rs[0][0]["short_channel_id"], json!("5x6x7"));
    let r = invoice(
        &d,
        "never",
        json!(123456),
        json!({"exposeprivatechannels": false}),
    );
    assert_eq!(warnings(&r), ["warning_private_unused"]);
    assert!(routes(&d, &r).is_empty());
    for (i, e) in [json!("102x1x0"), json!(["102x1x0"]), json!("5x6x7")]
        .into_iter()
        .enumerate()
    {
        let r = invoice(
            &d,
            &format!("named{i}"),
            json!(123456),
            json!({"exposeprivatechannels": e}),
        );
        assert_eq!(routes(&d, &r).len(), 1);
    }

    // With an announced (dead-end) channel too, the private one is hidden by default.
    sync(
        &d,
        vec![
            with(
                entry(1, PEER_B, 150_000_000),
                json!({"incoming_capacity_msat": 0}),
            ),
            private,
        ],
    );
    let r = invoice(&d, "hidden", json!(10_000_000), json!({}));
    assert_eq!(warnings(&r), ["warning_deadends"]);
    assert!(routes(&d, &r).is_empty());
    for (i, e) in [json!(true), json!("102x1x0"), json!(["102x1x0"])]
        .into_iter()
        .enumerate()
    {
        let r = invoice(
            &d,
            &format!("shown{i}"),
            json!(10_000_000),
            json!({"exposeprivatechannels": e}),
        );
        let rs = routes(&d, &r);
        assert_eq!(rs.len(), 1, "{e}");
        assert_eq!(rs[0][0]["pubkey"], json!(PEER_C));
    }
    // Named channels that are not usable: 902, and no invoice.
    let before = d.head();
    let e = d.call("invoice", json!({"amount_msat": 1000, "label": "x902", "description": "d", "exposeprivatechannels": "999x1x0"})).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (902, "None of those hints were suitable local channels")
    );
    assert_eq!(d.head(), before);
    assert_eq!(
        d.call("listinvoices", json!({"label": "x902"})).unwrap()["invoices"],
        json!([])
    );
}

#[test]
fn listincoming_explains_and_restart_keeps_channels() {
    let mut d = Daemon::start();
    sync(
        &d,
        vec![
            entry(1, PEER_B, 150_000_000),
            with(
                entry(2, PEER_C, 150_000_000),
                json!({"peer_connected": false}),
            ),
            with(entry(3, PEER_C, 0), json!({})),
            with(entry(4, PEER_B, 150_000_000), json!({"state": "ONCHAIN"})),
            with(entry(5, PEER_B, 150_000_000), json!({"private": true})),
            with(
                entry(6, PEER_C, 150_000_000),
                json!({"incoming_capacity_msat": 0}),
            ),
        ],
    );
    let view = d.call("listincoming", json!([])).unwrap();
    assert_eq!(view["has_public_channel"], json!(true));
    let reasons: Vec<Value> = view["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.get("reason").cloned().unwrap_or(Value::Null))
        .collect();
    assert_eq!(
        reasons,
        [
            Value::Null,
            json!("offline"),
            json!("zero_capacity"),
            json!("state"),
            json!("private_hidden"),
            json!("dead_end")
        ]
    );
    assert_eq!(view["channels"][0]["candidate"], json!(true));
    assert_eq!(
        view["channels"][0]["incoming_capacity_msat"],
        json!(150_000_000)
    );
    let r = invoice(&d, "before", json!(1000), json!({}));
    let listed = d.call("listinvoices", json!({})).unwrap();
    d.restart();
    assert_eq!(d.call("listincoming", json!([])).unwrap(), view);
    assert_eq!(d.call("listinvoices", json!({})).unwrap(), listed);
    assert_eq!(routes(&d, &r).len(), 1);
    // A channel missing from a full sync is closed; an unchanged one is not an event.
    let head = d.head();
    let s = sync(&d, vec![entry(1, PEER_B, 150_000_000)]);
    assert_eq!(
        s,
        json!({"opened": 0, "updated": 0, "closed": 5, "channels": 1})
    );
    assert_eq!(d.head(), head + 5);
    let s = sync(&d, vec![entry(1, PEER_B, 150_000_000)]);
    assert_eq!(
        s,
        json!({"opened": 0, "updated": 0, "closed": 0, "channels": 1})
    );
    assert_eq!(d.head(), head + 5);
    // updatechannel upserts one entry.
    let s = d.call("updatechannel", entry(7, PEER_C, 1_000)).unwrap();
    assert_eq!(
        s,
        json!({"opened": 1, "updated": 0, "closed": 0, "channels": 2})
    );
    let s = d
        .call(
            "updatechannel",
            json!({"channel": with(entry(7, PEER_C, 1_000), json!({"peer_connected": false}))}),
        )
        .unwrap();
    assert_eq!(s["updated"], json!(1));
}

#[test]
fn bad_entries_are_refused_and_change_nothing() {
    let d = Daemon::start();
    sync(&d, vec![entry(1, PEER_B, 150_000_000)]);
    let head = d.head();
    let cases = [
        (
            json!({"peer_id": "02zz"}),
            "channels[1].peer_id: should be a node id: invalid token '\"02zz\"'",
        ),
        (
            json!({"peer_id": format!("04{}", "11".repeat(32))}),
            "channels[1].peer_id: should be a node id",
        ),
        (
            json!({"short_channel_id": "1x2"}),
            "channels[1].short_channel_id: should be a short channel id of form NxNxN",
        ),
        (
            json!({"total_msat": -5}),
            "channels[1].total_msat: should be a non-negative amount in msat: invalid token '-5'",
        ),
        (
            json!({"receivable_msat": "12sat"}),
            "channels[1].receivable_msat: should be a non-negative amount in msat",
        ),
        (
            json!({"total_msat": null}),
            "channels[1].total_msat: missing",
        ),
        (
            json!({"state": 5}),
            "channels[1].state: should be a channel state name",
        ),
        (
            json!({"alias": {"remote": "x"}}),
            "channels[1].alias.remote: should be a short channel id",
        ),
        (
            json!({"updates": {"remote": {"fee_base_msat": -1}}}),
            "channels[1].updates.remote.fee_base_msat: should be an integer from 0 to 4294967295",
        ),
        (
            json!({"to_us_msat": 300_000_000u64}),
            "channels[1].to_us_msat: should not exceed total_msat",
        ),
    ];
    for (patch, msg) in cases {
        let bad = with(entry(2, PEER_C, 1000), patch);
        let e = d
            .call(
                "syncchannels",
                json!({"channels": [entry(1, PEER_B, 1), bad]}),
            )
            .unwrap_err();
        assert_eq!(e.code, -32602);
        assert!(
            e.message.starts_with(msg),
            "{} does not start with {msg}",
            e.message
        );
    }
    let e = d
        .call(
            "syncchannels",
            json!({"channels": [entry(1, PEER_B, 1), entry(1, PEER_B, 2)]}),
        )
        .unwrap_err();
    assert_eq!(e.code, -32602);
    assert!(e.message.contains("appears twice"));
    let e = d
        .call("syncchannels", json!({"channels": "x"}))
        .unwrap_err();
    assert!(e.message.starts_with("channels: should be an array"));
    assert_eq!(
        d.call("syncchannels", json!({})).unwrap_err().message,
        "missing required parameter: channels"
    );
    assert_eq!(d.head(), head);
    let view = d.call("listincoming", json!([])).unwrap();
    assert_eq!(view["channels"].as_array().unwrap().len(), 1);
    assert_eq!(view["channels"][0]["receivable_msat"], json!(150_000_000));
}

#[test]
fn a_real_listpeerchannels_dump_feeds_in_unchanged() {
    let d = Daemon::start();
    let dump: Value = serde_json::from_str(include_str!("../data/listpeerchannels.json")).unwrap();
    let s = d.call("syncchannels", dump.clone()).unwrap();
    assert_eq!(
        s,
        json!({"opened": 4, "updated": 0, "closed": 0, "channels": 4})
    );
    let view = d.call("listincoming", json!({})).unwrap();
    let by_scid = |s: &str| {
        view["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["short_channel_id"] == json!(s))
            .unwrap()
            .clone()
    };
    assert_eq!(by_scid("812345x1102x1")["candidate"], json!(true));
    assert_eq!(
        by_scid("812345x1102x1")["incoming_capacity_msat"],
        json!(390_000_000)
    );
    assert_eq!(by_scid("812400x77x0")["reason"], json!("private_hidden"));
    assert_eq!(by_scid("790001x12x0")["reason"], json!("offline"));
    assert_eq!(by_scid("700000x1x1")["reason"], json!("state"));
    // Fed again unchanged: no events.
    let head = d.head();
    assert_eq!(d.call("syncchannels", dump).unwrap()["updated"], json!(0));
    assert_eq!(d.head(), head);
    let r = invoice(&d, "real", json!("100000sat"), json!({}));
    let rs = routes(&d, &r);
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0][0]["short_channel_id"], json!("812345x1102x1"));
    assert_eq!(
        (
            rs[0][0]["fee_base_msat"].clone(),
            rs[0][0]["fee_proportional_millionths"].clone(),
            rs[0][0]["cltv_expiry_delta"].clone()
        ),
        (json!(1000), json!(100), json!(40))
    );
    // The zero-conf alias channel is hinted by its remote alias when exposed.
    let r = invoice(
        &d,
        "zeroconf",
        json!("100000sat"),
        json!({"exposeprivatechannels": "812400x77x0"}),
    );
    assert_eq!(
        routes(&d, &r)[0][0]["short_channel_id"],
        json!("8287762x1289372x12034")
    );
}
