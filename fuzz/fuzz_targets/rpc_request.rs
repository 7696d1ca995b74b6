#![no_main]
//! JSON-RPC request handling without the daemon: framing (whole, and resumed read by read),
//! the request envelope, parameter binding and every method's parameter reader never panic on
//! any bytes, a resumed scan finds what one scan finds, no error message echoes more than a
//! bounded part of what was sent, and every fallback address is read (libFuzzer's `-timeout`
//! catches a parser whose cost grows faster than its input, as base58 did).
use invoiced::rpc::error::RpcError;
use invoiced::rpc::framing::{next_frame, Frame, Scanner};
use invoiced::rpc::{
    autoclean, channels, checkpart, createinvoice, decode, help, hold, invoice, lifecycle,
    listinvoices, selfpay,
};
use invoiced_actors::policy::bolt11::parse_fallback;
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;

#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    params: Option<&'a RawValue>,
}

/// The longest message any refusal may carry: its fixed words and one echo of at most 200
/// bytes (Core Lightning's `unknown parameter` text is the longest, about 190 bytes).
const MAX_MESSAGE: usize = 600;

fn bounded<T>(outcome: Result<T, RpcError>) {
    if let Err(e) = outcome {
        assert!(
            e.message.len() <= MAX_MESSAGE,
            "a {}-byte message: {}...",
            e.message.len(),
            &e.message[..100]
        );
    }
}

/// The frames a connection reading `data` `step` bytes at a time would find.
fn resumed(data: &[u8], step: usize) -> Vec<Frame> {
    let (mut frames, mut base, mut seen, mut scanner) = (Vec::new(), 0, 0, Scanner::default());
    while seen < data.len() {
        seen = (seen + step).min(data.len());
        loop {
            match scanner.scan(&data[base..seen]) {
                Frame::Complete { start, end } => {
                    frames.push(Frame::Complete {
                        start: base + start,
                        end: base + end,
                    });
                    base += end;
                    scanner = Scanner::default();
                }
                Frame::Incomplete => break,
                Frame::Empty => {
                    base = seen;
                    scanner = Scanner::default();
                    break;
                }
                other => {
                    frames.push(other);
                    return frames;
                }
            }
        }
    }
    frames
}

fuzz_target!(|data: &[u8]| {
    let mut whole = Vec::new();
    let mut rest = 0;
    loop {
        match next_frame(&data[rest..]) {
            Frame::Complete { start, end } => {
                whole.push(Frame::Complete {
                    start: rest + start,
                    end: rest + end,
                });
                check(&data[rest + start..rest + end]);
                rest += end;
            }
            Frame::Incomplete | Frame::Empty => break,
            other => {
                whole.push(other);
                break;
            }
        }
    }
    for step in [1, 7, 4096] {
        assert_eq!(resumed(data, step), whole, "read {step} bytes at a time");
    }
});

fn check(frame: &[u8]) {
    let Ok(text) = std::str::from_utf8(frame) else {
        return;
    };
    let Ok(env) = serde_json::from_str::<Envelope<'_>>(text) else {
        return;
    };
    let p = env.params;
    let cltv = invoiced_actors::policy::bolt11::Cltv::new(10).expect("10 fits");
    if let Ok(req) = invoice::parse_request(p, cltv) {
        for f in &req.fallbacks {
            let _ = parse_fallback(f, invoiced_events::Network::Regtest);
        }
    } else {
        bounded(invoice::parse_request(p, cltv));
    }
    bounded(hold::parse_request(p));
    bounded(hold::parse_accept(p));
    bounded(listinvoices::parse_query(p));
    bounded(lifecycle::parse_settle(p));
    bounded(lifecycle::parse_delete(p));
    bounded(lifecycle::parse_waitinvoice(p));
    bounded(lifecycle::parse_waitany(p));
    bounded(lifecycle::parse_wait(p));
    bounded(channels::parse_sync(p));
    bounded(channels::parse_update(p));
    bounded(autoclean::parse_once(p));
    bounded(autoclean::parse_status(p));
    bounded(decode::decode(p));
    bounded(help::help(p));
    bounded(selfpay::parse_selfpay(p));
    bounded(checkpart::parse_checkpart(p));
    bounded(createinvoice::parse_createinvoice(p, cltv));
}
