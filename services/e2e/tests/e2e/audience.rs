//! Audiences beyond language, end to end: users tagged and opted out
//! through events, a campaign to a segment with a version per language
//! greeting each recipient by name, and what each recipient got from the
//! Telegram sandbox, entity by entity.

use std::collections::HashMap;
use std::time::Duration;

use courier_core::audience;
use courier_core::commands::NewCampaign;
use courier_core::event::EventPublisher;
use courier_core::proto::v1::{
    CampaignOptions, Content, ContentKind, Event, Language, MessageEntity, Names, UserActive,
    UserOptedOut, UserTagged, Variant, event::Payload,
};
use courier_e2e::{SenderSettings, Setup, Stack, unlimited_sandbox};
use courier_testing::campaigns::{CampaignRow, wait_for_status, wait_for_users};
use courier_testing::{TestEnv, wait_until};

const DEADLINE: Duration = Duration::from_secs(90);

/// A text whose `bold` part is bold and `link` part a link, as an admin's
/// client sends them (offsets in UTF-16 units).
fn text(text: &str, bold: &str, link: &str) -> Content {
    let entity = |kind: &str, part: &str, url: &str| {
        let at = text.find(part).expect("the part is in the text");
        MessageEntity {
            r#type: kind.into(),
            offset: text[..at].encode_utf16().count() as i64,
            length: part.encode_utf16().count() as i64,
            url: url.into(),
            ..Default::default()
        }
    };
    Content {
        kind: ContentKind::Text.into(),
        text: text.into(),
        entities: vec![
            entity("bold", bold, ""),
            entity("text_link", link, "https://example.com/news"),
        ],
        ..Default::default()
    }
}

/// The part of `text` an entity as sent covers, counted in UTF-16 units.
fn covered(text: &str, entity: &serde_json::Value) -> String {
    let units: Vec<u16> = text.encode_utf16().collect();
    let offset = entity["offset"].as_u64().expect("an offset") as usize;
    let length = entity["length"].as_u64().expect("a length") as usize;
    String::from_utf16(&units[offset..offset + length]).expect("whole characters")
}

/// 60 users, odd ru and even en; every third is vip, every fifth churned,
/// and user 9 (vip, ru) opted out of broadcasts. User 3 (ru) is "Анна 🦊
/// Лиса", user 6 (en) "🦊" with no last name or username, the others have
/// no names known.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_segment_gets_its_language_version_greeting_each_by_name_and_nobody_else_anything() {
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
            ..Default::default()
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
    let opted_out = Event::new(Payload::UserOptedOut(UserOptedOut {
        user_id: 9,
        ..Default::default()
    }));
    publisher.publish(&opted_out).await.unwrap();
    for (user_id, first_name, last_name, username) in
        [(3, "Анна", "🦊 Лиса", "anna"), (6, "🦊", "", "")]
    {
        let active = Event::new(Payload::UserActive(UserActive {
            user_id,
            names: Some(Names {
                first_name: first_name.into(),
                last_name: last_name.into(),
                username: username.into(),
            }),
            ..Default::default()
        }));
        publisher.publish(&active).await.unwrap();
    }
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
        let named = client
            .query_one("SELECT count(*) FROM users WHERE first_name <> ''", &[])
            .await
            .ok()?
            .get::<_, i64>(0);
        (counts == (20, 12, 1) && named == 2).then_some(())
    })
    .await;

    let filter = audience::parse("tag:vip -tag:churned").unwrap();
    let campaign = commands
        .create_and_start(NewCampaign {
            bot_id: courier_core::topology::DEFAULT_BOT,
            id: uuid::Uuid::now_v7(),
            created_by: 1,
            audience: filter,
            content: text(
                "Hi {first_name|friend}! News",
                "{first_name|friend}",
                "News",
            ),
            variants: vec![Variant {
                language: "ru".into(),
                content: Some(text(
                    "Привет, {name|друг}! Новости",
                    "{name|друг}",
                    "Новости",
                )),
            }],
            options: CampaignOptions::default(),
            title: String::new(),
        })
        .await
        .unwrap();
    let row = wait_for_status(&client, campaign, "completed", DEADLINE).await;

    // Each recipient: the text they get and the name in bold in it.
    let expected: HashMap<i64, (String, &str)> = (1..=60)
        .filter(|id| id % 3 == 0 && id % 5 != 0 && *id != 9)
        .map(|id| {
            let name = match (id, id % 2 == 1) {
                (3, _) => "Анна 🦊 Лиса",
                (6, _) => "🦊",
                (_, true) => "друг",
                (_, false) => "friend",
            };
            let text = match id % 2 == 1 {
                true => format!("Привет, {name}! Новости"),
                false => format!("Hi {name}! News"),
            };
            (id, (text, name))
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
    let deliveries = sandbox.deliveries();
    assert_eq!(deliveries.len(), expected.len(), "nobody got it twice");
    for delivery in deliveries {
        let (text, name) = &expected[&delivery.chat_id];
        let got = delivery.text.as_deref().unwrap_or_default();
        assert_eq!(got, text, "user {}", delivery.chat_id);
        let words: Vec<String> = delivery.entities.iter().map(|e| covered(got, e)).collect();
        let link = if delivery.chat_id % 2 == 1 {
            "Новости"
        } else {
            "News"
        };
        assert_eq!(
            words,
            [name.to_string(), link.to_owned()],
            "user {}",
            delivery.chat_id
        );
    }
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

/// A campaign as versions before filters created it (the seed's
/// `Audience::Ru`, no filter) still reaches the live ru users, once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_campaign_with_the_old_language_audience_completes_as_before() {
    use courier_core::proto::v1::{Audience, CampaignCreated, CampaignStarted};
    let users: Vec<(i64, Language, bool)> = (1..=20)
        .map(|id| {
            (
                id,
                if id % 2 == 1 {
                    Language::Ru
                } else {
                    Language::En
                },
                id != 5,
            )
        })
        .collect();
    let Setup {
        env, sandbox, pool, ..
    } = Setup::on(TestEnv::new().await, &users, unlimited_sandbox()).await;
    let stack = Stack::start(
        &env,
        &sandbox.url(),
        SenderSettings {
            rate_limit: 500.0,
            replicas: 1,
        },
    );
    let client = pool.get().await.unwrap();
    wait_for_users(&client, 20, DEADLINE).await;
    let publisher = EventPublisher::new(env.jetstream().await, env.topology());
    let campaign = uuid::Uuid::now_v7();
    let created = Event::new(Payload::CampaignCreated(CampaignCreated {
        campaign_id: campaign.to_string(),
        created_by: 1,
        audience: Audience::Ru.into(),
        content: Some(text("Привет", "Привет", "Привет")),
        options: Some(CampaignOptions::default()),
        ..Default::default()
    }));
    let seq = publisher.publish_expecting(&created, 0).await.unwrap();
    let started = Event::new(Payload::CampaignStarted(CampaignStarted {
        campaign_id: campaign.to_string(),
        started_by: 1,
    }));
    publisher.publish_expecting(&started, seq).await.unwrap();
    let row = wait_for_status(&client, campaign, "completed", DEADLINE).await;
    // Odd ids are ru; user 5 blocked the bot.
    let live_ru: Vec<i64> = (1..=20).filter(|id| id % 2 == 1 && *id != 5).collect();
    assert_eq!(row.audience_size, Some(live_ru.len() as i32));
    assert_eq!(row.delivered, live_ru.len() as i32);
    let mut got: Vec<i64> = sandbox.deliveries().iter().map(|d| d.chat_id).collect();
    got.sort();
    assert_eq!(got, live_ru);
    let audience: String = client
        .query_one(
            "SELECT audience FROM campaigns WHERE campaign_id = $1",
            &[&campaign],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(audience, "lang:ru");
    stack.stop().await.expect("services stopped cleanly");
}
