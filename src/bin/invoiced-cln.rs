//! `invoiced-cln`: a Core Lightning plugin that serves the node's invoices from invoiced.
//! Started by lightningd; see `docs/PLUGIN.md`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), anyhow::Error> {
    invoiced::plugin::run().await
}
