//! The restart guard's claims against a real NATS: a send given back
//! keeps no claim across a restart, and a claim whose answer was lost
//! cannot land once it was taken back.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv::{self, Operation};
use courier_sender::restart_guard::{
    BeforeCall, Claim, RestartGuard, TakenBack, Ticket, take_back_once,
};
use courier_testing::nats_server::NatsServer;
use courier_testing::{TestEnv, wait_until};

const DEADLINE: Duration = Duration::from_secs(30);

/// The claims bucket, through `client`.
async fn claims(env: &TestEnv, client: &async_nats::Client) -> kv::Store {
    env.jetstream().await;
    async_nats::jetstream::new(client.clone())
        .get_key_value(env.topology().claims_bucket())
        .await
        .unwrap()
}

/// A NATS connection of its own, a restart guard on it, and its claims.
async fn guarded(env: &TestEnv) -> (async_nats::Client, Arc<RestartGuard>, kv::Store) {
    let client = env.nats_client().await;
    let claims = claims(env, &client).await;
    let guard = RestartGuard::new(claims.clone(), &client);
    (client, guard, claims)
}

/// A send of `key` registered with `guard` once it must claim (a
/// reconnect seen and settled).
async fn send_that_must_claim<'g>(guard: &'g Arc<RestartGuard>, key: &str) -> Ticket<'g> {
    wait_until("a send that must claim", DEADLINE, || async {
        match guard.enter(key.to_owned(), guard.receipt()) {
            (Some(ticket), BeforeCall::Claim) => Some(ticket),
            _ => None,
        }
    })
    .await
}

/// Whether a claim holds `key`.
async fn held(claims: &kv::Store, key: &str) -> bool {
    matches!(claims.entry(key).await, Ok(Some(entry)) if entry.operation == Operation::Put)
}

/// A create whose answer timed out can still reach NATS later: async-nats
/// sends what it buffered while NATS was away once it is back. Taken back
/// before it lands, it must not land after; another copy still claims the
/// recipient, and only the claim's own sender deletes it.
#[tokio::test]
async fn a_claim_taken_back_before_it_landed_cannot_land_after() {
    let env = TestEnv::new().await;
    let claims = claims(&env, &env.nats_client().await).await;

    assert_eq!(
        take_back_once(&claims, "c.1", "a.1").await.unwrap(),
        TakenBack::Fenced
    );
    // What the create on its way sends: a put expecting no claim.
    assert!(
        claims.update("c.1", "a.1".into(), 0).await.is_err(),
        "a claim taken back before it landed landed after"
    );

    claims.create("c.1", "b.1".into()).await.unwrap();
    assert_eq!(
        take_back_once(&claims, "c.1", "a.1").await.unwrap(),
        TakenBack::HeldByAnotherCopy
    );
    assert!(
        held(&claims, "c.1").await,
        "another copy's claim was deleted"
    );
    assert_eq!(
        take_back_once(&claims, "c.1", "b.1").await.unwrap(),
        TakenBack::Deleted
    );
    assert!(!held(&claims, "c.1").await);
}

/// At a reconnect the guard claims the recipients of calls under way. A
/// send given back before NATS went away is no longer under way: it gets
/// no claim. One given back after, even while its claim is on its way,
/// ends with its claim taken back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_given_back_keeps_no_claim_across_a_nats_restart() {
    let mut nats = NatsServer::start();
    let env = TestEnv::with_nats(&nats.url()).await;
    let (client, guard, claims) = guarded(&env).await;
    let receipt = guard.receipt();
    let enter = |key: &str| {
        let (ticket, before) = guard.enter(key.to_owned(), receipt);
        assert_eq!(before, BeforeCall::Send, "no reconnect yet: {key}");
        ticket.unwrap()
    };
    let given_back_before = enter("c.1");
    let under_way = enter("c.2");
    let given_back_after = enter("c.3");
    guard.release(&given_back_before);

    nats.restart();
    wait_until("the client reconnected", DEADLINE, || async {
        (client
            .statistics()
            .connects
            .load(std::sync::atomic::Ordering::Relaxed)
            > 1)
        .then_some(())
    })
    .await;
    // The guard sees the reconnect at its next look (an item's receipt),
    // and gives c.3 back while the claims made for the calls go out.
    guard.receipt();
    guard.release(&given_back_after);

    wait_until("the call under way claimed", DEADLINE, || async {
        held(&claims, "c.2").await.then_some(())
    })
    .await;
    // Claims made at a reconnect go out one by one, in ticket order: c.1's
    // would have landed before c.2's.
    assert!(
        claims.entry("c.1").await.unwrap().is_none(),
        "a send given back before the restart was claimed"
    );
    wait_until("c.3's claim taken back", DEADLINE, || async {
        matches!(claims.entry("c.3").await, Ok(Some(entry)) if entry.operation == Operation::Delete)
            .then_some(())
    })
    .await;
    drop(under_way);
}

/// A create whose ack was lost with NATS may have landed; async-nats then
/// reads the key and says "already exists". That claim is the send's own:
/// claiming again wins, while another sender's copy loses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_whose_claim_landed_unanswered_still_holds_it() {
    let mut nats = NatsServer::start();
    let env = TestEnv::with_nats(&nats.url()).await;
    let (_, guard, _) = guarded(&env).await;
    let (_, other, _) = guarded(&env).await;
    nats.restart();
    let send = send_that_must_claim(&guard, "c.1").await;
    assert_eq!(guard.claim(&send).await.unwrap(), Claim::Won);
    // The answer lost: the same send claims again.
    assert_eq!(guard.claim(&send).await.unwrap(), Claim::Won);
    let twin = send_that_must_claim(&other, "c.1").await;
    assert!(matches!(
        other.claim(&twin).await.unwrap(),
        Claim::Lost { .. }
    ));
}
