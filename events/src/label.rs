//! Invoice labels: the caller's unique name for an invoice.
//!
//! Owns the label rules: any UTF-8 string of at most 128 bytes (compared as the unescaped text,
//! SPEC §9); a JSON integer label is its decimal text, so `1` and `"1"` are the same label while
//! `"01"` is another.

use core::fmt;

use serde::{Deserialize, Serialize};

/// The longest label, in bytes.
pub const MAX_LABEL_BYTES: usize = 128;

/// A validated invoice label. Decoding one (from a record or a checkpoint) validates it as
/// [`Label::new`] does: a stored label cannot bypass the rule.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Label(String);

/// Written as the plain string, borrowed: no copy on the writer's path (`into = "String"` would
/// clone every label it encodes).
impl Serialize for Label {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl TryFrom<String> for Label {
    type Error = LabelError;
    fn try_from(text: String) -> Result<Self, LabelError> {
        Label::new(text)
    }
}

/// Why a label was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    /// Longer than [`MAX_LABEL_BYTES`]; carries the label text.
    #[error("Label '{0}' over 128 bytes")]
    TooLong(String),
}

impl Label {
    /// Makes a label from its text.
    ///
    /// # Errors
    /// [`LabelError::TooLong`] above 128 bytes.
    pub fn new(text: impl Into<String>) -> Result<Self, LabelError> {
        let text = text.into();
        if text.len() > MAX_LABEL_BYTES {
            Err(LabelError::TooLong(text))
        } else {
            Ok(Label(text))
        }
    }

    /// The label text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_is_128_bytes() {
        assert!(Label::new("L".repeat(128)).is_ok());
        assert_eq!(
            Label::new("M".repeat(129)),
            Err(LabelError::TooLong("M".repeat(129)))
        );
        // 43 three-byte characters are 129 bytes.
        assert!(Label::new("€".repeat(43)).is_err());
        assert!(Label::new("").is_ok());
    }

    #[test]
    fn decoding_validates_and_encoding_is_the_plain_string() {
        let config = bincode::config::standard();
        let ok = Label::new("coffee").unwrap();
        let bytes = bincode::serde::encode_to_vec(&ok, config).unwrap();
        assert_eq!(bytes, bincode::serde::encode_to_vec("coffee", config).unwrap(), "same bytes as before");
        let (back, _): (Label, usize) = bincode::serde::decode_from_slice(&bytes, config).unwrap();
        assert_eq!(back, ok);
        let too_long = bincode::serde::encode_to_vec("x".repeat(129), config).unwrap();
        assert!(bincode::serde::decode_from_slice::<Label, _>(&too_long, config).is_err());
    }
}
