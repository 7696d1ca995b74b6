#![no_main]
//! `listpeerchannels` entries: any JSON is either a channel or a -32602 naming a field.
use invoiced::rpc::channels::parse_entry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    match parse_entry(&v, "channels[0]") {
        Ok(info) => assert!(info.to_us_msat <= info.total_msat),
        Err(e) => assert_eq!(e.code, -32602),
    }
});
