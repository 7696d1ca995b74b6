//! `invoiced events --data-dir DIR [--from SEQ] [--follow] [--json]`: the log, one record a line.

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use invoiced_events::codec::{decode_record, record_hash};

use super::{open, record_json};

/// Prints the records from `from` on; with `follow`, keeps printing new ones until killed.
pub fn run(data_dir: &Path, from: u64, follow: bool, json: bool) -> anyhow::Result<()> {
    let (reader, _) = open(data_dir)?;
    let mut next = from.max(1);
    let stdout = std::io::stdout();
    loop {
        let mut out = stdout.lock();
        for (seq, bytes) in reader.records_from(next)? {
            let rec = decode_record(&bytes).map_err(|e| anyhow::anyhow!("record {seq}: {e}"))?;
            let hash = record_hash(&bytes);
            let line = record_json(&rec, &hash);
            let written = if json {
                writeln!(out, "{line}")
            } else {
                writeln!(
                    out,
                    "{:>8} {:>13} {:<20} {}",
                    rec.seq,
                    rec.time_ms,
                    rec.event.kind(),
                    line["event"]
                )
            };
            if written.is_err() {
                return Ok(()); // stdout closed (e.g. piped into head)
            }
            next = seq + 1;
        }
        drop(out);
        if !follow {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
        reader.catch_up()?;
    }
}
