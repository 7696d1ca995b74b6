//! `invoiced`: the daemon (`serve`) and its offline tools.
//!
//! The only place for `anyhow`, exit codes and wiring.

mod config;
mod daemon;
mod rpc;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use invoiced_events::Network;

#[derive(Parser)]
#[command(name = "invoiced", version, about = "A Lightning invoice daemon with an event-sourced log")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon in the foreground.
    Serve {
        /// The data dir (created 0700 if missing).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// bitcoin, testnet, testnet4, signet or regtest.
        #[arg(long, default_value = "bitcoin")]
        network: Network,
        /// The JSON-RPC socket (default DATA_DIR/lightning-rpc).
        #[arg(long)]
        rpc_file: Option<PathBuf>,
        /// Default min_final_cltv_expiry (18 on bitcoin, 10 elsewhere).
        #[arg(long)]
        cltv_final: Option<u32>,
        /// error, warn, info, debug or trace.
        #[arg(long, default_value = "info")]
        log_level: String,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Serve { data_dir, network, rpc_file, cltv_final, log_level } => {
            let filter = tracing_subscriber::EnvFilter::try_new(&log_level)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
            tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
            let data_dir = data_dir.unwrap_or_else(config::default_data_dir);
            let rpc_file = rpc_file.unwrap_or_else(|| data_dir.join("lightning-rpc"));
            let cfg = config::Config {
                cltv_final: cltv_final.unwrap_or(network.default_cltv_final()),
                data_dir,
                network,
                rpc_file,
            };
            if cfg.cltv_final > invoiced_actors::bolt11::MAX_CLTV {
                eprintln!("invoiced: --cltv-final must be at most {}", invoiced_actors::bolt11::MAX_CLTV);
                return std::process::ExitCode::from(2);
            }
            daemon::run(cfg)
        }
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("invoiced: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
