#![no_main]
//! The amount grammar never panics, and what it accepts prints back to the same amount.
use invoiced_events::AmountOrAny;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(a) = s.parse::<AmountOrAny>() {
        assert_eq!(a.to_string().parse::<AmountOrAny>(), Ok(a));
        if let Some(m) = a.msat() {
            assert!(m.0 > 0 && m <= invoiced_events::Msat::MAX);
        }
    }
});
