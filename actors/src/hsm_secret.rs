//! `hsm_secret`: every format Core Lightning v26.06 writes, read into its root secret, the
//! [`Seed`] (`bip32_seed` in `common/hsm_secret.c`, `hsmd/libhsmd.c` at v26.06.6).
//!
//! | length | format | the seed |
//! | --- | --- | --- |
//! | 32 | plain (before v25.12) | the file |
//! | 73 | encrypted (`lightning-hsmtool encrypt`) | XChaCha20-Poly1305 secretstream, key = Argon2id(passphrase) |
//! | other | BIP39 mnemonic (v25.12 and later): 32 bytes of passphrase check, then the words | the 64-byte BIP39 seed |
//!
//! The node key comes from the seed's first 32 bytes; the derived secrets (`makesecret`, the
//! BOLT12 invoice secret) from all of it.
//!
//! The passphrase check of the mnemonic format is 32 zero bytes when there is none, else
//! SHA256 of the 64-byte seed. A passphrase comes from the caller (a file or the terminal, never
//! the command line) and is required exactly when the format needs one, as Core Lightning
//! requires it. A new data dir gets 32 random bytes (mode 0400), the plain format.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use bitcoin::hashes::{sha256, Hash as _};
use chacha20::cipher::{KeyIvInit as _, StreamCipher as _, StreamCipherSeek as _};
use poly1305::universal_hash::KeyInit as _;

use crate::entropy::EntropySource;

/// Size of the secret the node key is derived from.
pub const HSM_SECRET_LEN: usize = 32;
/// Size of the legacy encrypted format: 24 bytes of header, 32 of ciphertext, 17 of tag and MAC.
const ENCRYPTED_LEN: usize = 24 + HSM_SECRET_LEN + 17;
/// Argon2id salt of Core Lightning's `get_encryption_key`.
const ARGON2_SALT: &[u8; 16] = b"c-lightning\0\0\0\0\0";
/// libsodium's `crypto_pwhash_argon2id_OPSLIMIT_MODERATE` and `MEMLIMIT_MODERATE` (256 MiB).
const ARGON2_OPS: u32 = 3;
const ARGON2_MEM_KIB: u32 = 256 * 1024;

/// A node's root secret: 32 bytes, or the 64-byte BIP39 seed (see the module docs). Zeroed
/// when dropped.
pub struct Seed(Vec<u8>);

impl core::ops::Deref for Seed {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Seed {
    fn drop(&mut self) {
        self.0.iter_mut().for_each(|b| *b = 0);
    }
}

/// Which format a file is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// 32 raw bytes.
    Plain,
    /// 73 bytes, encrypted with a passphrase.
    Encrypted,
    /// A BIP39 mnemonic without passphrase.
    Mnemonic,
    /// A BIP39 mnemonic with a passphrase.
    MnemonicWithPassphrase,
}

impl Format {
    /// The format of `bytes`, as Core Lightning's `detect_hsm_secret_type` decides it.
    pub fn detect(bytes: &[u8]) -> Option<Format> {
        match bytes.len() {
            n if n < HSM_SECRET_LEN => None,
            HSM_SECRET_LEN => Some(Format::Plain),
            ENCRYPTED_LEN => Some(Format::Encrypted),
            _ if bytes[..32].iter().all(|b| *b == 0) => Some(Format::Mnemonic),
            _ => Some(Format::MnemonicWithPassphrase),
        }
    }

    /// Whether reading it takes a passphrase.
    pub fn needs_passphrase(self) -> bool {
        matches!(self, Format::Encrypted | Format::MnemonicWithPassphrase)
    }
}

/// Why an `hsm_secret` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HsmSecretError {
    /// It could not be read or created.
    #[error("hsm_secret {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Shorter than any format.
    #[error("hsm_secret {0}: Invalid hsm_secret format (shorter than 32 bytes)")]
    InvalidFormat(String),
    /// The format needs a passphrase and none was given.
    #[error(
        "hsm_secret {0} is {1}: give its passphrase with --hsm-passphrase-file or --hsm-passphrase"
    )]
    PassphraseRequired(String, &'static str),
    /// A passphrase was given for a format without one.
    #[error("hsm_secret {0}: Passphrase provided but not needed")]
    PassphraseNotNeeded(String),
    /// The passphrase does not open it.
    #[error("hsm_secret {0}: Wrong passphrase")]
    WrongPassphrase(String),
    /// The words are not a valid BIP39 mnemonic.
    #[error("hsm_secret {0}: Invalid mnemonic")]
    InvalidMnemonic(String),
}

/// Reads `hsm_secret` at `path` (any format, with `passphrase` where it needs one), creating a
/// plain one (mode 0400, 32 bytes from `entropy`) if absent.
///
/// # Errors
/// [`HsmSecretError`] naming the file and what is wrong.
pub fn load_or_create(
    path: &Path,
    passphrase: Option<&str>,
    entropy: &mut dyn EntropySource,
) -> Result<Seed, HsmSecretError> {
    let name = path.display().to_string();
    let io = |source| HsmSecretError::Io {
        path: name.clone(),
        source,
    };
    if !path.exists() {
        let mut secret = [0u8; HSM_SECRET_LEN];
        entropy.fill(&mut secret);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o400)
            .open(path)
            .map_err(io)?;
        f.write_all(&secret).map_err(io)?;
        f.sync_all().map_err(io)?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o400)).map_err(io)?;
    }
    let bytes = fs::read(path).map_err(io)?;
    extract(&bytes, passphrase, &name)
}

/// The root secret, out of a file's `bytes`.
///
/// # Errors
/// [`HsmSecretError`] with `name` in its message.
pub fn extract(bytes: &[u8], passphrase: Option<&str>, name: &str) -> Result<Seed, HsmSecretError> {
    let format =
        Format::detect(bytes).ok_or_else(|| HsmSecretError::InvalidFormat(name.to_owned()))?;
    let passphrase = match (format.needs_passphrase(), passphrase) {
        (true, None) => {
            let what = if format == Format::Encrypted {
                "encrypted"
            } else {
                "a mnemonic with a passphrase"
            };
            return Err(HsmSecretError::PassphraseRequired(name.to_owned(), what));
        }
        (false, Some(_)) => return Err(HsmSecretError::PassphraseNotNeeded(name.to_owned())),
        (_, p) => p,
    };
    match format {
        Format::Plain => Ok(Seed(bytes.to_vec())),
        Format::Encrypted => decrypt(bytes, passphrase.unwrap_or_default())
            .map(|s| Seed(s.to_vec()))
            .ok_or_else(|| HsmSecretError::WrongPassphrase(name.to_owned())),
        Format::Mnemonic | Format::MnemonicWithPassphrase => {
            let words = std::str::from_utf8(&bytes[32..])
                .map_err(|_| HsmSecretError::InvalidMnemonic(name.to_owned()))?;
            let mnemonic = bip39::Mnemonic::parse_in_normalized(bip39::Language::English, words)
                .map_err(|_| HsmSecretError::InvalidMnemonic(name.to_owned()))?;
            let seed = mnemonic.to_seed_normalized(passphrase.unwrap_or_default());
            if format == Format::MnemonicWithPassphrase
                && sha256::Hash::hash(&seed).to_byte_array()[..] != bytes[..32]
            {
                return Err(HsmSecretError::WrongPassphrase(name.to_owned()));
            }
            Ok(Seed(seed.to_vec()))
        }
    }
}

/// Core Lightning's `get_encryption_key`: Argon2id, libsodium's "moderate" limits.
fn encryption_key(passphrase: &str) -> Option<[u8; 32]> {
    let params = argon2::Params::new(ARGON2_MEM_KIB, ARGON2_OPS, 1, Some(32)).ok()?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = [0u8; 32];
    argon
        .hash_password_into(passphrase.as_bytes(), ARGON2_SALT, &mut key)
        .ok()?;
    Some(key)
}

/// Opens the one message of libsodium's `crypto_secretstream_xchacha20poly1305` that
/// `lightning-hsmtool encrypt` writes: header (24), then the encrypted tag byte, the
/// ciphertext and a Poly1305 MAC over (tag block ‖ ciphertext ‖ padding ‖ lengths).
fn decrypt(file: &[u8], passphrase: &str) -> Option<[u8; HSM_SECRET_LEN]> {
    let key = encryption_key(passphrase)?;
    let (header, rest) = file.split_at(24);
    let (body, mac) = rest.split_at(rest.len() - 16);
    let (tag_byte, ciphertext) = body.split_first()?;
    // The stream key: HChaCha20(key, header[..16]); the nonce: counter 1 ‖ header[16..24].
    let hchacha_input: [u8; 16] = header[..16].try_into().ok()?;
    let subkey =
        chacha20::hchacha::<chacha20::cipher::consts::U10>(&key.into(), &hchacha_input.into());
    let mut nonce = [0u8; 12];
    nonce[0] = 1;
    nonce[4..].copy_from_slice(&header[16..24]);
    let cipher = |block: u32| {
        let mut c = chacha20::ChaCha20::new(&subkey, &nonce.into());
        c.seek(u64::from(block) * 64);
        c
    };
    let mut mac_key = [0u8; 32];
    cipher(0).apply_keystream(&mut mac_key);
    let mut tag_block = [0u8; 64];
    tag_block[0] = *tag_byte;
    cipher(1).apply_keystream(&mut tag_block);
    tag_block[0] = *tag_byte;
    let mut authenticated = Vec::with_capacity(64 + ciphertext.len() + 32);
    authenticated.extend_from_slice(&tag_block);
    authenticated.extend_from_slice(ciphertext);
    // libsodium pads with (0x10 - 64 + mlen) & 0xf zero bytes.
    authenticated.resize(
        authenticated.len() + (ciphertext.len().wrapping_sub(48) & 0xf),
        0,
    );
    authenticated.extend_from_slice(&0u64.to_le_bytes());
    authenticated.extend_from_slice(&((64 + ciphertext.len()) as u64).to_le_bytes());
    let expected = poly1305::Poly1305::new(&mac_key.into()).compute_unpadded(&authenticated);
    if !constant_time_eq(expected.as_slice(), mac) {
        return None;
    }
    let mut out = [0u8; HSM_SECRET_LEN];
    out.copy_from_slice(ciphertext.get(..HSM_SECRET_LEN)?);
    cipher(2).apply_keystream(&mut out);
    Some(out)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key_signer::derive_node_key;
    use secp256k1::{PublicKey, Secp256k1};

    fn node_id(secret: &[u8]) -> String {
        PublicKey::from_secret_key(&Secp256k1::new(), &derive_node_key(secret).unwrap()).to_string()
    }

    fn fixture(name: &str) -> Vec<u8> {
        fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data/hsm_secret")
                .join(name),
        )
        .unwrap()
    }

    // The files and node ids below were made by Core Lightning v26.06.6's `lightning-hsmtool`
    // (`generatehsm`, `encrypt`, `getnodeid`); tests/interop checks fresh ones against lightningd.

    /// The BOLT12 invoice secret is derived from the whole seed (64 bytes for a mnemonic), as
    /// lightningd's `makesecret string=bolt12-invoice-base` answered for these files.
    #[test]
    fn the_bolt12_secret_is_lightningds() {
        let plain: Vec<u8> = (1..=32).collect();
        let base =
            |seed: &[u8]| hex::encode(crate::key_signer::make_secret(seed, b"bolt12-invoice-base"));
        assert_eq!(
            base(&extract(&plain, None, "f").unwrap()),
            "ddd14a2e09d792f4ac599381c1f6a014a04cfc8762946a1387de1e515ee35589"
        );
        let seed = extract(&fixture("mnemonic_nopass"), None, "f").unwrap();
        assert_eq!(seed.len(), 64);
        assert_eq!(
            base(&seed),
            "6fac1f0c529c81f060947bf852c4ef1f12a748b4d17c0247a88e5b89e65566aa"
        );
    }

    #[test]
    fn plain() {
        let plain: Vec<u8> = (1..=32).collect();
        assert_eq!(
            node_id(&extract(&plain, None, "f").unwrap()),
            "037d8d1109836a88daf2b86d6e52e12351f9c274f597b78eca941525b309096ca8"
        );
        assert!(matches!(
            extract(&plain, Some("x"), "f"),
            Err(HsmSecretError::PassphraseNotNeeded(_))
        ));
    }

    #[test]
    fn mnemonic_without_passphrase() {
        let file = fixture("mnemonic_nopass");
        assert_eq!(Format::detect(&file), Some(Format::Mnemonic));
        assert_eq!(
            node_id(&extract(&file, None, "f").unwrap()),
            "03653e90c1ce4660fd8505dd6d643356e93cfe202af109d382787639dd5890e87d"
        );
    }

    #[test]
    fn mnemonic_with_passphrase() {
        let file = fixture("mnemonic_secretpass");
        assert_eq!(Format::detect(&file), Some(Format::MnemonicWithPassphrase));
        assert_eq!(
            node_id(&extract(&file, Some("secretpass"), "f").unwrap()),
            "028d1df563777a163fc88449e6131a42a2f461e3f11c7e947e9d63ee464569327d"
        );
        assert!(matches!(
            extract(&file, Some("wrong"), "f"),
            Err(HsmSecretError::WrongPassphrase(_))
        ));
        assert!(matches!(
            extract(&file, None, "f"),
            Err(HsmSecretError::PassphraseRequired(..))
        ));
    }

    #[test]
    fn encrypted() {
        let file = fixture("encrypted_hunter22");
        assert_eq!(Format::detect(&file), Some(Format::Encrypted));
        // It holds the bytes 0x01..=0x20.
        assert_eq!(
            extract(&file, Some("hunter22"), "f").unwrap().to_vec(),
            (1..=32).collect::<Vec<u8>>()
        );
        assert!(matches!(
            extract(&file, Some("hunter23"), "f"),
            Err(HsmSecretError::WrongPassphrase(_))
        ));
        let mut flipped = file.clone();
        flipped[40] ^= 1;
        assert!(matches!(
            extract(&flipped, Some("hunter22"), "f"),
            Err(HsmSecretError::WrongPassphrase(_))
        ));
    }

    #[test]
    fn damaged_files() {
        assert!(matches!(
            extract(&[0u8; 31], None, "f"),
            Err(HsmSecretError::InvalidFormat(_))
        ));
        let mut words = vec![0u8; 32];
        words.extend_from_slice(b"abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon");
        assert!(
            matches!(
                extract(&words, None, "f"),
                Err(HsmSecretError::InvalidMnemonic(_))
            ),
            "bad checksum"
        );
        let mut junk = vec![0u8; 32];
        junk.extend_from_slice(&[0xff; 40]);
        assert!(matches!(
            extract(&junk, None, "f"),
            Err(HsmSecretError::InvalidMnemonic(_))
        ));
    }
}
