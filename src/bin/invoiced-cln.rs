//! `invoiced-cln`: a Core Lightning plugin that serves the node's invoices from invoiced.
//! Started by lightningd; see `docs/PLUGIN.md`.

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(e) = invoiced::plugin::run().await {
        eprintln!("{e:#}");
        std::process::exit(1);
    }
}
