//! Daemon configuration and the data dir: its layout, modes and first-start set-up.

use std::fs;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use invoiced_events::Network;

/// Resolved settings of `invoiced serve`.
#[derive(Clone, Debug)]
pub struct Config {
    /// The data dir.
    pub data_dir: PathBuf,
    /// The network the data dir belongs to.
    pub network: Network,
    /// The JSON-RPC socket.
    pub rpc_file: PathBuf,
    /// Default `cltv` for invoices.
    pub cltv_final: invoiced_actors::policy::bolt11::Cltv,
    /// Free-space reserve of the event log.
    pub min_free_bytes: u64,
    /// How far the daemon's clock is moved from the system's (`--dev-clock-offset`, tests only).
    pub clock_offset_ms: i64,
    /// Retention (`--autoclean-*`).
    pub autoclean: invoiced_actors::autoclean::AutocleanConfig,
    /// Hold invoices (`--hold-cancel-before-htlc-expiry`).
    pub hold: invoiced_actors::hold_keeper::HoldConfig,
    /// Webhook receivers (`--webhook-url`, repeatable).
    pub webhook_urls: Vec<String>,
    /// Ship every batch to this PostgreSQL before acknowledging it (`--replicate-to`), or, as a
    /// standby, follow it (`--replicate-from`).
    pub replicate_to: Option<String>,
    /// Run as a standby (`invoiced standby`).
    pub standby: bool,
    /// RPC arbiters (`--rpc-threads`); `None`: one per core the daemon may run on.
    pub rpc_threads: Option<usize>,
    /// Where to serve Prometheus metrics (`--metrics-listen`), if anywhere.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Tests only: exit just before shipping the batch after this many (`--dev-crash-before-ship`).
    pub dev_crash_before_ship: Option<u64>,
    /// Where the passphrase of an encrypted or passphrase-protected `hsm_secret` comes from.
    pub hsm_passphrase: PassphraseSource,
}

/// Where the `hsm_secret` passphrase comes from: never the command line itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PassphraseSource {
    /// None given (a plain or passphrase-less `hsm_secret`).
    #[default]
    None,
    /// The first line of this file.
    File(PathBuf),
    /// Asked on the terminal, without echo.
    Terminal,
}

impl PassphraseSource {
    /// The passphrase, if one was asked for.
    ///
    /// # Errors
    /// When the file or the terminal cannot be read.
    pub fn read(&self) -> anyhow::Result<Option<String>> {
        match self {
            PassphraseSource::None => Ok(None),
            PassphraseSource::File(path) => {
                let text = fs::read_to_string(path)
                    .with_context(|| format!("reading hsm passphrase file {}", path.display()))?;
                let mode = fs::metadata(path)?.permissions().mode();
                if mode & 0o077 != 0 {
                    tracing::warn!(
                        "hsm passphrase file {} is readable by others (mode {:o})",
                        path.display(),
                        mode & 0o777
                    );
                }
                Ok(Some(text.lines().next().unwrap_or_default().to_owned()))
            }
            PassphraseSource::Terminal => {
                let p = rpassword::prompt_password("Enter hsm_secret passphrase: ")
                    .context("reading the hsm passphrase from the terminal")?;
                Ok(Some(p))
            }
        }
    }
}

impl Config {
    /// `hsm_secret` in the data dir.
    pub fn hsm_secret(&self) -> PathBuf {
        self.data_dir.join("hsm_secret")
    }

    /// The RocksDB event log folder.
    pub fn event_log(&self) -> PathBuf {
        event_log_path(&self.data_dir)
    }
}

/// The event log folder of a data dir.
pub fn event_log_path(data_dir: &Path) -> PathBuf {
    data_dir.join("events")
}

/// `~/.invoiced`.
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".invoiced")
}

/// Creates the data dir with mode 0700 if it is missing.
///
/// # Errors
/// When it cannot be created.
pub fn prepare_data_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating data dir {}", dir.display()))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}
