//! Progress of long work over the log's records (`audit`, `replay`, the daemon's start-up
//! replay): one line on stderr, redrawn in place at most four times a second — records done of
//! the total, records per second, time left — and cleared at the end. Only on a terminal:
//! elsewhere it is silent and costs an addition and a comparison a record.
//!
//! The clock is read once every [`CHECK_EVERY`] records at most, never per record.

use std::io::{IsTerminal as _, Write};
use std::time::{Duration, Instant};

/// Records between two looks at the clock.
pub const CHECK_EVERY: u64 = 1024;

/// The least time between two redraws (and before the first).
pub const REDRAW: Duration = Duration::from_millis(250);

/// A progress line for `total` records of some work.
pub struct Progress {
    what: &'static str,
    total: u64,
    done: u64,
    /// The count at which to look at the clock next (`u64::MAX` when silent).
    next_look: u64,
    /// When the line was last drawn, from the start.
    last_draw: Duration,
    /// Whether a line is on the screen, to be cleared.
    drawn: bool,
    /// Where to draw and the time since the start; none when silent.
    screen: Option<Screen>,
}

/// A progress line's terminal and clock.
struct Screen {
    out: Box<dyn Write + Send>,
    elapsed: Box<dyn FnMut() -> Duration + Send>,
}

impl Progress {
    /// Progress of `what` over `total` records on stderr if it is a terminal, else silent.
    pub fn on_stderr(what: &'static str, total: u64) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self::silent(what, total);
        }
        let start = Instant::now();
        Self::drawn_on(
            what,
            total,
            Box::new(std::io::stderr()),
            Box::new(move || start.elapsed()),
        )
    }

    /// Progress that draws nothing.
    pub fn silent(what: &'static str, total: u64) -> Self {
        Self::new(what, total, None)
    }

    /// Progress drawn on `out`, with `elapsed` telling the time since the start.
    pub fn drawn_on(
        what: &'static str,
        total: u64,
        out: Box<dyn Write + Send>,
        elapsed: Box<dyn FnMut() -> Duration + Send>,
    ) -> Self {
        Self::new(what, total, Some(Screen { out, elapsed }))
    }

    /// Progress drawn on `screen`, if there is one.
    fn new(what: &'static str, total: u64, screen: Option<Screen>) -> Self {
        Progress {
            what,
            total,
            done: 0,
            next_look: if screen.is_some() {
                CHECK_EVERY
            } else {
                u64::MAX
            },
            last_draw: Duration::ZERO,
            drawn: false,
            screen,
        }
    }

    /// `n` more records done.
    #[inline]
    pub fn inc(&mut self, n: u64) {
        self.set(self.done.saturating_add(n));
    }

    /// `done` records done in all.
    #[inline]
    pub fn set(&mut self, done: u64) {
        self.done = done;
        if done >= self.next_look {
            self.look();
        }
    }

    /// Reads the clock, and redraws the line if it is time.
    fn look(&mut self) {
        let Some(screen) = &mut self.screen else {
            return;
        };
        self.next_look = self.done.saturating_add(CHECK_EVERY);
        let now = (screen.elapsed)();
        if now.saturating_sub(self.last_draw) < REDRAW {
            return;
        }
        self.last_draw = now;
        let text = line(self.what, self.done, self.total, now);
        // Progress is a courtesy: a terminal that cannot be written to does not stop the work.
        let _ = write!(screen.out, "\r{text}\x1b[K");
        let _ = screen.out.flush();
        self.drawn = true;
    }

    /// Clears the line, if one was drawn (dropping it does too).
    pub fn finish(self) {}
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let (true, Some(screen)) = (self.drawn, &mut self.screen) {
            let _ = write!(screen.out, "\r\x1b[K");
            let _ = screen.out.flush();
        }
    }
}

/// The progress line of `what` after `done` of `total` records in `elapsed`: the count, the
/// share, the rate and the time left at that rate (while there is a rate).
pub fn line(what: &str, done: u64, total: u64, elapsed: Duration) -> String {
    // A log that grew since its head was read: the total is at least what was done.
    let total = total.max(done);
    let percent = (u128::from(done) * 100)
        .checked_div(u128::from(total))
        .unwrap_or(100);
    let secs = elapsed.as_secs_f64();
    let mut text = format!("{what}: {done}/{total} records ({percent}%)");
    if done > 0 && secs > 0.0 {
        let rate = done as f64 / secs;
        let left = Duration::from_secs_f64((total - done) as f64 / rate);
        text.push_str(&format!(", {rate:.0}/s, {} left", duration(left)));
    }
    text
}

/// A duration for people: `7 s`, `3 min 05 s`, `2 h 04 min` (rounded up to the second).
pub fn duration(d: Duration) -> String {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    /// A terminal that keeps what is written to it.
    #[derive(Clone, Default)]
    struct Screen(Arc<Mutex<Vec<u8>>>);

    impl Write for Screen {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Screen {
        fn take(&self) -> String {
            String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap()
        }
    }

    /// A clock the test sets (milliseconds since the start), counting how often it is read.
    #[derive(Clone, Default)]
    struct Clock {
        now_ms: Arc<AtomicU64>,
        reads: Arc<AtomicU64>,
    }

    impl Clock {
        fn set(&self, ms: u64) {
            self.now_ms.store(ms, Ordering::SeqCst);
        }
        fn reads(&self) -> u64 {
            self.reads.load(Ordering::SeqCst)
        }
        fn elapsed(&self) -> Box<dyn FnMut() -> Duration + Send> {
            let c = self.clone();
            Box::new(move || {
                c.reads.fetch_add(1, Ordering::SeqCst);
                Duration::from_millis(c.now_ms.load(Ordering::SeqCst))
            })
        }
    }

    #[test]
    fn the_line_says_count_share_rate_and_time_left() {
        let s = Duration::from_secs;
        assert_eq!(
            line("audit", 250_000, 1_000_000, s(5)),
            "audit: 250000/1000000 records (25%), 50000/s, 15 s left"
        );
        assert_eq!(
            line("replay", 1_000, 1_000_000, s(2)),
            "replay: 1000/1000000 records (0%), 500/s, 33 min 18 s left"
        );
        assert_eq!(
            line("replay", 10, 1_000_000, s(1)),
            "replay: 10/1000000 records (0%), 10/s, 27 h 46 min left"
        );
        assert_eq!(
            line("audit", 0, 100, s(3)),
            "audit: 0/100 records (0%)",
            "no rate yet, no time left"
        );
        assert_eq!(
            line("audit", 120, 100, s(3)),
            "audit: 120/120 records (100%), 40/s, 0 s left",
            "a log that grew"
        );
        assert_eq!(line("audit", 0, 0, s(0)), "audit: 0/0 records (100%)");
        assert_eq!(duration(Duration::from_millis(59_001)), "1 min 00 s");
        assert_eq!(duration(Duration::from_millis(1)), "1 s");
    }

    #[test]
    fn it_looks_at_the_clock_every_few_records_and_redraws_a_few_times_a_second() {
        let screen = Screen::default();
        let clock = Clock::default();
        let mut p = Progress::drawn_on("audit", 10_000, Box::new(screen.clone()), clock.elapsed());
        for _ in 0..CHECK_EVERY - 1 {
            p.inc(1);
        }
        assert_eq!(clock.reads(), 0, "no clock read before CHECK_EVERY records");
        clock.set(100);
        p.inc(1);
        assert_eq!(clock.reads(), 1);
        assert_eq!(screen.take(), "", "not before REDRAW has passed");
        clock.set(1_000);
        for _ in 0..CHECK_EVERY - 1 {
            p.inc(1);
        }
        assert_eq!(clock.reads(), 1);
        p.inc(1);
        assert_eq!(clock.reads(), 2);
        assert_eq!(
            screen.take(),
            "\raudit: 2048/10000 records (20%), 2048/s, 4 s left\x1b[K"
        );
        clock.set(1_100);
        p.set(4_096);
        assert_eq!(screen.take(), "", "too soon after the last draw");
        clock.set(1_250);
        p.set(8_192);
        assert_eq!(
            screen.take(),
            "\raudit: 8192/10000 records (81%), 6554/s, 1 s left\x1b[K"
        );
        p.finish();
        assert_eq!(screen.take(), "\r\x1b[K", "the line is cleared at the end");
    }

    #[test]
    fn work_too_short_to_draw_leaves_nothing_to_clear_and_silence_reads_no_clock() {
        let screen = Screen::default();
        let clock = Clock::default();
        let mut p = Progress::drawn_on("replay", 5_000, Box::new(screen.clone()), clock.elapsed());
        p.set(5_000);
        drop(p);
        assert_eq!(screen.take(), "");
        let mut silent = Progress::silent("replay", u64::MAX);
        for _ in 0..10 * CHECK_EVERY {
            silent.inc(1);
        }
        assert_eq!(silent.next_look, u64::MAX);
    }
}
