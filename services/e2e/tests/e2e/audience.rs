//! Audiences beyond language, end to end: users tagged and opted out
//! through events, a campaign to a segment with a version per language,
//! and what each recipient got from the Telegram sandbox.

use std::collections::HashMap;
use std::time::Duration;

use courier_core::audience;
use courier_core::commands::NewCampaign;
use courier_core::event::EventPublisher;
use courier_core::proto::v1::{
    CampaignOptions, Content, ContentKind, Event, Language, UserOptedOut, UserTagged, Variant,
    event::Payload,
};
use courier_e2e::{SenderSettings, Setup, Stack, unlimited_sandbox};
use courier_testing::campaigns::{CampaignRow, wait_for_status, wait_for_users};
use courier_testing::{TestEnv, wait_until};

const DEADLINE: Duration = Duration::from_secs(90);

fn text(text: &str) -> Content {
    Content {
        kind: ContentKind::Text.into(),
        text: text.into(),
        ..Default::default()
    }
}

/// 60 users, odd ru and even en; every third is vip, every fifth churned,
/// and user 9 (vip, ru) opted out of broadcasts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_segment_gets_its_language_version_and_nobody_else_gets_anything() {
    let users: Vec<(i64, Language, bool)> = (1..=60)
        .map(|id| {
            (
                id,
                if id % 2 == 1 {
                    Language::Ru
                } else {
                    Language::En
                },
                true,
            )
        })
        .collect();
    let Setup {
        env,
        sandbox,
        commands,
        pool,
    } = Setup::on(TestEnv::new().await, &users, unlimited_sandbox()).await;
    let publisher = EventPublisher::new(env.jetstream().await, env.topology());
    let tag = |user_id, tag: &str| {
        Event::new(Payload::UserTagged(UserTagged {
            user_id,
            tag: tag.into(),
            tagged_by: 0,
        }))
    };
    for id in 1..=60 {
        if id % 3 == 0 {
            publisher.publish(&tag(id, "vip")).await.unwrap();
        }
        if id % 5 == 0 {
            publisher.publish(&tag(id, "churned")).await.unwrap();
        }
    }
    let opted_out = Event::new(Payload::UserOptedOut(UserOptedOut { user_id: 9 }));
    publisher.publish(&opted_out).await.unwrap();
    let stack = Stack::start(
        &env,
        &sandbox.url(),
        SenderSettings {
            rate_limit: 500.0,
            replicas: 2,
        },
    );
    let client = pool.get().await.unwrap();
    wait_for_users(&client, 60, DEADLINE).await;
    wait_until("tags and the opt-out projected", DEADLINE, || async {
        let row = client
            .query_one(
                "SELECT count(*) FILTER (WHERE 'vip' = ANY(tags)),
                        count(*) FILTER (WHERE 'churned' = ANY(tags)),
                        count(*) FILTER (WHERE opted_out)
                 FROM users",
                &[],
            )
            .await
            .ok()?;
        let counts: (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
        (counts == (20, 12, 1)).then_some(())
    })
    .await;

    let filter = audience::parse("tag:vip -tag:churned").unwrap();
    let campaign = commands
        .create_and_start(NewCampaign {
            id: uuid::Uuid::now_v7(),
            created_by: 1,
            audience: filter,
            content: text("News of the week"),
            variants: vec![Variant {
                language: "ru".into(),
                content: Some(text("Новости недели")),
            }],
            options: CampaignOptions::default(),
        })
        .await
        .unwrap();
    let row = wait_for_status(&client, campaign, "completed", DEADLINE).await;

    let expected: HashMap<i64, &str> = (1..=60)
        .filter(|id| id % 3 == 0 && id % 5 != 0 && *id != 9)
        .map(|id| {
            (
                id,
                if id % 2 == 1 {
                    "Новости недели"
                } else {
                    "News of the week"
                },
            )
        })
        .collect();
    assert_eq!(
        row,
        CampaignRow {
            status: "completed".into(),
            audience_size: Some(expected.len() as i32),
            delivered: expected.len() as i32,
            not_alive: 0,
            failed: 0,
        }
    );
    let received: HashMap<i64, String> = sandbox
        .deliveries()
        .into_iter()
        .map(|d| (d.chat_id, d.text.unwrap_or_default()))
        .collect();
    assert_eq!(
        sandbox.deliveries().len(),
        expected.len(),
        "nobody got it twice"
    );
    let received: HashMap<i64, &str> = received.iter().map(|(id, t)| (*id, t.as_str())).collect();
    assert_eq!(received, expected);
    // The variant each recipient got is in the read model too.
    let rows = client
        .query(
            "SELECT variant, count(*) FROM deliveries WHERE campaign_id = $1 GROUP BY 1 ORDER BY 1",
            &[&campaign],
        )
        .await
        .unwrap();
    let per_variant: Vec<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let ru = expected.keys().filter(|id| *id % 2 == 1).count() as i64;
    assert_eq!(
        per_variant,
        [
            ("".to_owned(), expected.len() as i64 - ru),
            ("ru".to_owned(), ru)
        ]
    );
    stack.stop().await.expect("services stopped cleanly");
}
