//! `invoiced-cln`: a Core Lightning plugin that serves the node's invoices from invoiced.
//! Started by lightningd; see `docs/PLUGIN.md`.
//!
//! lightningd runs it without arguments and speaks the plugin protocol on its stdin and stdout.
//! Run by hand, `invoiced-cln --version` (`-V`) prints the version and the commit it was built
//! from, and `--help` (`-h`) what it is; any other command line starts the plugin as before.

const HELP: &str =
    "invoiced-cln: a Core Lightning plugin that serves the node's invoices from invoiced.
Not run by hand: add to lightningd's config
    important-plugin=/path/to/invoiced-cln
    invoiced-rpc-file=/path/to/invoiced/lightning-rpc
Options: invoiced-rpc-file, invoiced-mpp-timeout, invoiced-cltv-safety (docs/PLUGIN.md).
invoiced-cln --version prints the version.";

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [only] = args.as_slice() {
        match only.as_str() {
            "--version" | "-V" => {
                println!("invoiced-cln {}", invoiced::VERSION);
                return;
            }
            "--help" | "-h" => {
                println!("{HELP}");
                return;
            }
            _ => {}
        }
    }
    if let Err(e) = invoiced::plugin::run().await {
        eprintln!("{e:#}");
        std::process::exit(1);
    }
}
