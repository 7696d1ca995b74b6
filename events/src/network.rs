//! The Bitcoin networks invoiced serves and what each implies (invoice prefix, on-chain address
//! prefixes, default final CLTV).

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Serialize};

/// A network a data dir belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Network {
    /// Mainnet.
    Bitcoin,
    /// testnet3.
    Testnet,
    /// testnet4.
    Testnet4,
    /// signet.
    Signet,
    /// regtest.
    Regtest,
}

impl Network {
    /// The name used on the command line and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Network::Bitcoin => "bitcoin",
            Network::Testnet => "testnet",
            Network::Testnet4 => "testnet4",
            Network::Signet => "signet",
            Network::Regtest => "regtest",
        }
    }

    /// The BOLT11 currency prefix after `ln` (`bc`, `tb`, `tbs`, `bcrt`).
    pub fn bolt11_hrp(self) -> &'static str {
        match self {
            Network::Bitcoin => "bc",
            Network::Testnet | Network::Testnet4 => "tb",
            Network::Signet => "tbs",
            Network::Regtest => "bcrt",
        }
    }

    /// The segwit address HRP (`bc`, `tb`, `bcrt`).
    pub fn segwit_hrp(self) -> &'static str {
        match self {
            Network::Bitcoin => "bc",
            Network::Testnet | Network::Testnet4 | Network::Signet => "tb",
            Network::Regtest => "bcrt",
        }
    }

    /// Base58 version bytes for P2PKH and P2SH addresses.
    pub fn base58_versions(self) -> (u8, u8) {
        match self {
            Network::Bitcoin => (0x00, 0x05),
            _ => (0x6f, 0xc4),
        }
    }

    /// Core Lightning's default `cltv-final` for this network.
    pub fn default_cltv_final(self) -> u32 {
        match self {
            Network::Bitcoin => 18,
            _ => 10,
        }
    }

    /// Every network, in a fixed order.
    pub const ALL: [Network; 5] = [
        Network::Bitcoin,
        Network::Testnet,
        Network::Testnet4,
        Network::Signet,
        Network::Regtest,
    ];
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown network name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown network '{0}' (bitcoin, testnet, testnet4, signet, regtest)")]
pub struct UnknownNetwork(pub String);

impl FromStr for Network {
    type Err = UnknownNetwork;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Network::ALL
            .into_iter()
            .find(|n| n.name() == s)
            .ok_or_else(|| UnknownNetwork(s.into()))
    }
}
