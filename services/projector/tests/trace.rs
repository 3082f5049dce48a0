//! What the projector publishes about a campaign ends the campaign's trace:
//! its completion, and its pause when Telegram refuses the content, are
//! published in spans under the campaign's start, whatever trace the
//! outcomes that settled it carried (here: none).
//!
//! One test per binary: it installs the process's global telemetry.
#![allow(
    clippy::unwrap_used,
    reason = "helpers of a test crate are test code; allow-unwrap-in-tests sees only #[test] fns"
)]

use std::time::Duration;

use courier_core::commands::CampaignCommands;
use courier_core::event::EventPublisher;
use courier_core::proto::v1::{Audience, Delivered, Failed, Language, delivery_outcome};
use courier_core::telemetry;
use courier_testing::TestEnv;
use courier_testing::campaigns::{
    publish_outcome, register_users, start_text_campaign, wait_for_status, wait_for_users,
};
use courier_testing::otlp::{Span, SpanCollector, attribute};

const DEADLINE: Duration = Duration::from_secs(30);

/// Publishes an outcome for each of `users` as a sender does, but with no
/// trace context at all.
async fn outcomes(
    env: &TestEnv,
    js: &async_nats::jetstream::Context,
    campaign: uuid::Uuid,
    users: std::ops::RangeInclusive<i64>,
    result: delivery_outcome::Result,
) {
    for user_id in users {
        publish_outcome(js, &env.topology(), campaign, user_id, 1, result.clone()).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn completion_and_a_content_pause_are_published_in_the_campaigns_trace() {
    let collector = SpanCollector::start().await;
    let telemetry = telemetry::init(&collector.telemetry(), "courier-test").unwrap();
    let env = TestEnv::new().await;
    let js = env.jetstream().await;
    let users: Vec<_> = (1..=3).map(|id| (id, Language::En, true)).collect();
    register_users(&EventPublisher::new(js.clone(), env.topology()), &users).await;
    let projector = env.start_projector();
    let pool = env.pool().await;
    let client = pool.get().await.unwrap();
    wait_for_users(&client, 3, DEADLINE).await;
    let commands = CampaignCommands::new(js.clone(), env.topology())
        .await
        .unwrap();

    let completed = start_text_campaign(&commands, Audience::All, "done").await;
    wait_for_status(&client, completed, "sending", DEADLINE).await;
    let delivered = delivery_outcome::Result::Delivered(Delivered {
        message_id: 1,
        revision: 0,
        ..Default::default()
    });
    outcomes(&env, &js, completed, 1..=3, delivered).await;
    wait_for_status(&client, completed, "completed", DEADLINE).await;

    let refused = start_text_campaign(&commands, Audience::All, "broken").await;
    wait_for_status(&client, refused, "sending", DEADLINE).await;
    let failed = delivery_outcome::Result::Failed(Failed {
        reason: "Bad Request: can't parse entities".into(),
        content_refused: true,
    });
    outcomes(&env, &js, refused, 1..=3, failed).await;
    wait_for_status(&client, refused, "paused", DEADLINE).await;

    projector.stop().await;
    courier_core::service::flush(telemetry).await;
    let spans = collector.spans();
    let of_campaign = |name: &str, campaign: uuid::Uuid| -> Vec<&Span> {
        let campaign = campaign.to_string();
        spans
            .iter()
            .filter(|s| s.name == name && attribute(s, "campaign_id") == Some(campaign.clone()))
            .collect()
    };
    // Events are published in PRODUCER spans (`publish`): what continues
    // an event's trace descends from the span that published it.
    let published_from = |span: &Span| {
        spans
            .iter()
            .find(|publish| publish.name == "publish" && publish.span_id == span.parent_span_id)
            .map(|publish| publish.parent_span_id.clone())
    };
    for (campaign, fact, event) in [
        (completed, "campaign.complete", "CampaignCompleted"),
        (refused, "campaign.pause", "CampaignPaused"),
    ] {
        let root = of_campaign("campaign.start", campaign);
        assert_eq!(root.len(), 1, "{campaign}: its start");
        let facts = of_campaign(fact, campaign);
        assert_eq!(facts.len(), 1, "{campaign}: one {fact}");
        assert_eq!(facts[0].trace_id, root[0].trace_id, "{fact} in the trace");
        assert_eq!(
            published_from(facts[0]),
            Some(root[0].span_id.clone()),
            "{fact} under the start's CampaignStarted"
        );
        // The event it published carried that trace: its projection
        // continues the fact's span.
        let projected = spans
            .iter()
            .filter(|s| s.name == "project" && published_from(s) == Some(facts[0].span_id.clone()))
            .count();
        assert_eq!(projected, 1, "{event} projected in {fact}'s trace");
    }
}
