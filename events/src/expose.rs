//! The `exposeprivatechannels` choice of an `invoice` request.

use crate::ShortChannelId;

/// Which channels route hints may use.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum ExposePrivateChannels {
    /// Not given: private channels only when the node has no announced channel.
    #[default]
    Unset,
    /// `true`: every channel is a candidate.
    Always,
    /// `false`: private channels are never used.
    Never,
    /// Only these channels (by real scid or alias); implies `Always` for them.
    Only(Vec<ShortChannelId>),
}
