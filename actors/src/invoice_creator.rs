//! InvoiceCreator: runs one `invoice` (or BOLT12 `createinvoice`) request through its peers and
//! commits it.
//!
//! The steps, in Core Lightning's order of errors: fallbacks (-1), route hints (902), build and
//! sign, preimage and label claims (901 before 900), append, answer. A BOLT12 invoice, checked
//! by the caller, is completed and signed by the KeySigner, then claimed and appended the same
//! way. The claim is released on
//! every path once it was taken, so a failed request leaves nothing behind: nothing is appended
//! unless the whole invoice is, and the answer comes only after the event is durable.
//!
//! There is one creator on each RPC arbiter, with its own KeySigner on the same thread. The
//! channel view and the label authority are shared and called in place; the log writer is the
//! only other thread an invoice visits.

use std::sync::Arc;

use actix::prelude::*;
use invoiced_events::{
    Description, ExposePrivateChannels, InvoiceBody, InvoiceRecord, Label, Msat, Network,
    NewInvoice, PaymentHash, PaymentPreimage, PaymentSecret, Proposal, Rejection,
};

use crate::channel_monitor::{ChannelView, NoSuitableHints};
use crate::clock::Clock;
use crate::key_signer::{PreimageSource, SignBolt12, SignNewInvoice};
use crate::label_registry::{LabelRegistry, ReserveError};
use crate::policy::bolt11::{
    parse_fallback, Cltv, DraftError, Expiry, FallbackError, InvoiceAmount, InvoiceDraft,
};
use crate::store::{AppendError, InvoiceReader, LogHandle};

/// A validated `invoice` request.
#[derive(Clone, Debug)]
pub struct InvoiceRequest {
    /// What to ask for (one an invoice can carry).
    pub amount: InvoiceAmount,
    /// The caller's label; `None` (a hold invoice given none) for `hold-<payment_hash>`,
    /// named once the hash is drawn.
    pub label: Option<Label>,
    /// The description.
    pub description: Description,
    /// Relative expiry.
    pub expiry: Expiry,
    /// Fallback addresses as given; checked here.
    pub fallbacks: Vec<String>,
    /// Where the preimage comes from.
    pub preimage: PreimageSource,
    /// Route-hint policy.
    pub expose: ExposePrivateChannels,
    /// `min_final_cltv_expiry`.
    pub cltv: Cltv,
    /// Our extension: an existing invoice with this label and the same parameters is returned
    /// instead of refused (a safe retry).
    pub idempotent: bool,
    /// A hold invoice: its payments are held until settled or canceled.
    pub hold: bool,
}

impl InvoiceRequest {
    /// Whether `c` is what this request would create (for `idempotent`). Route hints are the
    /// node's choice, not a parameter, so `exposeprivatechannels` is not compared.
    fn matches(&self, r: &InvoiceRecord) -> bool {
        let c = &r.created;
        r.hold.is_some() == self.hold
            && c.body.amount_msat == self.amount.msat()
            && c.body.description == self.description.text()
            && c.body.deschashonly == self.description.hash_only()
            && r.given_description_hash == self.description.given_hash()
            && c.body.expiry == self.expiry.secs()
            && c.body.cltv == self.cltv.blocks()
            && c.body.fallbacks == self.fallbacks
            && match self.preimage {
                PreimageSource::Generate => true,
                PreimageSource::Supplied(p) => PaymentHash::of(&p) == c.body.payment_hash,
                PreimageSource::Withheld(h) => h == c.body.payment_hash,
            }
    }
}

/// A `createinvoice` of a BOLT12 invoice, its fields checked (see `rpc/createinvoice.rs`).
#[derive(Clone, Debug)]
pub struct Bolt12Request {
    /// The unsigned invoice.
    pub invoice: crate::policy::bolt12::Invoice,
    /// The label (the offers plugin's `OFFERID-PAYERID-COUNTER`).
    pub label: Label,
    /// The preimage, whose hash is the invoice's `invoice_payment_hash`.
    pub preimage: PaymentPreimage,
    /// Its `invoice_amount`.
    pub amount_msat: Msat,

    /// `offer_description`, or empty.
    pub description: String,
    /// `invoice_created_at` (now if absent).
    pub created_at: Option<u64>,
    /// `invoice_relative_expiry`, or BOLT12's default.
    pub expiry: u64,
    /// The node's offer it answers.
    pub local_offer_id: Option<invoiced_events::Hash32>,
    /// The stub path's CLTV delta (Core Lightning's `cltv-final`).
    pub cltv: Cltv,
}

/// Why an invoice was not created. Nothing was appended in any case.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// A fallback address was refused (-1).
    #[error(transparent)]
    Fallback(#[from] FallbackError),
    /// `exposeprivatechannels` named no usable channel (902).
    #[error(transparent)]
    NoSuitableHints(#[from] NoSuitableHints),
    /// The payment hash was used before (901).
    #[error("preimage already used")]
    PreimageUsed,
    /// The label exists (900).
    #[error("Duplicate label '{0}'")]
    DuplicateLabel(Label),
    /// The invoice could not be encoded (-1).
    #[error("cannot encode invoice: {0}")]
    Encode(#[from] DraftError),
    /// The BOLT12 invoice could not be completed (-1).
    #[error("cannot complete invoice: {0}")]
    Bolt12(#[from] crate::policy::bolt12::Bolt12Error),
    /// The log could not record it (-1).
    #[error(transparent)]
    Store(#[from] AppendError),
    /// An actor did not answer (-1).
    #[error("internal actor unavailable: {0}")]
    Mailbox(#[from] MailboxError),
    /// The projection is unavailable (-1).
    #[error("invoice projection unavailable")]
    Unavailable,
    /// The log refused at commit what the LabelRegistry had claimed: a bug, never the caller's
    /// error (-1, logged).
    #[error("uniqueness broken at commit despite the claim: {0}")]
    Invariant(Rejection),
}

impl From<ReserveError> for CreateError {
    fn from(e: ReserveError) -> Self {
        match e {
            ReserveError::PreimageUsed => CreateError::PreimageUsed,
            ReserveError::DuplicateLabel(l) => CreateError::DuplicateLabel(l),
            ReserveError::Unavailable => CreateError::Unavailable,
        }
    }
}

/// The creator's peers. The signer is a recipient of its message, so that a test can stand in
/// for it and see what it is asked; the channel view and the label authority are the shared
/// ones, which a test sets up as it needs (channels known, a label already claimed).
#[derive(Clone, Debug)]
pub struct CreatorPeers {
    /// Route hints.
    pub hints: ChannelView,
    /// Preimage, layout, signature (the KeySigner on the creator's arbiter).
    pub signer: Recipient<SignNewInvoice>,
    /// A BOLT12 invoice's path and signature (the same KeySigner).
    pub bolt12: Recipient<SignBolt12>,
    /// Claims on labels and payment hashes.
    pub claims: LabelRegistry,
}

/// The actor.
pub struct InvoiceCreator {
    network: Network,
    invoices: InvoiceReader,
    peers: CreatorPeers,
    log: LogHandle,
    clock: Arc<dyn Clock>,
}

impl InvoiceCreator {
    /// Wires the creator to its peers.
    pub fn new(
        network: Network,
        invoices: InvoiceReader,
        peers: CreatorPeers,
        log: LogHandle,
        clock: Arc<dyn Clock>,
    ) -> Self {
        InvoiceCreator {
            network,
            invoices,
            peers,
            log,
            clock,
        }
    }
}

impl Actor for InvoiceCreator {
    type Context = Context<Self>;
}

/// Command: create an invoice.
#[derive(Message)]
#[rtype(result = "Result<InvoiceRecord, CreateError>")]
pub struct CreateInvoice(pub InvoiceRequest);

impl Handler<CreateInvoice> for InvoiceCreator {
    type Result = ResponseFuture<Result<InvoiceRecord, CreateError>>;

    fn handle(&mut self, CreateInvoice(req): CreateInvoice, _: &mut Context<Self>) -> Self::Result {
        if let Some(answer) = self.idempotent_answer(&req) {
            return Box::pin(async move { answer });
        }
        let network = self.network;
        let (peers, log, clock) = (self.peers.clone(), self.log.clone(), self.clock.clone());
        let fallbacks: Result<Vec<_>, _> = req
            .fallbacks
            .iter()
            .map(|f| parse_fallback(f, network))
            .collect();
        Box::pin(async move {
            let fallbacks = fallbacks?;
            let choice = peers.hints.choose(req.amount.msat(), &req.expose)?;
            let created_at = clock.now_secs();
            let draft = InvoiceDraft {
                network,
                amount: req.amount,
                timestamp: created_at,
                description: req.description.clone(),
                expiry: req.expiry,
                cltv: req.cltv,
                fallbacks,
                route_hints: choice.hints.clone(),
            };
            // Core Lightning also signs first and checks the preimage and label after.
            let signed = peers
                .signer
                .send(SignNewInvoice {
                    preimage: req.preimage,
                    draft,
                })
                .await??;
            let keys = signed.keys;
            // Held until the answer is made, whatever it is; released when dropped.
            let label = match req.label {
                Some(l) => l,
                None => Label::new(format!("hold-{}", keys.payment_hash))
                    .map_err(|_| CreateError::Unavailable)?,
            };
            let _claim = peers.claims.reserve(&label, &keys.payment_hash)?;
            let body = InvoiceBody {
                label,
                bolt11: signed.bolt11,
                payment_hash: keys.payment_hash,
                payment_secret: keys.payment_secret,
                preimage: keys.seal,
                amount_msat: req.amount.msat(),
                description: req.description.text().to_owned(),
                deschashonly: req.description.hash_only(),
                created_at,
                expiry: req.expiry.secs(),
                expires_at: created_at.saturating_add(req.expiry.secs()),
                cltv: req.cltv.blocks(),
                fallbacks: req.fallbacks,
                route_hints: choice.hints,
                warnings: choice.warnings,
            };
            let kind = match (req.description.given_hash(), req.hold) {
                (Some(description_hash), hold) => invoiced_events::InvoiceKind::Hashed {
                    hold,
                    description_hash,
                },
                (None, true) => invoiced_events::InvoiceKind::Hold,
                (None, false) => invoiced_events::InvoiceKind::Bolt11,
            };
            append(&log, NewInvoice { body, kind }).await
        })
    }
}

impl InvoiceCreator {
    /// For an `idempotent` request whose label is taken: the invoice, if it is what the request
    /// would create, else 900 (`None`: the label is free, or the request is not idempotent).
    fn idempotent_answer(
        &self,
        req: &InvoiceRequest,
    ) -> Option<Result<InvoiceRecord, CreateError>> {
        let label = req.label.as_ref().filter(|_| req.idempotent)?;
        let existing = self
            .invoices
            .pick(|s| s.invoices.by_label(label).cloned())
            .and_then(|entry| entry.map(|e| self.invoices.invoice(e)).transpose());
        match existing {
            Err(e) => {
                tracing::error!("idempotent lookup of '{label}': {e}");
                Some(Err(CreateError::Unavailable))
            }
            Ok(None) => None,
            Ok(Some(c)) if req.matches(&c) => Some(Ok(c)),
            Ok(Some(_)) => Some(Err(CreateError::DuplicateLabel(label.clone()))),
        }
    }
}

/// Command: issue a BOLT12 invoice.
#[derive(Message)]
#[rtype(result = "Result<InvoiceRecord, CreateError>")]
pub struct CreateBolt12(pub Bolt12Request);

impl Handler<CreateBolt12> for InvoiceCreator {
    type Result = ResponseFuture<Result<InvoiceRecord, CreateError>>;

    fn handle(&mut self, CreateBolt12(req): CreateBolt12, _: &mut Context<Self>) -> Self::Result {
        let (peers, log, clock) = (self.peers.clone(), self.log.clone(), self.clock.clone());
        Box::pin(async move {
            let cltv_expiry_delta = u16::try_from(req.cltv.blocks()).unwrap_or(u16::MAX);
            // What a payment must leave: the least of the paths' deltas, or the stub path's.
            let cltv = req.invoice.min_path_cltv().unwrap_or(cltv_expiry_delta);
            let signed = peers
                .bolt12
                .send(SignBolt12 {
                    invoice: req.invoice,
                    preimage: req.preimage,
                    cltv_expiry_delta,
                })
                .await??;
            let payment_hash = PaymentHash::of(&req.preimage);
            let now = clock.now_secs();
            let _claim = peers
                .claims
                .reserve_label_first(&req.label, &payment_hash)?;
            let body = InvoiceBody {
                label: req.label,
                bolt11: signed.invoice,
                payment_hash,
                payment_secret: PaymentSecret(signed.path_id),
                preimage: signed.seal,
                amount_msat: Some(req.amount_msat),
                description: req.description,
                deschashonly: false,
                created_at: req.created_at.unwrap_or(now),
                expiry: req.expiry,
                // Core Lightning counts the expiry from when it stores the invoice.
                expires_at: now.saturating_add(req.expiry),
                cltv: u32::from(cltv),
                fallbacks: vec![],
                route_hints: vec![],
                warnings: vec![],
            };
            let invoice = NewInvoice {
                body,
                kind: invoiced_events::InvoiceKind::Bolt12 {
                    local_offer_id: req.local_offer_id,
                },
            };
            append(&log, invoice).await
        })
    }
}

/// Appends a new invoice whose label and hash are claimed, and answers from the shared record.
async fn append(log: &LogHandle, invoice: NewInvoice) -> Result<InvoiceRecord, CreateError> {
    // The claim decided uniqueness; a refusal here is the writer's assertion firing.
    let committed = log
        .append(Proposal::Invoice(invoice))
        .await
        .map_err(|e| match e {
            AppendError::Rejected(r @ (Rejection::DuplicateLabel(_) | Rejection::PreimageUsed)) => {
                CreateError::Invariant(r)
            }
            other => CreateError::Store(other),
        })?;
    // The answer is the invoice as committed, taken from the shared record here, not copied by
    // the writer.
    committed.invoice.clone().ok_or(CreateError::Unavailable)
}
