#![no_main]
//! JSON-RPC request handling without the daemon: framing, the request envelope, parameter
//! binding and the `invoice` / `listinvoices`-style readers never panic on any bytes.
use invoiced::rpc::framing::{next_frame, Frame};
use invoiced::rpc::invoice::parse_request;
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
                let _ = parse_request(env.params, 10);
            }
        }
        rest = &rest[end..];
    }
});
