//! The projector against real Postgres and NATS: replays change nothing,
//! poison messages are parked and the stream moves on.
#![allow(
    clippy::unwrap_used,
    reason = "helpers of a test crate are test code; allow-unwrap-in-tests sees only #[test] fns"
)]

use std::time::Duration;

use courier_core::commands::CampaignCommands;
use courier_core::event::EventPublisher;
use courier_core::proto::v1::{
    AdminGranted, AdminRevoked, Audience, Event, Language, UserRegistered, event::Payload,
};
use courier_core::topology::DEFAULT_BOT;
use courier_projector::projection::{self, Applied, Batch, StreamMessage};
use courier_testing::campaigns::{start_text_campaign, wait_for_status};
use courier_testing::read_model::dump;
use courier_testing::{TestEnv, wait_until};
use prost::Message as _;

fn registered(user_id: i64) -> Event {
    Event::new(Payload::UserRegistered(UserRegistered {
        user_id,
        chat_id: user_id,
        language: Language::Ru.into(),
        language_chosen: false,
        ..Default::default()
    }))
}

/// A test environment whose events stream has its checkpoint, and a
/// connection to apply events on (no projector runs).
async fn events_only() -> (TestEnv, deadpool_postgres::Object) {
    let env = TestEnv::new().await;
    let client = env.pool().await.get().await.unwrap();
    projection::checkpoints(&client, &["EVENTS"]).await.unwrap();
    (env, client)
}

/// A campaign of `text` for the old one-tap `audience`, as `CampaignCreated`
/// was before filters.
fn created_for(campaign: &str, audience: Audience, text: &str) -> Payload {
    use courier_core::proto::v1::{CampaignCreated, Content};
    Payload::CampaignCreated(CampaignCreated {
        campaign_id: campaign.to_owned(),
        created_by: 1,
        audience: audience.into(),
        content: Some(Content {
            text: text.into(),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// Applies `events` as the events stream's messages 1, 2, ..., each in a
/// batch of its own; none may be parked.
async fn apply_each_alone(
    client: &mut tokio_postgres::Client,
    topology: &courier_core::topology::Topology,
    events: impl IntoIterator<Item = Event>,
) {
    for (seq, event) in (1..).zip(events) {
        let subject = event.payload.as_ref().expect("a payload").subject(topology);
        let payload = event.encode_to_vec();
        let message = StreamMessage {
            stream: "EVENTS",
            seq,
            subject: &subject,
            headers: None,
            payload: &payload,
        };
        assert_ne!(apply_alone(client, &message).await, Applied::Parked);
    }
}

/// Applies `message` alone in a batch of its own.
async fn apply_alone(client: &mut tokio_postgres::Client, message: &StreamMessage<'_>) -> Applied {
    let mut batch = Batch::begin(client, message.stream).await.unwrap();
    let applied = batch.apply_event(message).await.unwrap();
    batch.commit().await.unwrap();
    applied
}

#[tokio::test]
async fn applying_a_message_twice_changes_nothing() {
    let env = TestEnv::new().await;
    let pool = env.pool().await;
    let mut client = pool.get().await.unwrap();
    projection::checkpoints(&client, &["EVENTS"]).await.unwrap();
    let payload = registered(7).encode_to_vec();
    let message = StreamMessage {
        stream: "EVENTS",
        seq: 1,
        subject: "courier.events.user.7",
        headers: None,
        payload: &payload,
    };
    assert_eq!(
        apply_alone(&mut client, &message).await,
        Applied::Changed(None)
    );
    let before = dump(&client).await.unwrap();
    assert_eq!(
        apply_alone(&mut client, &message).await,
        Applied::AlreadyApplied
    );
    assert_eq!(dump(&client).await.unwrap(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poison_event_is_parked_and_the_projector_moves_on() {
    let env = TestEnv::new().await;
    let js = env.jetstream().await;
    let topology = env.topology();
    js.publish(
        topology.user_subject(DEFAULT_BOT, 1),
        "not protobuf at all \u{ff}".into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    let from_the_future = Event {
        event_id: "future".into(),
        occurred_at_ms: 1,
        payload: None,
    };
    js.publish(
        topology.user_subject(DEFAULT_BOT, 2),
        from_the_future.encode_to_vec().into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    EventPublisher::new(js, topology)
        .publish(&registered(3))
        .await
        .unwrap();

    let projector = env.start_projector();
    let pool = env.pool().await;
    let client = pool.get().await.unwrap();
    wait_until(
        "the valid event after the poison ones",
        Duration::from_secs(30),
        || async {
            let row = client
                .query_opt("SELECT 1 FROM users WHERE user_id = 3", &[])
                .await
                .ok()?;
            row.map(|_| ())
        },
    )
    .await;
    let parked: Vec<(i64, String)> = client
        .query("SELECT seq, error FROM parked_messages ORDER BY seq", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(parked.len(), 2, "{parked:?}");
    assert!(parked[0].1.contains("not a courier.v1.Event"), "{parked:?}");
    assert!(parked[1].1.contains("does not know"), "{parked:?}");
    projector.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_campaign_done_before_a_crash_completes_when_a_projector_takes_over() {
    let env = TestEnv::new().await;
    let js = env.jetstream().await;
    let topology = env.topology();
    let commands = CampaignCommands::new(js.clone(), topology.clone())
        .await
        .unwrap();
    // Nobody speaks ru: the campaign is done the moment it starts.
    let campaign = start_text_campaign(&commands, Audience::Ru, "to nobody").await;
    // What a projector that stopped right after committing the start
    // leaves: the start applied and checkpointed, no CampaignCompleted.
    let pool = env.pool().await;
    let mut client = pool.get().await.unwrap();
    let events_stream = topology.events_stream();
    projection::checkpoints(&client, &[&events_stream])
        .await
        .unwrap();
    let stream = js.get_stream(&events_stream).await.unwrap();
    for seq in 1..=2 {
        let raw = stream.get_raw_message(seq).await.unwrap();
        let message = StreamMessage {
            stream: &events_stream,
            seq,
            subject: raw.subject.as_str(),
            headers: Some(&raw.headers),
            payload: &raw.payload,
        };
        assert!(matches!(
            apply_alone(&mut client, &message).await,
            Applied::Changed(_)
        ));
    }
    let status: String = client
        .query_one(
            "SELECT status FROM campaigns WHERE campaign_id = $1",
            &[&campaign],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "sending");

    let projector = env.start_projector();
    let row = wait_for_status(&client, campaign, "completed", Duration::from_secs(30)).await;
    assert_eq!(row.audience_size, Some(0), "{row:?}");
    projector.stop().await;
}

#[tokio::test]
async fn an_event_published_twice_is_stored_once() {
    let env = TestEnv::new().await;
    let js = env.jetstream().await;
    let publisher = EventPublisher::new(js.clone(), env.topology());
    // A publisher retrying after a lost ack sends the same event (same id,
    // the Nats-Msg-Id) again.
    let event = registered(9);
    publisher.publish(&event).await.unwrap();
    publisher.publish(&event).await.unwrap();
    publisher.publish(&registered(10)).await.unwrap();
    let mut stream = js.get_stream(env.topology().events_stream()).await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn admins_are_projected_from_grants_and_revokes() {
    let env = TestEnv::new().await;
    let publisher = EventPublisher::new(env.jetstream().await, env.topology());
    let grant = |user_id| {
        Payload::AdminGranted(AdminGranted {
            user_id,
            granted_by: 1,
            ..Default::default()
        })
    };
    for payload in [
        grant(5),
        grant(6),
        grant(6),
        Payload::AdminRevoked(AdminRevoked {
            user_id: 5,
            revoked_by: 1,
            ..Default::default()
        }),
    ] {
        publisher.publish(&Event::new(payload)).await.unwrap();
    }
    let projector = env.start_projector();
    let pool = env.pool().await;
    let client = pool.get().await.unwrap();
    let admins = wait_until("the revoke applied", Duration::from_secs(30), || async {
        let rows = client
            .query("SELECT user_id FROM admins ORDER BY user_id", &[])
            .await
            .ok()?;
        let admins: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        (admins.contains(&6) && !admins.contains(&5)).then_some(admins)
    })
    .await;
    assert_eq!(admins, [6]);
    projector.stop().await;
}

#[tokio::test]
async fn a_start_tried_again_after_failing_halfway_starts_the_same_campaign_once() {
    use courier_core::campaign::CampaignStatus;
    use courier_core::commands::NewCampaign;
    use courier_core::proto::v1::{CampaignCreated, CampaignOptions, Content};
    let env = TestEnv::new().await;
    let js = env.jetstream().await;
    let commands = CampaignCommands::new(js.clone(), env.topology())
        .await
        .unwrap();
    let campaign = NewCampaign {
        bot_id: DEFAULT_BOT,
        id: uuid::Uuid::now_v7(),
        created_by: 1,
        audience: courier_core::audience::from_legacy(Audience::Ru),
        content: Content {
            text: "again".into(),
            ..Default::default()
        },
        variants: Vec::new(),
        options: CampaignOptions::default(),
        title: String::new(),
    };
    // The first try published CampaignCreated, then failed.
    let created = Event::new(Payload::CampaignCreated(CampaignCreated {
        campaign_id: campaign.id.to_string(),
        created_by: 1,
        audience: 0,
        content: Some(campaign.content.clone()),
        options: Some(CampaignOptions::default()),
        filter: Some(campaign.audience.clone()),
        variants: Vec::new(),
        title: String::new(),
        bot_id: DEFAULT_BOT,
    }));
    EventPublisher::new(js.clone(), env.topology())
        .publish(&created)
        .await
        .unwrap();
    for _ in 0..2 {
        let id = commands.create_and_start(campaign.clone()).await.unwrap();
        assert_eq!(id, campaign.id);
    }
    let (status, last_seq) = commands.status(campaign.id).await.unwrap();
    assert_eq!(status, CampaignStatus::Sending);
    let mut stream = js.get_stream(env.topology().events_stream()).await.unwrap();
    assert_eq!(
        stream.info().await.unwrap().state.messages,
        2,
        "created, started"
    );
    assert_eq!(last_seq, 2);
}

/// A status this version does not know (a newer courier wrote it, or a
/// hand edit) is not guessed at: the campaign's next event is parked with
/// the reason, and the row is left as it was for an operator.
#[tokio::test]
async fn an_event_for_a_campaign_whose_status_is_unknown_is_parked() {
    use courier_core::proto::v1::{CampaignCreated, CampaignStarted};
    let (_env, mut client) = events_only().await;
    let campaign = uuid::Uuid::now_v7();
    let id = campaign.to_string();
    let created = Event::new(Payload::CampaignCreated(CampaignCreated {
        campaign_id: id.clone(),
        created_by: 1,
        audience: Audience::All.into(),
        ..Default::default()
    }))
    .encode_to_vec();
    let subject = format!("courier.events.campaign.{id}");
    let message = |seq, payload| StreamMessage {
        stream: "EVENTS",
        seq,
        subject: &subject,
        headers: None,
        payload,
    };
    assert_eq!(
        apply_alone(&mut client, &message(1, &created)).await,
        Applied::Changed(Some(campaign))
    );
    client
        .batch_execute(&format!(
            "ALTER TABLE campaigns DROP CONSTRAINT campaigns_status_check;
             UPDATE campaigns SET status = 'archived' WHERE campaign_id = '{id}'"
        ))
        .await
        .unwrap();

    let started = Event::new(Payload::CampaignStarted(CampaignStarted {
        campaign_id: id.clone(),
        started_by: 1,
    }))
    .encode_to_vec();
    assert_eq!(
        apply_alone(&mut client, &message(2, &started)).await,
        Applied::Parked
    );
    let error: String = client
        .query_one("SELECT error FROM parked_messages WHERE seq = 2", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        error.contains(r#"unknown campaign status "archived""#),
        "{error}"
    );
    let (status, last_event_seq): (String, i64) = client
        .query_one(
            "SELECT status, last_event_seq FROM campaigns WHERE campaign_id = $1",
            &[&campaign],
        )
        .await
        .map(|row| (row.get(0), row.get(1)))
        .unwrap();
    assert_eq!((status.as_str(), last_event_seq), ("archived", 1));
    let deliveries: i64 = client
        .query_one("SELECT count(*) FROM deliveries", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(deliveries, 0);
}

/// Events written before audience filters (a campaign with the seed's
/// `Audience::Ru`, users without names or sources) apply as they did: the
/// campaign reaches the live ru users, and its audience reads `lang:ru`.
#[tokio::test]
async fn a_stream_from_before_filters_projects_as_before() {
    use courier_core::proto::v1::{CampaignStarted, UserBlocked};
    let (env, mut client) = events_only().await;
    let campaign = uuid::Uuid::now_v7();
    let id = campaign.to_string();
    let user = |user_id, language: Language| {
        Event::new(Payload::UserRegistered(UserRegistered {
            user_id,
            chat_id: user_id,
            language: language.into(),
            language_chosen: true,
            ..Default::default()
        }))
    };
    let events = [
        user(1, Language::Ru),
        user(2, Language::Ru),
        user(3, Language::En),
        user(4, Language::Ru),
        Event::new(Payload::UserBlocked(UserBlocked {
            user_id: 4,
            reason: "blocked the bot".into(),
            ..Default::default()
        })),
        Event::new(created_for(&id, Audience::Ru, "old")),
        Event::new(Payload::CampaignStarted(CampaignStarted {
            campaign_id: id.clone(),
            started_by: 1,
        })),
    ];
    apply_each_alone(&mut client, &env.topology(), events).await;
    let row = client
        .query_one(
            "SELECT audience, audience_size FROM campaigns WHERE campaign_id = $1",
            &[&campaign],
        )
        .await
        .unwrap();
    let (audience, size): (String, Option<i32>) = (row.get(0), row.get(1));
    assert_eq!((audience.as_str(), size), ("lang:ru", Some(2)));
    let users = client
        .query(
            "SELECT source, first_name, tags, opted_out FROM users ORDER BY user_id",
            &[],
        )
        .await
        .unwrap();
    for row in users {
        let (source, first_name, tags, opted_out): (Option<String>, String, Vec<String>, bool) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        assert_eq!(
            (source, first_name.as_str(), tags.len(), opted_out),
            (None, "", 0, false)
        );
    }
}

/// What courier learns about a user: tags (sorted, once each), the first
/// source only, names refreshed by activity (kept when an event carries
/// none), activity times, opting out and back in.
#[tokio::test]
async fn user_facts_accumulate_as_the_events_say() {
    use courier_core::proto::v1::{
        Names, UserActive, UserOptedIn, UserOptedOut, UserTagged, UserUntagged,
    };
    let env = TestEnv::new().await;
    let pool = env.pool().await;
    let mut client = pool.get().await.unwrap();
    projection::checkpoints(&client, &["EVENTS"]).await.unwrap();
    let names = |first: &str| {
        Some(Names {
            first_name: first.into(),
            last_name: "Lee".into(),
            username: "ann".into(),
        })
    };
    let registered = |source: &str, names| {
        Payload::UserRegistered(UserRegistered {
            user_id: 1,
            chat_id: 1,
            language: Language::En.into(),
            source: source.into(),
            names,
            ..Default::default()
        })
    };
    let tagged = |tag: &str| {
        Payload::UserTagged(UserTagged {
            user_id: 1,
            tag: tag.into(),
            tagged_by: 0,
            ..Default::default()
        })
    };
    let payloads = [
        registered("ad_spring", names("Ann")),
        tagged("vip"),
        tagged("beta"),
        tagged("vip"),
        Payload::UserUntagged(UserUntagged {
            user_id: 1,
            tag: "beta".into(),
            untagged_by: 0,
            ..Default::default()
        }),
        tagged("gold"),
        Payload::UserOptedOut(UserOptedOut {
            user_id: 1,
            ..Default::default()
        }),
        // A second /start from another link, from an older bot (no names).
        registered("blog", None),
        Payload::UserActive(UserActive {
            user_id: 1,
            names: names("Анна"),
            ..Default::default()
        }),
    ];
    // One a day from 2026-01-02.
    let events = (1..).zip(payloads).map(|(day, payload)| {
        let mut event = Event::new(payload);
        event.occurred_at_ms = 1_767_225_600_000 + day * 86_400_000;
        event
    });
    apply_each_alone(&mut client, &env.topology(), events).await;
    let row = client
        .query_one(
            "SELECT tags, source, first_name, last_name, username, opted_out,
                    registered_at::date::text, last_active_at::date::text
             FROM users WHERE user_id = 1",
            &[],
        )
        .await
        .unwrap();
    let tags: Vec<String> = row.get(0);
    assert_eq!(tags, ["gold", "vip"]);
    assert_eq!(
        row.get::<_, Option<String>>(1).as_deref(),
        Some("ad_spring")
    );
    let names: (String, String, String) = (row.get(2), row.get(3), row.get(4));
    assert_eq!(names, ("Анна".into(), "Lee".into(), "ann".into()));
    assert!(row.get::<_, bool>(5), "opted out");
    let (joined, active): (String, String) = (row.get(6), row.get(7));
    assert_eq!(
        (joined.as_str(), active.as_str()),
        ("2026-01-02", "2026-01-10")
    );

    let opted_in = Event::new(Payload::UserOptedIn(UserOptedIn {
        user_id: 1,
        ..Default::default()
    }))
    .encode_to_vec();
    let subject = env.topology().user_subject(DEFAULT_BOT, 1);
    let message = StreamMessage {
        stream: "EVENTS",
        seq: 10,
        subject: &subject,
        headers: None,
        payload: &opted_in,
    };
    apply_alone(&mut client, &message).await;
    let opted_out: bool = client
        .query_one("SELECT opted_out FROM users WHERE user_id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!opted_out);
}

/// Registrations and tags are written together when a batch holds many
/// (an import, a replay): the read model must be what applying the events
/// one by one gives, whatever the batch mixes (a user's second
/// registration, tags before and after, a campaign start in between).
#[tokio::test]
async fn user_events_in_one_batch_project_as_one_by_one() {
    use courier_core::proto::v1::{
        CampaignCreated, CampaignStarted, Content, Names, UserTagged, UserUntagged,
    };
    let env = TestEnv::new().await;
    let campaign = uuid::Uuid::now_v7().to_string();
    let registered = |user_id, language: Language, chosen, first: &str| {
        Payload::UserRegistered(UserRegistered {
            user_id,
            chat_id: user_id,
            language: language.into(),
            language_chosen: chosen,
            source: format!("from_{user_id}"),
            names: Some(Names {
                first_name: first.into(),
                ..Names::default()
            }),
            ..Default::default()
        })
    };
    let tagged = |user_id, tag: &str| {
        Payload::UserTagged(UserTagged {
            user_id,
            tag: tag.into(),
            tagged_by: 0,
            ..Default::default()
        })
    };
    let payloads = [
        registered(1, Language::Ru, true, "Анна"),
        registered(2, Language::En, false, "Bob"),
        tagged(1, "vip"),
        tagged(2, "vip"),
        registered(1, Language::En, false, ""),
        tagged(1, "beta"),
        Payload::UserUntagged(UserUntagged {
            user_id: 2,
            tag: "vip".into(),
            untagged_by: 0,
            ..Default::default()
        }),
        Payload::CampaignCreated(CampaignCreated {
            campaign_id: campaign.clone(),
            created_by: 1,
            content: Some(Content {
                text: "hi".into(),
                ..Default::default()
            }),
            filter: Some(courier_core::audience::parse("tag:vip").unwrap()),
            ..Default::default()
        }),
        Payload::CampaignStarted(CampaignStarted {
            campaign_id: campaign.clone(),
            started_by: 1,
        }),
        registered(3, Language::Ru, false, "Вера"),
        tagged(3, "vip"),
        tagged(3, "vip"),
        tagged(3, "bad tag!"),
    ];
    let events: Vec<(String, Vec<u8>)> = payloads
        .into_iter()
        .enumerate()
        .map(|(i, payload)| {
            let subject = payload.subject(&env.topology());
            let mut event = Event::new(payload);
            event.occurred_at_ms = 1_767_225_600_000 + i as i64 * 1000;
            (subject, event.encode_to_vec())
        })
        .collect();
    let mut states = Vec::new();
    for together in [false, true] {
        let database = env.another_database(&format!("together_{together}")).await;
        let pool = courier_core::db::pool(&database).unwrap();
        courier_core::db::migrate(&pool).await.unwrap();
        let mut client = pool.get().await.unwrap();
        projection::checkpoints(&client, &["EVENTS"]).await.unwrap();
        let messages: Vec<StreamMessage> = events
            .iter()
            .enumerate()
            .map(|(i, (subject, payload))| StreamMessage {
                stream: "EVENTS",
                seq: i as u64 + 1,
                subject,
                headers: None,
                payload,
            })
            .collect();
        if together {
            let mut batch = Batch::begin(&mut client, "EVENTS").await.unwrap();
            for message in &messages {
                batch.apply_event(message).await.unwrap();
            }
            batch.commit().await.unwrap();
        } else {
            for message in &messages {
                apply_alone(&mut client, message).await;
            }
        }
        states.push(dump(&client).await.unwrap());
    }
    assert_eq!(states[0], states[1]);
    let text = format!("{:?}", states[0]);
    assert!(text.contains("bad tag!"), "the bad tag is parked: {text}");
}

/// The delivery SLO excludes pauses: each pause's length, from the events'
/// own times, adds up in the read model (a replay adds up the same).
#[tokio::test]
async fn pauses_add_up_from_the_events_times() {
    use courier_core::proto::v1::{CampaignPaused, CampaignResumed, CampaignStarted};
    let (env, mut client) = events_only().await;
    let campaign = uuid::Uuid::now_v7();
    let id = campaign.to_string();
    let at = |seconds: i64, payload| Event {
        occurred_at_ms: 1_800_000_000_000 + seconds * 1000,
        ..Event::new(payload)
    };
    let pause = || {
        Payload::CampaignPaused(CampaignPaused {
            campaign_id: id.clone(),
            paused_by: 1,
            reason: String::new(),
        })
    };
    let resume = || {
        Payload::CampaignResumed(CampaignResumed {
            campaign_id: id.clone(),
            resumed_by: 1,
        })
    };
    let events = [
        at(0, created_for(&id, Audience::All, "paused twice")),
        at(
            1,
            Payload::CampaignStarted(CampaignStarted {
                campaign_id: id.clone(),
                started_by: 1,
            }),
        ),
        at(10, pause()),
        at(70, resume()),
        at(100, pause()),
        at(105, resume()),
        at(200, pause()),
    ];
    apply_each_alone(&mut client, &env.topology(), events).await;
    let row = client
        .query_one(
            "SELECT paused_ms, paused_at IS NOT NULL FROM campaigns WHERE campaign_id = $1",
            &[&campaign],
        )
        .await
        .unwrap();
    let (paused_ms, paused_now): (i64, bool) = (row.get(0), row.get(1));
    assert_eq!(paused_ms, 65_000, "60 s and 5 s of ended pauses");
    assert!(paused_now, "the third pause has not ended");
}

/// A replay may bring an amendment's outcome before the campaign's start:
/// it waits for the recipient's row like a send's, and is then recorded
/// once.
#[tokio::test]
async fn an_amendment_outcome_waits_for_its_recipient_then_is_recorded_once() {
    use courier_core::proto::v1::{
        Amend, AmendKind, CampaignStarted, Delivered, DeliveryOutcome, delivery_outcome,
    };
    let (env, mut client) = events_only().await;
    projection::checkpoints(&client, &["OUTCOMES"])
        .await
        .unwrap();
    let campaign = uuid::Uuid::now_v7().to_string();
    let amend = Amend {
        kind: AmendKind::Delete.into(),
        message_id: 70,
        revision: 0,
        ..Default::default()
    };
    let outcome = DeliveryOutcome {
        campaign_id: campaign.clone(),
        user_id: 7,
        chat_id: 7,
        occurred_at_ms: 1_700_000_000_000,
        attempts: 1,
        amend: Some(amend.clone()),
        result: Some(delivery_outcome::Result::Delivered(Delivered {
            message_id: 70,
            revision: 0,
            ..Default::default()
        })),
    }
    .encode_to_vec();
    let subject = env.topology().amend_outcome_subject(&campaign, 7, &amend);
    let message = StreamMessage {
        stream: "OUTCOMES",
        seq: 1,
        subject: &subject,
        headers: None,
        payload: &outcome,
    };
    let apply = async |client: &mut tokio_postgres::Client| {
        let mut batch = Batch::begin(client, "OUTCOMES").await.unwrap();
        let applied = batch.apply_outcome(&message, false).await.unwrap();
        batch.commit().await.unwrap();
        applied
    };
    assert_eq!(apply(&mut client).await, Applied::UnknownRecipient);

    let started = Payload::CampaignStarted(CampaignStarted {
        campaign_id: campaign.clone(),
        started_by: 1,
    });
    let events = [
        registered(7),
        Event::new(created_for(&campaign, Audience::Ru, "hi")),
        Event::new(started),
    ];
    apply_each_alone(&mut client, &env.topology(), events).await;
    let id = uuid::Uuid::parse_str(&campaign).unwrap();
    assert_eq!(apply(&mut client).await, Applied::Changed(Some(id)));
    assert_eq!(apply(&mut client).await, Applied::AlreadyApplied);
    let recorded: i64 = client
        .query_one(
            "SELECT count(*) FROM amendments WHERE campaign_id = $1 AND user_id = 7
             AND kind = 'delete' AND result = 'done'",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(recorded, 1);
}

/// Users are per bot: the same Telegram user registered with two bots is
/// two users, each with their own language, tags, liveness and admin
/// rights, and a campaign's audience is drawn from its own bot's users.
/// Applied in one batch, where registrations and tags wait to be written
/// together.
#[tokio::test]
async fn a_user_of_two_bots_is_two_users() {
    use courier_core::proto::v1::{
        CampaignCreated, CampaignStarted, Content, UserBlocked, UserTagged,
    };
    const BOT: i64 = 7;
    let (env, mut client) = events_only().await;
    let registered_with = |bot_id, language: Language| {
        Payload::UserRegistered(UserRegistered {
            user_id: 1,
            chat_id: 1,
            language: language.into(),
            bot_id,
            ..Default::default()
        })
    };
    let campaign_of = |bot_id, filter: &str| {
        let campaign_id = uuid::Uuid::now_v7().to_string();
        let created = Payload::CampaignCreated(CampaignCreated {
            campaign_id: campaign_id.clone(),
            created_by: 1,
            content: Some(Content {
                text: "hi".into(),
                ..Default::default()
            }),
            filter: Some(courier_core::audience::parse(filter).unwrap()),
            bot_id,
            ..Default::default()
        });
        let started = Payload::CampaignStarted(CampaignStarted {
            campaign_id: campaign_id.clone(),
            started_by: 1,
        });
        (campaign_id, [created, started])
    };
    let (of_default, default_events) = campaign_of(DEFAULT_BOT, "all");
    let (of_bot, bot_events) = campaign_of(BOT, "tag:vip");
    let payloads = [
        registered_with(DEFAULT_BOT, Language::Ru),
        registered_with(BOT, Language::En),
        Payload::UserTagged(UserTagged {
            user_id: 1,
            tag: "vip".into(),
            bot_id: BOT,
            ..Default::default()
        }),
        Payload::UserBlocked(UserBlocked {
            user_id: 1,
            bot_id: DEFAULT_BOT,
            ..Default::default()
        }),
        Payload::AdminGranted(AdminGranted {
            user_id: 1,
            granted_by: 9,
            bot_id: BOT,
        }),
    ]
    .into_iter()
    .chain(default_events)
    .chain(bot_events);
    let events: Vec<(String, Vec<u8>)> = payloads
        .map(|payload| {
            let subject = payload.subject(&env.topology());
            (subject, Event::new(payload).encode_to_vec())
        })
        .collect();
    let mut batch = Batch::begin(&mut client, "EVENTS").await.unwrap();
    for (seq, (subject, payload)) in (1..).zip(&events) {
        let message = StreamMessage {
            stream: "EVENTS",
            seq,
            subject,
            headers: None,
            payload,
        };
        assert_ne!(batch.apply_event(&message).await.unwrap(), Applied::Parked);
    }
    batch.commit().await.unwrap();

    let users: Vec<(i64, String, bool, Vec<String>)> = client
        .query(
            "SELECT bot_id, language, is_alive, tags FROM users WHERE user_id = 1 ORDER BY bot_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)))
        .collect();
    assert_eq!(
        users,
        [
            (DEFAULT_BOT, "ru".into(), false, vec![]),
            (BOT, "en".into(), true, vec!["vip".to_owned()]),
        ]
    );
    let admins: Vec<(i64, i64)> = client
        .query("SELECT bot_id, user_id FROM admins", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(admins, [(BOT, 1)]);
    let audience = |campaign: String| {
        let client = &client;
        async move {
            let id: uuid::Uuid = campaign.parse().unwrap();
            client
                .query_one(
                    "SELECT audience_size FROM campaigns WHERE campaign_id = $1",
                    &[&id],
                )
                .await
                .unwrap()
                .get::<_, Option<i32>>(0)
        }
    };
    assert_eq!(
        audience(of_default).await,
        Some(0),
        "blocked the default bot"
    );
    assert_eq!(audience(of_bot).await, Some(1), "the other bot's vip");
}
