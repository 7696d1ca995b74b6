//! The macaroons of the API's directory and the check of every call.
//!
//! On first start a random root key is written to `macaroons.key` (0600) and the three
//! macaroons LND gives its users are baked from it: `admin.macaroon` (everything),
//! `invoice.macaroon` (invoices, no payment) and `readonly.macaroon` (reading only). A call
//! carries one, hex encoded, in the `macaroon` metadata (gRPC) or the `Grpc-Metadata-macaroon`
//! header (REST); it is refused as LND refuses it unless it allows the method.

use std::path::Path;

use anyhow::Context as _;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::macaroon::{self, Grant, Macaroon, Permission};

/// The root key, and the check of calls against it.
pub struct Auth {
    root_key: [u8; 32],
    /// What each macaroon seen grants, by its hex text: a client sends the same one with every
    /// call, and its chain of HMACs need not be computed again. (The root key does not change
    /// while the API runs, so a verdict on the same bytes stands; a `time-before` is checked on
    /// every call.)
    verified: Mutex<HashMap<String, Arc<Grant>>>,
}

/// Most verified macaroons remembered (then the memory starts again).
const REMEMBERED: usize = 1024;

fn random32() -> anyhow::Result<[u8; 32]> {
    let mut b = [0u8; 32];
    getrandom::getrandom(&mut b).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(b)
}

impl Auth {
    /// Reads `DIR/macaroons.key`, or makes it and bakes the three macaroons beside it.
    ///
    /// # Errors
    /// When the key cannot be read, or the files cannot be written.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Auth> {
        let key_file = dir.join("macaroons.key");
        if key_file.exists() {
            let bytes = std::fs::read(&key_file)
                .with_context(|| format!("reading {}", key_file.display()))?;
            let root_key = <[u8; 32]>::try_from(bytes.as_slice())
                .map_err(|_| anyhow::anyhow!("{} is not 32 bytes", key_file.display()))?;
            return Ok(Auth::with_key(root_key));
        }
        let root_key = random32()?;
        for (name, permissions) in [
            ("admin.macaroon", macaroon::admin()),
            ("invoice.macaroon", macaroon::INVOICE.to_vec()),
            ("readonly.macaroon", macaroon::READONLY.to_vec()),
        ] {
            let baked = Macaroon::bake(&root_key, random32()?, &permissions);
            let path = dir.join(name);
            let _ = std::fs::remove_file(&path);
            super::write_private(&path, &baked.to_bytes())?;
        }
        super::write_private(&key_file, &root_key)?;
        Ok(Auth::with_key(root_key))
    }

    fn with_key(root_key: [u8; 32]) -> Auth {
        Auth {
            root_key,
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the hex macaroon `given` (`None`: none came) allows the method at gRPC path
    /// `path`.
    ///
    /// # Errors
    /// The refusal, in LND's words.
    pub fn check(&self, given: Option<&str>, path: &str) -> Result<(), tonic::Status> {
        let needed: &[Permission] = macaroon::required(path)
            .ok_or_else(|| tonic::Status::unimplemented(format!("{path} is not served")))?;
        let refuse = |r: macaroon::Refusal| tonic::Status::unknown(r.to_string());
        let given = given
            .ok_or(macaroon::Refusal::Missing)
            .map_err(refuse)?
            .trim();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let known = self
            .verified
            .lock()
            .ok()
            .and_then(|m| m.get(given).cloned());
        let grant = match known {
            Some(g) => g,
            None => {
                let bytes = hex::decode(given)
                    .map_err(|_| refuse(macaroon::Refusal::Malformed("not hex")))?;
                let g = Macaroon::from_bytes(&bytes)
                    .and_then(|m| m.verify(&self.root_key))
                    .map(Arc::new)
                    .map_err(refuse)?;
                if let Ok(mut m) = self.verified.lock() {
                    if m.len() >= REMEMBERED {
                        m.clear();
                    }
                    m.insert(given.to_owned(), g.clone());
                }
                g
            }
        };
        grant.allows(needed, now).map_err(refuse)
    }
}
