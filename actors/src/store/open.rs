//! Opening a log on its storage: the network it belongs to, and the projection it starts with
//! (the checkpoint, then the records after it).

use std::sync::Arc;

use invoiced_events::{Network, Projections};

use super::checkpoint::load_checkpoint;
use super::engine::{Batch, Engine, Storage};
use super::keys::{delete_legacy_checkpoint, has_legacy_checkpoint, put_network, read_network};
use super::replay::replay_onto;
use super::{ReplayProgress, StoreError};

/// Opens (or creates) the log on `storage` for `network`, replaying it into a fresh projection
/// (telling `progress` how it goes, if given).
pub(super) fn open_log(
    storage: &dyn Storage,
    network: Network,
    progress: Option<ReplayProgress>,
) -> Result<(Arc<dyn Engine>, Projections), StoreError> {
    let engine = storage.open()?;
    let mut setup = Batch::new();
    match read_network(engine.as_ref())? {
        Some(stored) if stored != network.name().as_bytes() => {
            return Err(StoreError::WrongNetwork {
                stored: String::from_utf8_lossy(&stored).into_owned(),
                wanted: network.name().into(),
            })
        }
        Some(_) => {}
        None => put_network(&mut setup, network.name()),
    }
    if has_legacy_checkpoint(engine.as_ref())? {
        delete_legacy_checkpoint(&mut setup);
    }
    if !setup.is_empty() {
        engine.write(setup)?;
    }
    let start = load_checkpoint(storage, engine.as_ref());
    let from = start.head().0;
    let state = replay_onto(engine.as_ref(), start, progress)?;
    tracing::info!(
        "replayed records {}..={} onto the checkpoint at {from}",
        from + 1,
        state.head().0
    );
    Ok((engine, state))
}
