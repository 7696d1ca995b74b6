//! Criterion benchmarks of the invoice path's hot pieces: amount parsing, BOLT11
#![allow(clippy::unwrap_used)]
//! build+sign+encode, event encoding, projection apply, and route-hint choice among 1,000
//! channels. Run: `cargo bench -p invoiced-actors --bench hot_paths`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use invoiced_actors::entropy::SeededEntropy;
use invoiced_actors::key_signer::KeySigner;
use invoiced_actors::policy::bolt11::{build_raw, InvoiceDraft};
use invoiced_actors::policy::hints::{assess, select, Pool, RoundRobin};
use invoiced_events::codec::{encode_record, record_hash};
use invoiced_events::{
    AmountOrAny, ChannelInfo, ChannelKey, CreatedIndex, Event, EventRecord, ExposePrivateChannels,
    InvoiceBody, InvoiceCreated, Label, Msat, Network, NodeId, PaymentHash, PaymentSecret,
    PeerPolicy, PreimageSeal, Projections, ShortChannelId,
};

fn channels(n: u32) -> Vec<ChannelInfo> {
    (0..n)
        .map(|i| {
            let mut peer = [2u8; 33];
            peer[29..33].copy_from_slice(&i.to_be_bytes());
            ChannelInfo {
                key: ChannelKey::Scid(ShortChannelId::new(500_000 + i, 1, 0).unwrap()),
                peer_id: NodeId(peer),
                peer_connected: i % 10 != 0,
                state: "CHANNELD_NORMAL".into(),
                short_channel_id: Some(ShortChannelId::new(500_000 + i, 1, 0).unwrap()),
                alias_local: None,
                alias_remote: None,
                private: i % 7 == 0,
                scid_alias_only: false,
                total_msat: Msat(1_000_000_000),
                to_us_msat: Msat(500_000_000),
                receivable_msat: Msat(490_000_000 - u64::from(i) * 1000),
                our_reserve_msat: Msat(10_000_000),
                their_reserve_msat: Msat(10_000_000),
                remote_policy: Some(PeerPolicy {
                    fee_base_msat: 1000,
                    fee_proportional_millionths: 100,
                    cltv_expiry_delta: 40,
                    htlc_minimum_msat: Msat(1),
                    htlc_maximum_msat: Msat(990_000_000),
                }),
                incoming_capacity_msat: Some(if i % 13 == 0 {
                    Msat(0)
                } else {
                    Msat(5_000_000_000)
                }),
            }
        })
        .collect()
}

fn created(i: u64) -> InvoiceCreated {
    InvoiceCreated {
        created_index: CreatedIndex(i),
        body: InvoiceBody {
        label: Label::new(format!("label-{i}")).unwrap(),
        bolt11: "lnbcrt10n1p4st2qcsp5nls05r3xdg4vx42kv3jxpxngsjwxmwvzmk6y00k3jkamem73sk2qpp5ahndkywprfvd0ssvxx7cez4qtw2tnqnxw6a58fe0xcrllpla7enqdq9w3jkzxqyjw5qcqp29qxpqysgqq3ffr8fzmf8h4a63vw9hdjujlkhp9vm7rl4222pspwnw7c8peuqhdmue759s0lw3z4z8j0qvsfzhxhgurnc4f0t6r998vvqaq79l6gcq2ua559".into(),
        payment_hash: {
            let mut h = [0u8; 32];
            h[..8].copy_from_slice(&i.to_be_bytes());
            PaymentHash(h)
        },
        payment_secret: PaymentSecret([2; 32]),
        preimage: PreimageSeal::Derived { nonce: [3; 32] },
        amount_msat: Some(Msat(1000)),
        description: "tea".into(),
        deschashonly: false,
        created_at: 1_795_532_824,
        expiry: 604_800,
        expires_at: 1_796_137_624,
        cltv: 10,
        fallbacks: vec![],
        route_hints: vec![],
        warnings: vec![],
        },
    }
}

fn benches(c: &mut Criterion) {
    c.bench_function("amount_parse", |b| {
        b.iter(|| black_box("0.00123456789btc").parse::<AmountOrAny>())
    });

    let mut signer = KeySigner::new(&[7; 32], Box::new(SeededEntropy(1))).unwrap();
    c.bench_function("bolt11_derive_build_sign_encode", |b| {
        b.iter(|| {
            let keys =
                signer.derive_payment_keys(invoiced_actors::key_signer::PreimageSource::Generate);
            let draft = InvoiceDraft {
                network: Network::Regtest,
                amount: invoiced_actors::policy::bolt11::InvoiceAmount::from_msat(Some(Msat(1000)))
                    .expect("amount"),
                timestamp: 1_795_532_824,
                description: invoiced_events::Description::new("tea".into(), false)
                    .expect("description"),
                expiry: invoiced_actors::policy::bolt11::Expiry::new(604_800).expect("expiry"),
                cltv: invoiced_actors::policy::bolt11::Cltv::new(10).expect("cltv"),
                fallbacks: vec![],
                route_hints: vec![],
            };
            signer
                .sign_invoice(build_raw(&draft, &keys.payment_hash, &keys.payment_secret).unwrap())
                .to_string()
        })
    });

    let hop = invoiced_events::RouteHintHop {
        node_id: NodeId([2; 33]),
        short_channel_id: ShortChannelId::from_u64(500_000 << 40),
        fee_base_msat: 1000,
        fee_proportional_millionths: 100,
        cltv_expiry_delta: 40,
    };
    let mut signer2 = KeySigner::new(&[7; 32], Box::new(SeededEntropy(2))).unwrap();
    c.bench_function("bolt11_derive_build_sign_encode_with_one_hint", |b| {
        b.iter(|| {
            let keys =
                signer2.derive_payment_keys(invoiced_actors::key_signer::PreimageSource::Generate);
            let draft = InvoiceDraft {
                network: Network::Regtest,
                amount: invoiced_actors::policy::bolt11::InvoiceAmount::from_msat(Some(Msat(1000)))
                    .expect("amount"),
                timestamp: 1_795_532_824,
                description: invoiced_events::Description::new("tea".into(), false)
                    .expect("description"),
                expiry: invoiced_actors::policy::bolt11::Expiry::new(604_800).expect("expiry"),
                cltv: invoiced_actors::policy::bolt11::Cltv::new(10).expect("cltv"),
                fallbacks: vec![],
                route_hints: vec![hop.clone()],
            };
            signer2
                .sign_invoice(build_raw(&draft, &keys.payment_hash, &keys.payment_secret).unwrap())
                .to_string()
        })
    });

    let record = EventRecord {
        seq: 1,
        time_ms: 0,
        prev_hash: [0; 32],
        event: Event::InvoiceCreated(created(1)),
    };
    c.bench_function("event_encode_and_hash", |b| {
        b.iter(|| record_hash(&encode_record(black_box(&record)).unwrap()))
    });

    c.bench_function("projection_apply_invoice_created", |b| {
        b.iter_batched(
            || {
                (
                    Projections::new(),
                    EventRecord {
                        seq: 1,
                        time_ms: 0,
                        prev_hash: [0; 32],
                        event: Event::InvoiceCreated(created(1)),
                    },
                )
            },
            |(mut p, rec)| p.apply(&rec, [1; 32]).unwrap(),
            criterion::BatchSize::SmallInput,
        )
    });

    let chs = channels(1000);
    let mut rr = RoundRobin::default();
    chs.iter().for_each(|ch| rr.register(&ch.key));
    // What the monitor does per invoice: select from its cached pool.
    let pool = Pool::new(&assess(chs.iter(), &ExposePrivateChannels::Unset));
    c.bench_function("hints_1000_channels_single_pick", |b| {
        b.iter(|| select(&pool, black_box(100_000_000), 0.37, &mut rr))
    });
    c.bench_function("hints_1000_channels_round_robin_mpp", |b| {
        b.iter(|| select(&pool, black_box(2_000_000_000), 0.37, &mut rr))
    });
    let empty = Pool::new(&assess(std::iter::empty(), &ExposePrivateChannels::Unset));
    c.bench_function("hints_no_channels", |b| {
        b.iter(|| select(&empty, black_box(100_000_000), 0.37, &mut rr))
    });
    // What a channel change costs once: rebuilding the pool.
    c.bench_function("hints_1000_channels_rebuild_pool", |b| {
        b.iter(|| Pool::new(&assess(chs.iter(), &ExposePrivateChannels::Unset)))
    });
}

criterion_group!(hot, benches);
criterion_main!(hot);
