//! No second message after a NATS restart.
//!
//! A nats-server killed right after the senders' consumer handed out a
//! batch may not have stored that handout: after its restart it hands the
//! same items out again, as first deliveries, while the sender that pulled
//! them before the crash still holds them (waiting for a rate slot, or in
//! the middle of a Telegram call). Both copies look new, and an outcome
//! lookup cannot tell them apart while both are in flight.
//!
//! So around a reconnect, sends claim their recipient first, with a
//! create-only key `<campaign>.<user>` in the claims bucket: only one copy
//! wins. The claim is the last thing before the call (the outcome lookup
//! comes before it), so a claim means "maybe sent". A claim whose answer
//! was lost with the connection was not used: once NATS is back, the
//! sender that made it takes it back, and fences the key if no claim holds
//! it yet (async-nats sends what it buffered while NATS was away once it is
//! back, so that create may still land). A send given back to be tried
//! again gives back its claim the same way. An item is *suspect*, and
//! claims, when the connection to NATS was re-established since it was
//! received, or it was received within
//! [`SUSPECT_WINDOW`] of a reconnect (that covers the re-handed copies and
//! the redeliveries of everything pending at the crash). A call already
//! under way when NATS came back is claimed at once on its behalf, so its
//! twin sees the claim; and suspect items wait [`SETTLE`] after the
//! reconnect, time for every replica to reconnect and claim its calls.
//! Everything else, nearly every send, takes no extra round trip.
//!
//! The connection's epoch is async-nats' count of successful connects.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_nats::jetstream::kv::{self, CreateErrorKind, Operation};
use courier_core::topology::{SEND_TIMEOUT, SENDER_ACK_WAIT};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// After a reconnect, how long suspect sends wait for every replica to
/// reconnect and claim the calls it had under way.
pub const SETTLE: Duration = Duration::from_secs(2);
/// After a reconnect, how long every received item is suspect: the items
/// pending at the crash come back after the ack wait (plus the server's
/// jitter of up to 1.5 s), after the settling.
pub const SUSPECT_WINDOW: Duration = SENDER_ACK_WAIT
    .saturating_add(SETTLE)
    .saturating_add(Duration::from_secs(5));
/// How soon an item whose recipient another copy claimed looks again.
pub const CLAIM_RECHECK: Duration = Duration::from_secs(5);
/// A claim this old without an outcome: its holder has finished or died
/// (a call ends within the send timeout; an outcome is recorded within
/// the ack wait). The message may have gone out; it is not sent again.
pub const CLAIM_HORIZON: Duration = SEND_TIMEOUT.saturating_add(SENDER_ACK_WAIT);
/// How often the connection's epoch is looked at when neither an item nor
/// async-nats' word of a connect comes (that word is the prompt way; this
/// is in case it got lost): well inside [`SETTLE`].
const WATCH_INTERVAL: Duration = Duration::from_millis(250);
/// How long a sender tries to take back a claim whose answer it lost:
/// well before the other copy would give up and record it uncertain.
const TAKE_BACK_FOR: Duration = Duration::from_secs(20);
const _: () = assert!(TAKE_BACK_FOR.as_secs() < CLAIM_HORIZON.as_secs());

/// When an item was received, in connection epochs.
#[derive(Debug, Clone, Copy)]
pub struct Receipt {
    epoch: u64,
    at: Instant,
}

/// What a send must do just before it calls Telegram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeforeCall {
    /// Not suspect: send.
    Send,
    /// Suspect: claim the recipient first.
    Claim,
    /// Suspect, and replicas may still be claiming their calls: come back.
    Settle(Duration),
}

/// Decides [`BeforeCall`] for an item received at `receipt`, now that the
/// connection is in `epoch`, last re-established at `reconnected_at`.
pub fn before_call(
    receipt: Receipt,
    epoch: u64,
    reconnected_at: Option<Instant>,
    now: Instant,
) -> BeforeCall {
    let Some(reconnected_at) = reconnected_at else {
        return BeforeCall::Send;
    };
    let reconnected_since_receipt = epoch != receipt.epoch;
    let received_soon_after = receipt.at.saturating_duration_since(reconnected_at) < SUSPECT_WINDOW
        && receipt.epoch == epoch;
    if !reconnected_since_receipt && !received_soon_after {
        return BeforeCall::Send;
    }
    let settled_at = reconnected_at + SETTLE;
    match settled_at.checked_duration_since(now) {
        Some(wait) if !wait.is_zero() => BeforeCall::Settle(wait),
        _ => BeforeCall::Claim,
    }
}

/// What an item with no outcome yet does when another copy holds its
/// recipient's claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimedElsewhere {
    /// The other copy may still be sending or recording: look again later
    /// (then its outcome makes this one a duplicate).
    Recheck(Duration),
    /// The other copy claimed long ago and recorded nothing: the message
    /// may have gone out, so it is not sent again; record it as uncertain.
    Uncertain,
}

pub fn claimed_elsewhere(claim_age: Duration) -> ClaimedElsewhere {
    if claim_age >= CLAIM_HORIZON {
        ClaimedElsewhere::Uncertain
    } else {
        ClaimedElsewhere::Recheck(CLAIM_RECHECK.min(CLAIM_HORIZON - claim_age))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("claiming a recipient in NATS KV")]
    Create(#[source] kv::CreateError),
    #[error("reading a recipient's claim in NATS KV")]
    Read(#[source] kv::EntryError),
    #[error("taking back a recipient's claim in NATS KV")]
    TakeBack(#[source] kv::DeleteError),
}

/// How a claim attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This copy holds the recipient.
    Won,
    /// Another copy does, since `age` ago.
    Lost { age: Duration },
}

/// How a claim was taken back ([`take_back_once`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakenBack {
    /// It held the recipient: deleted.
    Deleted,
    /// None held it: fenced off, should it still be on its way.
    Fenced,
    /// Another copy holds the recipient: no claim of ours can land.
    HeldByAnotherCopy,
}

/// The claim holding a key, if any: a delete marker (a claim taken back, or
/// a fence) holds nothing.
fn holding(entry: Option<&kv::Entry>) -> Option<&kv::Entry> {
    entry.filter(|entry| entry.operation == Operation::Put)
}

/// Whether `claim` was made with `token` (by this send).
fn made_with(claim: &kv::Entry, token: &str) -> bool {
    claim.value == token.as_bytes()
}

/// Takes back the claim on `key` made with `token`: deletes it if it holds
/// the recipient. If no claim does, its create may still be on its way
/// (async-nats sends what it buffered once NATS is back): a delete marker
/// written over the revision found (0 for none) fences it off, since a
/// create expects the key as it was then.
pub async fn take_back_once(
    claims: &kv::Store,
    key: &str,
    token: &str,
) -> Result<TakenBack, ClaimError> {
    let entry = claims.entry(key).await.map_err(ClaimError::Read)?;
    let held = holding(entry.as_ref());
    if held.is_some_and(|claim| !made_with(claim, token)) {
        return Ok(TakenBack::HeldByAnotherCopy);
    }
    let revision = entry.as_ref().map_or(0, |entry| entry.revision);
    claims
        .delete_expect_revision(key, Some(revision))
        .await
        .map_err(ClaimError::TakeBack)?;
    Ok(match held {
        Some(_) => TakenBack::Deleted,
        None => TakenBack::Fenced,
    })
}

/// A send between its last check and its recorded outcome.
struct InCall {
    key: String,
    epoch: u64,
    /// Its recipient is claimed (or being claimed) on its behalf.
    claimed: bool,
    /// Ends when a claim made for it at a reconnect has landed or failed.
    claimed_at_reconnect: Option<oneshot::Receiver<()>>,
}

#[derive(Default)]
struct State {
    epoch: u64,
    reconnected_at: Option<Instant>,
    in_call: HashMap<u64, InCall>,
    next_ticket: u64,
}

pub struct RestartGuard {
    claims: kv::Store,
    /// Which sender made a claim: the claim's value is `<sender>.<ticket>`.
    sender: uuid::Uuid,
    stats: Arc<async_nats::Statistics>,
    state: Mutex<State>,
}

/// A send registered with the guard; dropping it (after the outcome is
/// recorded, or the item sent back) ends the registration.
pub struct Ticket<'a> {
    guard: &'a RestartGuard,
    id: u64,
    key: String,
}

impl Ticket<'_> {
    /// The recipient's claim name, `<campaign>.<user>`.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.guard.lock().in_call.remove(&self.id);
    }
}

impl RestartGuard {
    pub fn new(claims: kv::Store, client: &async_nats::Client) -> Arc<RestartGuard> {
        let stats = client.statistics();
        let state = State {
            epoch: stats.connects.load(Ordering::Relaxed),
            ..State::default()
        };
        Arc::new(RestartGuard {
            claims,
            sender: uuid::Uuid::new_v4(),
            stats,
            state: Mutex::new(state),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent whatever a panicking holder did.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The state, with a reconnect since the last look taken into account:
    /// calls under way from an earlier epoch get claimed on their behalf.
    fn observe(self: &Arc<Self>) -> MutexGuard<'_, State> {
        let mut state = self.lock();
        let connects = self.stats.connects.load(Ordering::Relaxed);
        if connects != state.epoch {
            let epoch = std::mem::replace(&mut state.epoch, connects);
            state.reconnected_at = Some(Instant::now());
            let mut claims: Vec<(u64, String, oneshot::Sender<()>)> = state
                .in_call
                .iter_mut()
                .filter(|(_, call)| call.epoch <= epoch && !call.claimed)
                .map(|(ticket, call)| {
                    let (landed, claimed_at_reconnect) = oneshot::channel();
                    call.claimed = true;
                    call.claimed_at_reconnect = Some(claimed_at_reconnect);
                    (*ticket, call.key.clone(), landed)
                })
                .collect();
            claims.sort_unstable_by_key(|(ticket, ..)| *ticket);
            tracing::warn!(
                calls = claims.len(),
                "NATS reconnected: claiming the recipients of calls under way"
            );
            let guard = Arc::clone(self);
            tokio::spawn(async move {
                for (ticket, key, landed) in claims {
                    // No take-back on an error: the call is under way and
                    // may deliver; if it is to be sent again, its release
                    // takes the claim back.
                    match guard.claim_key(ticket, &key).await {
                        Ok(claim) => tracing::info!(key, ?claim, "claimed a call under way"),
                        Err(error) => {
                            tracing::warn!(key, error = %error, "claiming a call under way");
                        }
                    }
                    let _ = landed.send(());
                }
            });
        }
        state
    }

    /// Notes an item's receipt.
    pub fn receipt(self: &Arc<Self>) -> Receipt {
        let state = self.observe();
        Receipt {
            epoch: state.epoch,
            at: Instant::now(),
        }
    }

    /// Registers a send of recipient `key` (`<campaign>.<user>`) just before
    /// its call, and says what it must do first. No ticket when it must
    /// settle: it is sent back.
    pub fn enter(
        self: &Arc<Self>,
        key: String,
        receipt: Receipt,
    ) -> (Option<Ticket<'_>>, BeforeCall) {
        let mut state = self.observe();
        let before = before_call(receipt, state.epoch, state.reconnected_at, Instant::now());
        if let BeforeCall::Settle(_) = before {
            return (None, before);
        }
        let id = state.next_ticket;
        state.next_ticket += 1;
        let epoch = state.epoch;
        state.in_call.insert(
            id,
            InCall {
                key: key.clone(),
                epoch,
                claimed: before == BeforeCall::Claim,
                claimed_at_reconnect: None,
            },
        );
        drop(state);
        (
            Some(Ticket {
                guard: self.as_ref(),
                id,
                key,
            }),
            before,
        )
    }

    /// Claims the ticket's recipient before its call. A claim whose answer
    /// was lost may have landed: it is taken back, as the call is not made.
    pub async fn claim(self: &Arc<Self>, ticket: &Ticket<'_>) -> Result<Claim, ClaimError> {
        let claimed = self.claim_key(ticket.id, &ticket.key).await;
        if let Err(error) = &claimed {
            tracing::info!(key = ticket.key, error = %error, "a claim's answer was lost: taking it back");
            self.spawn_take_back(ticket.key.clone(), self.token(ticket.id), None);
        }
        claimed
    }

    async fn claim_key(&self, ticket: u64, key: &str) -> Result<Claim, ClaimError> {
        let now_us = crate::kv_number::now_us();
        let token = self.token(ticket);
        match self.claims.create(key, token.clone().into()).await {
            Ok(_) => Ok(Claim::Won),
            Err(error) if error.kind() == CreateErrorKind::AlreadyExists => {
                let entry = self.claims.entry(key).await.map_err(ClaimError::Read)?;
                let held = holding(entry.as_ref());
                // async-nats' create reads the key when its put fails, and
                // a put whose ack was lost with NATS may have landed: that
                // claim, "already there", is this one.
                if held.is_some_and(|claim| made_with(claim, &token)) {
                    tracing::info!(key, "a claim whose answer was lost had landed: it is ours");
                    return Ok(Claim::Won);
                }
                let age = held
                    .map(|entry| {
                        let created = entry.created.unix_timestamp_nanos() / 1_000;
                        Duration::from_micros(now_us.saturating_sub(created.max(0) as u64))
                    })
                    .unwrap_or_default();
                Ok(Claim::Lost { age })
            }
            Err(error) => Err(ClaimError::Create(error)),
        }
    }

    /// What a claim made for `ticket` holds: which sender and send made it.
    fn token(&self, ticket: u64) -> String {
        format!("{}.{ticket}", self.sender)
    }

    /// Takes the claim on `key` made with `token` back in the background
    /// ([`RestartGuard::take_back`]), once a claim made for it at a
    /// reconnect (`claimed_at_reconnect`) has landed or failed.
    fn spawn_take_back(
        self: &Arc<Self>,
        key: String,
        token: String,
        claimed_at_reconnect: Option<oneshot::Receiver<()>>,
    ) {
        let guard = Arc::clone(self);
        tokio::spawn(async move {
            if let Some(landed) = claimed_at_reconnect {
                let _ = landed.await;
            }
            guard.take_back(&key, &token).await;
        });
    }

    /// Takes back the claim on `key` made with `token` ([`take_back_once`]),
    /// trying for [`TAKE_BACK_FOR`].
    async fn take_back(&self, key: &str, token: &str) {
        let until = Instant::now() + TAKE_BACK_FOR;
        let mut attempt = 0;
        while Instant::now() < until {
            match take_back_once(&self.claims, key, token).await {
                Ok(taken_back) => {
                    tracing::info!(key, attempt, ?taken_back, "took back a claim");
                    return;
                }
                Err(error) => tracing::debug!(key, %error, "taking back a claim"),
            }
            tokio::time::sleep(courier_core::retry::backoff(
                attempt,
                Duration::from_secs(2),
            ))
            .await;
            attempt += 1;
        }
        tracing::warn!(key, "could not take back a claim");
    }

    /// Gives the recipient back (the send will be tried again), if it was
    /// claimed. A claim left behind makes a later suspect copy wait, then
    /// record the recipient as uncertain although nothing went out: so it
    /// is taken back like one whose answer was lost, trying again while
    /// NATS is away (a single delete fails while NATS restarts).
    pub fn release(self: &Arc<Self>, ticket: &Ticket<'_>) {
        // No longer under way: a reconnect from now on claims nothing for it.
        let call = self.lock().in_call.remove(&ticket.id);
        if let Some(call) = call.filter(|call| call.claimed) {
            self.spawn_take_back(call.key, self.token(ticket.id), call.claimed_at_reconnect);
        }
    }

    /// Looks at the connection's epoch at each connect (`connected`, from
    /// [`courier_core::startup::Nats`]), so calls under way are claimed as
    /// soon as NATS is back, even while no items come.
    pub async fn watch(
        self: Arc<Self>,
        mut connected: watch::Receiver<()>,
        shutdown: CancellationToken,
    ) {
        loop {
            let next_look = async {
                tokio::select! {
                    changed = connected.changed() => {
                        // The client is gone (shutting down): no more word.
                        if changed.is_err() {
                            tokio::time::sleep(WATCH_INTERVAL).await;
                        }
                    }
                    () = tokio::time::sleep(WATCH_INTERVAL) => {}
                }
            };
            if shutdown.run_until_cancelled(next_look).await.is_none() {
                return;
            }
            drop(self.observe());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(epoch: u64, at: Instant) -> Receipt {
        Receipt { epoch, at }
    }

    #[test]
    fn without_a_reconnect_every_send_goes_straight_out() {
        let t0 = Instant::now();
        assert_eq!(before_call(receipt(1, t0), 1, None, t0), BeforeCall::Send);
    }

    #[test]
    fn an_item_held_across_a_reconnect_waits_for_the_settling_then_claims() {
        let t0 = Instant::now();
        let back = t0 + Duration::from_millis(300);
        let held = receipt(1, t0);
        assert_eq!(
            before_call(held, 2, Some(back), back + Duration::from_millis(500)),
            BeforeCall::Settle(SETTLE - Duration::from_millis(500))
        );
        assert_eq!(
            before_call(held, 2, Some(back), back + SETTLE),
            BeforeCall::Claim
        );
        assert_eq!(
            before_call(held, 2, Some(back), back + SUSPECT_WINDOW * 2),
            BeforeCall::Claim,
            "however late it comes to be sent"
        );
    }

    #[test]
    fn items_received_soon_after_a_reconnect_claim_and_later_ones_do_not() {
        let back = Instant::now();
        let soon = receipt(2, back + Duration::from_secs(1));
        assert_eq!(
            before_call(soon, 2, Some(back), back + SETTLE),
            BeforeCall::Claim
        );
        let redelivered = receipt(2, back + SENDER_ACK_WAIT + Duration::from_secs(2));
        assert_eq!(
            before_call(redelivered, 2, Some(back), back + SENDER_ACK_WAIT * 2),
            BeforeCall::Claim,
            "the items pending at the crash come back after the ack wait"
        );
        let later = receipt(2, back + SUSPECT_WINDOW);
        assert_eq!(
            before_call(later, 2, Some(back), back + SUSPECT_WINDOW),
            BeforeCall::Send
        );
    }

    #[test]
    fn a_recipient_claimed_elsewhere_is_looked_at_again_and_never_sent_twice() {
        assert_eq!(
            claimed_elsewhere(Duration::from_secs(1)),
            ClaimedElsewhere::Recheck(CLAIM_RECHECK)
        );
        assert_eq!(
            claimed_elsewhere(CLAIM_HORIZON - Duration::from_secs(1)),
            ClaimedElsewhere::Recheck(Duration::from_secs(1))
        );
        assert_eq!(
            claimed_elsewhere(CLAIM_HORIZON),
            ClaimedElsewhere::Uncertain
        );
    }
}
