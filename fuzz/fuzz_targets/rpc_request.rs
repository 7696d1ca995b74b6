#![no_main]
//! JSON-RPC request handling without the daemon: framing, the request envelope, parameter
//! binding and every method's parameter reader never panic on any bytes.
use invoiced::rpc::framing::{next_frame, Frame};
use invoiced::rpc::{autoclean, channels, decode, help, invoice, lifecycle, listinvoices};
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;

#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    params: Option<&'a RawValue>,
}

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Frame::Complete { start, end } = next_frame(rest) {
        assert!(start < end && end <= rest.len());
        if let Ok(text) = std::str::from_utf8(&rest[start..end]) {
            if let Ok(env) = serde_json::from_str::<Envelope<'_>>(text) {
                let p = env.params;
                let _ = invoice::parse_request(p, invoiced_actors::policy::bolt11::Cltv::new(10).expect("10 fits"));
                let _ = listinvoices::parse_query(p);
                let _ = lifecycle::parse_settle(p);
                let _ = lifecycle::parse_delete(p);
                let _ = lifecycle::parse_waitinvoice(p);
                let _ = lifecycle::parse_waitany(p);
                let _ = lifecycle::parse_wait(p);
                let _ = channels::parse_sync(p);
                let _ = channels::parse_update(p);
                let _ = autoclean::parse_once(p);
                let _ = autoclean::parse_status(p);
                let _ = decode::decode(p);
                let _ = help::help(p);
            }
        }
        rest = &rest[end..];
    }
});
