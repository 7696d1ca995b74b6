//! Invoice labels: the caller's unique name for an invoice.
//!
//! Owns the label rules: any UTF-8 string of at most 128 bytes for `invoice` and `holdinvoice`
//! (Core Lightning's `INVOICE_MAX_LABEL_LEN`), of at most 1,024 for `createinvoice` (where Core
//! Lightning sets no limit, and whose BOLT12 labels — offer id, payer id, counter — are 133
//! bytes); compared as the unescaped text; a JSON integer label is its decimal text, so `1` and `"1"` are the same label while
//! `"01"` is another.

use core::fmt;

use serde::{Deserialize, Serialize};

/// The longest label `invoice` takes, in bytes.
pub const MAX_LABEL_BYTES: usize = 128;
/// The longest label any invoice can have (`createinvoice`'s), in bytes.
pub const MAX_ANY_LABEL_BYTES: usize = 1024;

/// A validated invoice label. Decoding one (from a record or a checkpoint) validates it as
/// [`Label::any`] does: a stored label cannot bypass the rule.
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
        Label::any(text)
    }
}

/// Why a label was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    /// Longer than the limit (the second field); carries the label text.
    #[error("Label '{0}' over {1} bytes")]
    TooLong(String, usize),
}

impl Label {
    /// Makes a label from its text.
    ///
    /// # Errors
    /// [`LabelError::TooLong`] above 128 bytes.
    pub fn new(text: impl Into<String>) -> Result<Self, LabelError> {
        Self::within(text.into(), MAX_LABEL_BYTES)
    }

    /// Makes a label of any invoice, as `createinvoice` and lookups take it.
    ///
    /// # Errors
    /// [`LabelError::TooLong`] above [`MAX_ANY_LABEL_BYTES`].
    pub fn any(text: impl Into<String>) -> Result<Self, LabelError> {
        Self::within(text.into(), MAX_ANY_LABEL_BYTES)
    }

    fn within(text: String, max: usize) -> Result<Self, LabelError> {
        if text.len() > max {
            Err(LabelError::TooLong(text, max))
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
            Err(LabelError::TooLong("M".repeat(129), 128))
        );
        assert!(
            Label::any("M".repeat(1024)).is_ok(),
            "createinvoice's labels"
        );
        assert_eq!(
            Label::any("M".repeat(1025)),
            Err(LabelError::TooLong("M".repeat(1025), 1024))
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
        assert_eq!(
            bytes,
            bincode::serde::encode_to_vec("coffee", config).unwrap(),
            "same bytes as before"
        );
        let (back, _): (Label, usize) = bincode::serde::decode_from_slice(&bytes, config).unwrap();
        assert_eq!(back, ok);
        let bolt12 = bincode::serde::encode_to_vec("x".repeat(133), config).unwrap();
        assert!(
            bincode::serde::decode_from_slice::<Label, _>(&bolt12, config).is_ok(),
            "createinvoice's labels are stored"
        );
        let too_long = bincode::serde::encode_to_vec("x".repeat(1025), config).unwrap();
        assert!(bincode::serde::decode_from_slice::<Label, _>(&too_long, config).is_err());
    }
}
