//! JSON-RPC errors and the one table that maps every typed error to its code.
//!
//! Every error a client can see is built here. Codes are Core Lightning's
//! (`common/jsonrpc_errors.h`); `docs/ERRORS.md` lists them and a test checks that it lists every
//! code of [`ALL_CODES`].

use invoiced_actors::hold_keeper::HoldError;
use invoiced_actors::invoice_creator::CreateError;
use invoiced_actors::invoice_ledger::{DeleteError, SettleError};
use invoiced_actors::store::AppendError;
use invoiced_actors::waiters::{WaitAnyError, WaitInvoiceError};
use invoiced_events::LabelError;
use serde_json::{json, Value};

/// Malformed JSON.
pub const PARSE_ERROR: i64 = -32700;
/// Not a request object, or no method.
pub const INVALID_REQUEST: i64 = -32600;
/// Unknown method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Bad parameters.
pub const INVALID_PARAMS: i64 = -32602;
/// Generic failure (fallback addresses, storage, internal).
pub const LIGHTNINGD: i64 = -1;
/// Label exists.
pub const INVOICE_LABEL_ALREADY_EXISTS: i64 = 900;
/// Preimage (payment hash) used before.
pub const INVOICE_PREIMAGE_ALREADY_EXISTS: i64 = 901;
/// `exposeprivatechannels` named no usable channel.
pub const INVOICE_HINTS_GAVE_NO_ROUTES: i64 = 902;
/// The invoice expired while (or before) waiting.
pub const INVOICE_EXPIRED_DURING_WAIT: i64 = 903;
/// `waitanyinvoice` timed out.
pub const INVOICE_WAIT_TIMED_OUT: i64 = 904;
/// No such invoice.
pub const INVOICE_NOT_FOUND: i64 = 905;
/// The invoice's status is not the one expected.
pub const INVOICE_STATUS_UNEXPECTED: i64 = 906;
/// The description was removed already.
pub const INVOICE_NO_DESCRIPTION: i64 = 908;

/// Every code we return, with when: `docs/ERRORS.md` must list each (checked by a test).
#[cfg_attr(not(test), allow(dead_code))]
pub const ALL_CODES: &[(i64, &str)] = &[
    (PARSE_ERROR, "the request is not valid JSON (or not UTF-8); the connection is closed"),
    (INVALID_REQUEST, "the request is not a JSON object, or has no string `method`"),
    (METHOD_NOT_FOUND, "unknown method"),
    (INVALID_PARAMS, "a parameter is missing, unknown, repeated, of the wrong type or out of range; the message names it; a hold invoice transition its state refuses (`Holdinvoice is in wrong state: `STATE``) or an unknown hold invoice (`payment_hash `H` not found`), in holdinvoice's words"),
    (LIGHTNINGD, "fallback address not valid or of another network; the event log could not write (or the replica did not take the batch, or this process is a standby or was deposed); an internal actor failed; `promote` refused"),
    (INVOICE_LABEL_ALREADY_EXISTS, "`invoice`: an invoice with this label exists (`Duplicate label 'L'`)"),
    (INVOICE_PREIMAGE_ALREADY_EXISTS, "`invoice`: the preimage's payment hash was used before, even by a deleted invoice"),
    (INVOICE_HINTS_GAVE_NO_ROUTES, "`invoice`: none of the channels named in `exposeprivatechannels` is usable"),
    (INVOICE_EXPIRED_DURING_WAIT, "`waitinvoice`: the invoice expired (before or while waiting), with the invoice as `data`"),
    (INVOICE_WAIT_TIMED_OUT, "`waitanyinvoice`: no payment before the timeout"),
    (INVOICE_NOT_FOUND, "`delinvoice`, `settleinvoice`: no invoice with that label or payment hash"),
    (INVOICE_STATUS_UNEXPECTED, "`delinvoice`: the status is not the one given; `settleinvoice`: the invoice is paid or expired; `data` has both"),
    (INVOICE_NO_DESCRIPTION, "`delinvoice … desconly`: the description was removed already"),
];

/// A JSON-RPC error object.
#[derive(Clone, Debug, PartialEq)]
pub struct RpcError {
    /// The code.
    pub code: i64,
    /// The message.
    pub message: String,
    /// Extra data, if any.
    pub data: Option<Value>,
}

/// The most bytes of a client's value echoed back in a message.
const MAX_TOKEN_ECHO: usize = 200;

/// A client's value as an error message may show it: whole up to [`MAX_TOKEN_ECHO`] bytes,
/// else its start (cut at a character boundary) followed by `...`. Every message that quotes
/// what a client sent quotes it through here, so no answer echoes a megabyte.
fn echo(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= MAX_TOKEN_ECHO {
        return text.into();
    }
    let mut end = MAX_TOKEN_ECHO;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end]).into()
}

/// What failed inside the daemon. The client is told which, in a stable message; the detail
/// (a RocksDB or I/O error, a mailbox error) goes to the daemon's log, never into an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Internal {
    /// An actor did not answer.
    Actor,
    /// The live projection or a read of the log failed.
    Invoices,
    /// A listing's worker failed.
    Listing,
    /// A result could not be encoded.
    Encode,
    /// A rule the daemon keeps was found broken (a bug).
    Invariant,
}

impl Internal {
    fn message(self) -> &'static str {
        match self {
            Internal::Actor => "internal actor unavailable",
            Internal::Invoices => "invoices unavailable",
            Internal::Listing => "listing failed",
            Internal::Encode => "cannot encode the result",
            Internal::Invariant => "internal error",
        }
    }
}

/// The client's message for a failed append (the writer logged its cause already).
fn append_message(e: &AppendError) -> String {
    match e {
        AppendError::Rejected(r) => r.to_string(),
        AppendError::DiskFull => {
            "event log write failed: disk nearly full; nothing was stored".into()
        }
        AppendError::Write(_) => "event log write failed; nothing was stored".into(),
        AppendError::WriterGone => "event log unavailable: the daemon is stopping".into(),
        AppendError::Replica(why) => format!("event log write failed: replication: {why}"),
        AppendError::Standby => e.to_string(),
    }
}

impl RpcError {
    /// The one constructor: every error an answer can carry is made in this file.
    fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// -32700: the request is not JSON.
    pub fn parse_error(message: impl Into<String>) -> Self {
        Self::new(PARSE_ERROR, message)
    }

    /// -32600: not a request object.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(INVALID_REQUEST, message)
    }

    /// -32600: over [`super::framing::MAX_REQUEST_BYTES`].
    pub fn request_too_large() -> Self {
        Self::invalid_request(format!(
            "Request over {} bytes",
            super::framing::MAX_REQUEST_BYTES
        ))
    }

    /// -32601 `Unknown command 'NAME'`, as Core Lightning words an unknown method.
    pub fn unknown_method(name: &str) -> Self {
        Self::new(
            METHOD_NOT_FOUND,
            format!("Unknown command '{}'", echo(name)),
        )
    }

    /// -32601 `Unknown command NAME`, as Core Lightning's `help` words it.
    pub fn unknown_help_command(name: &str) -> Self {
        Self::new(METHOD_NOT_FOUND, format!("Unknown command {}", echo(name)))
    }

    /// -32602: a parameter name the method does not take, in Core Lightning's words.
    pub fn unknown_param(key: &str) -> Self {
        Self::invalid_params(format!(
            "unknown parameter: {}, this may be caused by a failure to autodetect key=value-style parameters. Please try using the -k flag and explicit key=value pairs of parameters.",
            echo(key)
        ))
    }

    /// -32602: a parameter given twice by name.
    pub fn duplicate_param(key: &str) -> Self {
        Self::invalid_params(format!("duplicate json names: {}", echo(key)))
    }

    /// -32602: a label over [`invoiced_events::label::MAX_LABEL_BYTES`], in Core Lightning's words.
    pub fn label(e: &LabelError) -> Self {
        let LabelError::TooLong(text, max) = e;
        Self::invalid_params(format!("Label '{}' over {max} bytes", echo(text)))
    }

    /// -1: the connection limit.
    pub fn too_many_connections(max: usize) -> Self {
        Self::new(LIGHTNINGD, format!("Too many connections (at most {max})"))
    }

    /// 905 `Unknown invoice`.
    pub fn unknown_invoice() -> Self {
        Self::new(INVOICE_NOT_FOUND, "Unknown invoice")
    }

    /// -1: replication refused (`promote` on a process that is not a standby, or that failed).
    pub fn replication(message: impl core::fmt::Display) -> Self {
        Self::new(LIGHTNINGD, format!("promote: {message}"))
    }

    /// -1 `Label not found` (`waitinvoice`).
    pub fn label_not_found() -> Self {
        Self::new(LIGHTNINGD, "Label not found")
    }

    /// -1: an internal failure, its detail logged.
    pub fn internal(what: Internal, detail: impl core::fmt::Display) -> Self {
        tracing::error!("{}: {detail}", what.message());
        Self::new(LIGHTNINGD, what.message())
    }

    /// -1 or the rejection's own text: an append that did not happen.
    pub fn append(e: &AppendError) -> Self {
        if !matches!(e, AppendError::Rejected(_)) {
            tracing::error!("append failed: {e}");
        }
        Self::new(LIGHTNINGD, append_message(e))
    }

    /// -32602 `Unparsable invoice 'S': WHY`, as `createinvoice` words it.
    pub fn unparsable_invoice(invstring: &str, why: &str) -> Self {
        Self::invalid_params(format!("Unparsable invoice '{}': {why}", echo(invstring)))
    }

    /// The same error with `data` (Core Lightning's 900 carries the existing invoice).
    #[must_use]
    pub fn with_data(mut self, data: Option<Value>) -> Self {
        self.data = data;
        self
    }

    /// -32602 with a plain message.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(INVALID_PARAMS, message)
    }

    /// -32602 `NAME: REASON: invalid token 'TOKEN'`, Core Lightning's badparam form.
    pub fn bad_param(name: &str, reason: &str, token: &str) -> Self {
        Self::invalid_params(format!("{name}: {reason}: invalid token '{}'", echo(token)))
    }

    /// The error object as JSON.
    pub fn to_json(&self) -> Value {
        let mut v = json!({ "code": self.code, "message": self.message });
        if let Some(d) = &self.data {
            v["data"] = d.clone();
        }
        v
    }
}

/// A typed error that knows its JSON-RPC code.
pub trait RpcCode {
    /// The code on the wire.
    fn rpc_code(&self) -> i64;
}

impl RpcCode for CreateError {
    fn rpc_code(&self) -> i64 {
        match self {
            CreateError::Fallback(_) => LIGHTNINGD,
            CreateError::NoSuitableHints(_) => INVOICE_HINTS_GAVE_NO_ROUTES,
            CreateError::PreimageUsed => INVOICE_PREIMAGE_ALREADY_EXISTS,
            CreateError::DuplicateLabel(_) => INVOICE_LABEL_ALREADY_EXISTS,
            CreateError::Encode(_) | CreateError::Bolt12(_) => LIGHTNINGD,
            CreateError::Store(_)
            | CreateError::Mailbox(_)
            | CreateError::Unavailable
            | CreateError::Invariant(_) => LIGHTNINGD,
        }
    }
}

impl From<CreateError> for RpcError {
    fn from(e: CreateError) -> Self {
        match e {
            CreateError::Store(a) => RpcError::append(&a),
            CreateError::Mailbox(m) => RpcError::internal(Internal::Actor, m),
            CreateError::Unavailable => {
                RpcError::internal(Internal::Invoices, "projection lock poisoned")
            }
            CreateError::Invariant(r) => RpcError::internal(Internal::Invariant, r),
            e => RpcError::new(e.rpc_code(), e.to_string()),
        }
    }
}

impl RpcCode for SettleError {
    fn rpc_code(&self) -> i64 {
        match self {
            SettleError::UnknownInvoice => INVOICE_NOT_FOUND,
            SettleError::NotUnpaid(_) => INVOICE_STATUS_UNEXPECTED,
            SettleError::WrongSecret
            | SettleError::Underpaid { .. }
            | SettleError::Overpaid { .. }
            | SettleError::IsHold
            | SettleError::ConflictingPart(_)
            | SettleError::PartsSum { .. } => INVALID_PARAMS,
            SettleError::Store(_) | SettleError::Internal(_) => LIGHTNINGD,
        }
    }
}

impl From<SettleError> for RpcError {
    fn from(e: SettleError) -> Self {
        match e {
            SettleError::Store(a) => RpcError::append(&a),
            SettleError::Internal(detail) => RpcError::internal(Internal::Invoices, detail),
            SettleError::NotUnpaid(s) => {
                let mut err = RpcError::new(
                    INVOICE_STATUS_UNEXPECTED,
                    SettleError::NotUnpaid(s).to_string(),
                );
                err.data =
                    Some(json!({ "current_status": s.as_str(), "expected_status": "unpaid" }));
                err
            }
            e => RpcError::new(e.rpc_code(), e.to_string()),
        }
    }
}

impl RpcCode for HoldError {
    fn rpc_code(&self) -> i64 {
        match self {
            HoldError::Store(_) | HoldError::Internal(_) => LIGHTNINGD,
            _ => INVALID_PARAMS,
        }
    }
}

impl From<HoldError> for RpcError {
    fn from(e: HoldError) -> Self {
        match e {
            HoldError::Store(a) => RpcError::append(&a),
            HoldError::Internal(detail) => RpcError::internal(Internal::Invoices, detail),
            e => RpcError::new(e.rpc_code(), e.to_string()),
        }
    }
}

impl RpcCode for DeleteError {
    fn rpc_code(&self) -> i64 {
        match self {
            DeleteError::UnknownInvoice => INVOICE_NOT_FOUND,
            DeleteError::StatusMismatch { .. } => INVOICE_STATUS_UNEXPECTED,
            DeleteError::DescriptionAlreadyRemoved => INVOICE_NO_DESCRIPTION,
            DeleteError::Store(_) | DeleteError::Internal(_) => LIGHTNINGD,
        }
    }
}

impl From<DeleteError> for RpcError {
    fn from(e: DeleteError) -> Self {
        match e {
            DeleteError::Store(a) => RpcError::append(&a),
            DeleteError::Internal(detail) => RpcError::internal(Internal::Invoices, detail),
            e => {
                let mut err = RpcError::new(e.rpc_code(), e.to_string());
                if let DeleteError::StatusMismatch { actual, expected } = &e {
                    err.data =
                        Some(json!({ "current_status": actual, "expected_status": expected }));
                }
                err
            }
        }
    }
}

impl From<AppendError> for RpcError {
    fn from(e: AppendError) -> Self {
        RpcError::append(&e)
    }
}

impl From<actix::MailboxError> for RpcError {
    fn from(e: actix::MailboxError) -> Self {
        RpcError::internal(Internal::Actor, e)
    }
}

impl RpcCode for WaitAnyError {
    fn rpc_code(&self) -> i64 {
        match self {
            WaitAnyError::Timeout => INVOICE_WAIT_TIMED_OUT,
            WaitAnyError::Internal => LIGHTNINGD,
        }
    }
}

impl From<WaitAnyError> for RpcError {
    fn from(e: WaitAnyError) -> Self {
        let message = match e {
            WaitAnyError::Timeout => "Timed out while waiting for invoice to be paid",
            WaitAnyError::Internal => "Daemon is shutting down",
        };
        RpcError::new(e.rpc_code(), message)
    }
}

impl RpcCode for WaitInvoiceError {
    fn rpc_code(&self) -> i64 {
        match self {
            WaitInvoiceError::Expired(_) => INVOICE_EXPIRED_DURING_WAIT,
            WaitInvoiceError::LabelNotFound
            | WaitInvoiceError::Deleted
            | WaitInvoiceError::Internal => LIGHTNINGD,
        }
    }
}

impl RpcError {
    /// The error of a `waitinvoice`; 903 carries `expired`, the invoice as listed (rendered by
    /// the caller, which holds what reveals a preimage).
    pub fn from_wait(e: &WaitInvoiceError, expired: Option<Value>) -> RpcError {
        let code = e.rpc_code();
        match e {
            WaitInvoiceError::LabelNotFound => RpcError::label_not_found(),
            WaitInvoiceError::Deleted => RpcError::new(code, "Invoice deleted during wait"),
            WaitInvoiceError::Internal => RpcError::new(code, "Daemon is shutting down"),
            WaitInvoiceError::Expired(_) => RpcError {
                code,
                message: "invoice expired during wait".into(),
                data: expired,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_list_exactly_the_codes_of_the_table() {
        let doc = include_str!("../../docs/ERRORS.md");
        for (code, _) in ALL_CODES {
            assert!(
                doc.contains(&format!("| {code} |")),
                "docs/ERRORS.md misses code {code}"
            );
        }
        let documented: Vec<i64> = doc
            .lines()
            .filter_map(|l| {
                l.strip_prefix("| ")?
                    .split(" |")
                    .next()?
                    .trim()
                    .parse()
                    .ok()
            })
            .collect();
        assert_eq!(
            documented.len(),
            ALL_CODES.len(),
            "docs/ERRORS.md lists {documented:?}"
        );
        for code in documented {
            assert!(
                ALL_CODES.iter().any(|(c, _)| *c == code),
                "docs/ERRORS.md lists {code}, which no error has"
            );
        }
    }

    #[test]
    fn every_echo_of_what_a_client_sent_is_cut() {
        assert_eq!(echo("short"), "short");
        assert_eq!(echo(&"x".repeat(200)), "x".repeat(200));
        assert_eq!(echo(&"x".repeat(201)), format!("{}...", "x".repeat(200)));
        // Cut before a character that would straddle the limit (é is two bytes).
        assert_eq!(
            echo(&format!("x{}", "é".repeat(150))),
            format!("x{}...", "é".repeat(99))
        );
        let huge = "€".repeat(400_000);
        let label = LabelError::TooLong(huge.clone(), 128);
        for e in [
            RpcError::unknown_method(&huge),
            RpcError::unknown_help_command(&huge),
            RpcError::unknown_param(&huge),
            RpcError::duplicate_param(&huge),
            RpcError::label(&label),
            RpcError::bad_param("label", "should be a string", &huge),
        ] {
            assert!(e.message.len() < 600, "{}...", &e.message[..100]);
            assert!(
                e.message.contains(&format!("{}...", "€".repeat(66))),
                "{}",
                e.message
            );
        }
        assert_eq!(
            RpcError::label(&LabelError::TooLong("L".repeat(129), 128)).message,
            format!("Label '{}' over 128 bytes", "L".repeat(129))
        );
    }

    #[test]
    fn internal_failures_never_show_their_detail() {
        let e = RpcError::append(&AppendError::Write(
            "IO error: No space left on device: /secret/path/000123.log".into(),
        ));
        assert_eq!(
            (e.code, e.message.as_str()),
            (-1, "event log write failed; nothing was stored")
        );
        let e = RpcError::internal(
            Internal::Invoices,
            "database: Corruption: block checksum mismatch",
        );
        assert_eq!(e.message, "invoices unavailable");
        assert!(RpcError::append(&AppendError::DiskFull)
            .message
            .contains("disk nearly full"));
    }

    #[test]
    fn long_tokens_are_cut_on_a_char_boundary() {
        let e = RpcError::bad_param("label", "x", &"é".repeat(300));
        assert!(e.message.ends_with("...'"));
    }
}
