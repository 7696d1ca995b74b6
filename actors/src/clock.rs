//! Where the actors read the time (the system clock in the daemon, a fixed one in tests).

use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// Now, UNIX milliseconds.
    fn now_ms(&self) -> u64;

    /// Now, UNIX seconds.
    fn now_secs(&self) -> u64 {
        self.now_ms() / 1000
    }
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// The system clock moved by a fixed offset: the daemon's `--dev-clock-offset`, with which tests
/// reach a time (an invoice's expiry) by restarting instead of waiting for it.
#[derive(Clone, Copy, Debug, Default)]
pub struct OffsetClock {
    /// Added to the system's time, ms (negative: earlier).
    pub offset_ms: i64,
}

impl Clock for OffsetClock {
    fn now_ms(&self) -> u64 {
        SystemClock.now_ms().saturating_add_signed(self.offset_ms)
    }
}

/// A clock that always says the same time.
#[derive(Clone, Copy, Debug)]
pub struct FixedClock(pub u64);

impl Clock for FixedClock {
    fn now_ms(&self) -> u64 {
        self.0
    }
}
