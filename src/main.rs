//! `invoiced`: the daemon (`serve`) and its offline tools.
//!
//! The command line: parsing, exit codes and wiring.

use invoiced::{config, config_file, daemon, logging, tools};

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use invoiced_events::Network;

#[derive(Parser)]
#[command(
    name = "invoiced",
    version = invoiced::VERSION,
    about = "A Lightning invoice daemon with an event-sourced log"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The daemon's options (`serve`, and `standby` with them).
#[derive(clap::Args)]
struct ServeArgs {
    /// The data dir (created 0700 if missing).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Read options from FILE (`name=value` a line, the flags' names; flags override it)
    /// instead of DATA_DIR/config, which is read when it exists (docs/CONFIG.md).
    #[arg(long, value_name = "FILE")]
    conf: Option<PathBuf>,
    /// bitcoin, testnet, testnet4, signet or regtest.
    #[arg(long, default_value = "bitcoin")]
    network: Network,
    /// The JSON-RPC socket (default DATA_DIR/lightning-rpc).
    #[arg(long)]
    rpc_file: Option<PathBuf>,
    /// Default min_final_cltv_expiry (18 on bitcoin, 10 elsewhere), at most 65535.
    #[arg(long, value_parser = clap::value_parser!(u16))]
    cltv_final: Option<u16>,
    /// error, warn, info, debug or trace.
    #[arg(long, default_value = "info")]
    log_level: String,
    /// Logs as text or as JSON lines.
    #[arg(long, value_enum, default_value_t)]
    log_format: logging::LogFormat,
    /// Refuse writes (error -1) while the data dir's filesystem has less than this free.
    #[arg(long, default_value_t = 128)]
    min_free_disk_mb: u64,
    /// Read the passphrase of an encrypted or passphrase-protected hsm_secret from this file.
    #[arg(long, conflicts_with = "hsm_passphrase")]
    hsm_passphrase_file: Option<PathBuf>,
    /// Ask for the passphrase of the hsm_secret on the terminal.
    #[arg(long)]
    hsm_passphrase: bool,
    /// Clean paid invoices this many seconds after payment (0 = never), as Core Lightning.
    #[arg(long, default_value_t = 0)]
    autoclean_paidinvoices_age: u64,
    /// Clean expired invoices this many seconds after expiry (0 = never), as Core Lightning.
    #[arg(long, default_value_t = 0)]
    autoclean_expiredinvoices_age: u64,
    /// How often autoclean runs, seconds.
    #[arg(long, default_value_t = 3600)]
    autoclean_cycle: u64,
    /// Cancel an ACCEPTED hold invoice this many blocks before its earliest held part's CLTV
    /// expiry (holdinvoice's `holdinvoice-cancel-before-htlc-expiry`).
    #[arg(long, default_value_t = 6)]
    hold_cancel_before_htlc_expiry: u32,
    /// POST every invoice event to this URL, signed (repeat for several receivers).
    #[arg(long = "webhook-url")]
    webhook_urls: Vec<String>,
    /// Commit every batch of the log to this PostgreSQL (postgres://…) before acknowledging it.
    #[arg(long)]
    replicate_to: Option<String>,
    /// RPC arbiters (threads that parse, sign and answer), default one per core the daemon may
    /// run on.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    rpc_threads: Option<u16>,
    /// Serve Prometheus metrics on http://HOST:PORT/metrics (docs/OPERATIONS.md lists them).
    #[arg(long, value_name = "HOST:PORT")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// The test hooks, only in a build with the `dev-hooks` feature.
    #[cfg(feature = "dev-hooks")]
    #[command(flatten)]
    dev: DevHooks,
}

/// Hooks for tests (the `dev-hooks` feature; release binaries are built without it).
#[cfg(feature = "dev-hooks")]
#[derive(clap::Args)]
struct DevHooks {
    /// For tests: exit just before shipping the batch after this many.
    #[arg(long, hide = true)]
    dev_crash_before_ship: Option<u64>,
    /// For tests: run as if the time were this many seconds later (earlier if negative).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true, hide = true)]
    dev_clock_offset: i64,
}

/// The clock offset (seconds) and the batch to crash before, as the test hooks set them.
#[cfg(feature = "dev-hooks")]
fn dev_hooks(args: &ServeArgs) -> (i64, Option<u64>) {
    (args.dev.dev_clock_offset, args.dev.dev_crash_before_ship)
}

/// Without the test hooks: the system's clock, no crash.
#[cfg(not(feature = "dev-hooks"))]
fn dev_hooks(_: &ServeArgs) -> (i64, Option<u64>) {
    (0, None)
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon in the foreground.
    Serve(ServeArgs),
    /// Run as a standby of a primary that replicates to PostgreSQL: follow its log, serve reads,
    /// refuse writes, take over on `promote` or when the primary's lease lapses.
    Standby {
        #[command(flatten)]
        serve: ServeArgs,
        /// The PostgreSQL the primary replicates to (postgres://…).
        #[arg(long)]
        replicate_from: String,
    },
    /// Serve LND's API for invoices (gRPC and REST), backed by invoiced and the node behind
    /// it, for applications that speak only LND's (docs/LND.md).
    LndApi(invoiced::lnd::Args),
    /// Print the event log, one JSON line a record.
    Events {
        /// The data dir.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// First sequence number to print.
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// Keep printing new records as the daemon writes them.
        #[arg(long)]
        follow: bool,
        /// JSON lines (the default prints a short line a record).
        #[arg(long)]
        json: bool,
    },
    /// Rebuild the state from the log alone and print it (at a point, if asked).
    Replay {
        /// The data dir.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Stop after this sequence number.
        #[arg(long, conflicts_with = "at")]
        until: Option<u64>,
        /// Stop at this UNIX time (records committed at or before it).
        #[arg(long)]
        at: Option<u64>,
    },
    /// Verify the log: chain, signatures, fields, uniqueness, indexes, checkpoint. Changes nothing.
    Audit {
        /// The data dir.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

/// `serve`, or `standby` when `standby_of` names the primary's PostgreSQL.
fn serve(args: ServeArgs, standby_of: Option<String>) -> anyhow::Result<()> {
    let (dev_clock_offset, dev_crash_before_ship) = dev_hooks(&args);
    let ServeArgs {
        data_dir,
        conf,
        network,
        rpc_file,
        cltv_final,
        log_level,
        log_format,
        min_free_disk_mb,
        hsm_passphrase_file,
        hsm_passphrase,
        autoclean_paidinvoices_age,
        autoclean_expiredinvoices_age,
        autoclean_cycle,
        hold_cancel_before_htlc_expiry,
        webhook_urls,
        replicate_to,
        rpc_threads,
        metrics_listen,
        ..
    } = args;
    let filter = tracing_subscriber::EnvFilter::try_new(&log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    logging::init(filter, log_format);
    if let Some(file) = conf {
        tracing::info!("options read from {}", file.display());
    }
    let data_dir = data_dir.unwrap_or_else(config::default_data_dir);
    let rpc_file = rpc_file.unwrap_or_else(|| data_dir.join("lightning-rpc"));
    let cltv = cltv_final.map_or(u64::from(network.default_cltv_final()), u64::from);
    let cltv_final = invoiced_actors::policy::bolt11::Cltv::new(cltv)
        .map_err(|e| anyhow::anyhow!("--cltv-final {e}"))?;
    let cfg = config::Config {
        cltv_final,
        data_dir,
        network,
        rpc_file,
        min_free_bytes: min_free_disk_mb.saturating_mul(1 << 20),
        clock_offset_ms: dev_clock_offset.saturating_mul(1000),
        rpc_threads: rpc_threads.map(usize::from),
        metrics_listen,
        autoclean: invoiced_actors::autoclean::AutocleanConfig {
            paid_age_s: autoclean_paidinvoices_age,
            expired_age_s: autoclean_expiredinvoices_age,
            cycle_s: autoclean_cycle,
        },
        hold: invoiced_actors::hold_keeper::HoldConfig {
            cancel_before_blocks: hold_cancel_before_htlc_expiry,
        },
        webhook_urls,
        standby: standby_of.is_some(),
        replicate_to: standby_of.or(replicate_to),
        dev_crash_before_ship,
        hsm_passphrase: match (hsm_passphrase_file, hsm_passphrase) {
            (Some(file), _) => config::PassphraseSource::File(file),
            (None, true) => config::PassphraseSource::Terminal,
            (None, false) => config::PassphraseSource::None,
        },
    };
    daemon::run(cfg)
}

fn main() -> std::process::ExitCode {
    let cli = match config_file::parse::<Cli>(std::env::args_os()) {
        Ok(cli) => cli,
        Err(config_file::Error::Clap(e)) => e.exit(),
        Err(e) => {
            eprintln!("invoiced: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let outcome = match cli.command {
        Command::Serve(args) => serve(args, None),
        Command::LndApi(args) => {
            logging::init(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
                args.log_format,
            );
            invoiced::lnd::run(&args)
        }
        Command::Standby {
            serve: args,
            replicate_from,
        } => serve(args, Some(replicate_from)),
        Command::Events {
            data_dir,
            from,
            follow,
            json,
        } => tools::events::run(
            &data_dir.unwrap_or_else(config::default_data_dir),
            from,
            follow,
            json,
        ),
        Command::Replay {
            data_dir,
            until,
            at,
        } => {
            let until = match (until, at) {
                (Some(n), _) => tools::replay::Until::Seq(n),
                (None, Some(t)) => tools::replay::Until::Time(t),
                (None, None) => tools::replay::Until::End,
            };
            tools::replay::run(&data_dir.unwrap_or_else(config::default_data_dir), until)
        }
        Command::Audit { data_dir } => {
            return tools::audit::run(&data_dir.unwrap_or_else(config::default_data_dir))
        }
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            logging::fatal("invoiced", &e);
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::CommandFactory as _;
    use std::ffi::OsString;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    /// `serve` and `standby` take a config file: they have the options the config file module
    /// looks for, as paths.
    #[test]
    fn the_daemon_modes_take_a_config_file() {
        for argv in [
            vec!["invoiced", "serve"],
            vec!["invoiced", "standby", "--replicate-from", "postgres://x"],
        ] {
            let mut argv = argv;
            argv.extend(["--conf", "/c", "--data-dir", "/d"]);
            let m = Cli::command().try_get_matches_from(argv).unwrap();
            let (_, sub) = m.subcommand().unwrap();
            for (id, want) in [(config_file::CONF, "/c"), (config_file::DATA_DIR, "/d")] {
                let got = sub.try_get_one::<PathBuf>(id).unwrap();
                assert_eq!(got, Some(&PathBuf::from(want)), "{id}");
            }
        }
    }

    fn serve_args(cli: Cli) -> ServeArgs {
        match cli.command {
            Command::Serve(a) => a,
            _ => panic!("not serve"),
        }
    }

    #[test]
    fn the_config_file_sets_serve_s_options_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("invoiced.conf");
        std::fs::write(
            &conf,
            "network=signet\ncltv-final=40\nwebhook-url=http://a\nwebhook-url=http://b\nhsm-passphrase\n",
        )
        .unwrap();
        let argv = |more: &[&str]| -> Vec<OsString> {
            let mut v: Vec<OsString> = ["invoiced", "serve", "--conf"].map(Into::into).to_vec();
            v.push(conf.clone().into());
            v.extend(more.iter().map(Into::into));
            v
        };
        let a = serve_args(config_file::parse::<Cli>(argv(&[])).unwrap());
        assert_eq!(
            (a.network, a.cltv_final, a.hsm_passphrase),
            (Network::Signet, Some(40), true)
        );
        assert_eq!(a.webhook_urls, ["http://a", "http://b"]);
        let a = serve_args(
            config_file::parse::<Cli>(argv(&["--network=regtest", "--webhook-url", "http://c"]))
                .unwrap(),
        );
        assert_eq!((a.network, a.cltv_final), (Network::Regtest, Some(40)));
        assert_eq!(a.webhook_urls, ["http://a", "http://b", "http://c"]);
        // A flag that conflicts with the file's line is blamed on that line.
        match config_file::parse::<Cli>(argv(&["--hsm-passphrase-file", "/p"])) {
            Err(e) => assert!(
                e.to_string()
                    .starts_with(&format!("{}:5: ", conf.display())),
                "{e}"
            ),
            Ok(_) => panic!("a conflict between the file and a flag parsed"),
        }
    }

    /// The example config shipped in packages names only real options with valid values: each
    /// of its lines, uncommented alone, is read by `serve` (or, for `replicate-from`, by
    /// `standby`).
    #[test]
    fn every_line_of_the_shipped_example_config_is_an_option_that_parses() {
        let example = include_str!("../packaging/invoiced.conf.example");
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("one.conf");
        let mut seen = 0;
        for line in example.lines() {
            let option = line.trim_start_matches('#');
            let Some((name, _)) = option.split_once('=') else {
                continue;
            };
            if name.contains(' ') {
                continue;
            }
            std::fs::write(&conf, format!("{option}\n")).unwrap();
            let command = if name == "replicate-from" {
                "standby"
            } else {
                "serve"
            };
            let argv: Vec<OsString> = vec![
                "invoiced".into(),
                command.into(),
                "--conf".into(),
                conf.clone().into(),
            ];
            if let Err(e) = config_file::parse::<Cli>(argv) {
                panic!("{option}: {e}");
            }
            seen += 1;
        }
        assert!(seen >= 15, "only {seen} options in the example");
    }
}
