//! Invoice descriptions.
//!
//! Owns the description length rule: at most 639 UTF-8 bytes go into a BOLT11 `d` field; with
//! `deschashonly` only the SHA256 goes into the invoice and the text may be of any length.

use serde::{Deserialize, Serialize};

/// The largest description a `d` field can hold, in bytes (1023 five-bit groups).
pub const MAX_DESCRIPTION_BYTES: usize = 639;

/// A description accepted for an invoice.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Description {
    text: String,
    hash_only: bool,
}

/// Why a description was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DescriptionError {
    /// Too long for a `d` field; carries the length in bytes.
    #[error("Description greater than 639 bytes invalid (description length {0})")]
    TooLong(usize),
}

impl Description {
    /// Accepts `text`; `hash_only` says that only its SHA256 goes into the invoice.
    ///
    /// # Errors
    /// [`DescriptionError::TooLong`] above 639 bytes unless `hash_only`.
    pub fn new(text: String, hash_only: bool) -> Result<Self, DescriptionError> {
        if !hash_only && text.len() > MAX_DESCRIPTION_BYTES {
            return Err(DescriptionError::TooLong(text.len()));
        }
        Ok(Description { text, hash_only })
    }

    /// The full text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether only the hash goes into the invoice (`deschashonly`).
    pub fn hash_only(&self) -> bool {
        self.hash_only
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_counts_bytes() {
        assert!(Description::new("x".repeat(639), false).is_ok());
        assert_eq!(
            Description::new("x".repeat(640), false),
            Err(DescriptionError::TooLong(640))
        );
        assert_eq!(
            Description::new("é".repeat(320), false),
            Err(DescriptionError::TooLong(640))
        );
        assert!(Description::new("x".repeat(5000), true).is_ok());
    }
}
