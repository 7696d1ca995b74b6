//! Invoice descriptions.
//!
//! Owns what an invoice commits to about its purpose: the text in a BOLT11 `d` field (at most
//! 639 UTF-8 bytes), the SHA256 of a text of any length in an `h` field (`deschashonly`), or a
//! hash the caller gives in an `h` field, with no text of it known (LND's `description_hash`,
//! LNURL's metadata). In that last form the text kept beside it is a note (LND's `memo`), not in
//! the invoice.

use bitcoin::hashes::{sha256, Hash as _};
use serde::{Deserialize, Serialize};

use crate::Hash32;

/// The largest description a `d` field can hold, in bytes (1023 five-bit groups).
pub const MAX_DESCRIPTION_BYTES: usize = 639;

/// A description accepted for an invoice.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Description {
    text: String,
    form: Form,
}

/// What goes into the invoice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
enum Form {
    /// The text, in a `d` field.
    Text,
    /// The text's SHA256, in an `h` field.
    HashOfText,
    /// A hash given by the caller, in an `h` field; the text is a note beside it.
    GivenHash(Hash32),
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
        let form = if hash_only {
            Form::HashOfText
        } else {
            Form::Text
        };
        Ok(Description { text, form })
    }

    /// The invoice commits to `hash`, given by the caller; `note` is kept beside it. When `note`
    /// is the text of `hash`, this is the `deschashonly` description of `note`.
    pub fn with_hash(hash: Hash32, note: String) -> Self {
        let form = if sha256::Hash::hash(note.as_bytes()).to_byte_array() == hash {
            Form::HashOfText
        } else {
            Form::GivenHash(hash)
        };
        Description { text: note, form }
    }

    /// The text: the description, or with a given hash the note kept beside it.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the invoice carries a hash (`h`) rather than the text (`d`).
    pub fn hash_only(&self) -> bool {
        self.form != Form::Text
    }

    /// The hash the caller gave, when the invoice commits to one whose text is not known.
    pub fn given_hash(&self) -> Option<Hash32> {
        match self.form {
            Form::GivenHash(h) => Some(h),
            _ => None,
        }
    }

    /// The hash in the invoice's `h` field (`None` when the text is in a `d` field).
    pub fn committed_hash(&self) -> Option<Hash32> {
        match self.form {
            Form::Text => None,
            Form::HashOfText => Some(sha256::Hash::hash(self.text.as_bytes()).to_byte_array()),
            Form::GivenHash(h) => Some(h),
        }
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

    #[test]
    fn a_given_hash_of_the_note_is_deschashonly() {
        let text = "lnurl metadata".to_owned();
        let h = sha256::Hash::hash(text.as_bytes()).to_byte_array();
        let d = Description::with_hash(h, text.clone());
        assert_eq!(d, Description::new(text, true).unwrap());
        assert_eq!(d.given_hash(), None);
        assert_eq!(d.committed_hash(), Some(h));
    }

    #[test]
    fn a_given_hash_is_committed_and_the_note_is_not() {
        let d = Description::with_hash([7; 32], "memo".into());
        assert!(d.hash_only());
        assert_eq!(d.given_hash(), Some([7; 32]));
        assert_eq!(d.committed_hash(), Some([7; 32]));
        assert_eq!(d.text(), "memo");
        assert_eq!(
            Description::new("d".into(), false)
                .unwrap()
                .committed_hash(),
            None
        );
    }
}
