//! A webhook receiver for benchmarks: HTTP/1.1 with keep-alive, answers every POST 200 at once,
//! and keeps the count of what it received (and when the last one came) in a file.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(crate) fn sink(port: u16, count_file: &Path) {
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
    let (count, last) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (c, l, file) = (count.clone(), last.clone(), count_file.to_owned());
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(20));
        let text = format!(
            "{{\"received\":{},\"last_ms\":{}}}\n",
            c.load(Ordering::SeqCst),
            l.load(Ordering::SeqCst)
        );
        let tmp = file.with_extension("tmp");
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, &file);
        }
    });
    for conn in listener.incoming().flatten() {
        let (count, last) = (count.clone(), last.clone());
        std::thread::spawn(move || {
            let mut writer = conn.try_clone().expect("clone");
            let mut reader = BufReader::new(conn);
            loop {
                let (mut length, mut line, mut any) = (0usize, String::new(), false);
                while reader.read_line(&mut line).unwrap_or(0) > 0 {
                    any = true;
                    if line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    line.clear();
                }
                let mut body = vec![0u8; length];
                if !any || reader.read_exact(&mut body).is_err() {
                    return;
                }
                count.fetch_add(1, Ordering::SeqCst);
                last.store(now_ms(), Ordering::SeqCst);
                if writer
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                    .is_err()
                {
                    return;
                }
            }
        });
    }
}
