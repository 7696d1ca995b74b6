//! The process's logs on stderr, as text or as JSON lines (`--log-format`), and how the error
//! that ends the process is reported in them.

use std::sync::OnceLock;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// For people: time, level, target, message and fields on a line.
    #[default]
    Text,
    /// One JSON object a line: `timestamp`, `level`, `target`, `message` and the event's own
    /// fields beside them.
    Json,
}

/// The format chosen by [`init`], for [`fatal`].
static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// Sends the process's logs that pass `filter` to stderr in `format`. Once a process.
pub fn init(filter: EnvFilter, format: LogFormat) {
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    let _ = FORMAT.set(format);
}

/// Reports the error that ends the process: an `error` log line when logs are JSON (so that
/// every line of stderr is one), else a plain line.
pub fn fatal(program: &str, e: &anyhow::Error) {
    match FORMAT.get() {
        Some(LogFormat::Json) => tracing::error!("{e:#}"),
        _ => eprintln!("{program}: {e:#}"),
    }
}
