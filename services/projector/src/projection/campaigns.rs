//! Campaign events: a `campaigns` row from `CampaignCreated`, then each
//! later event moves the row through the state machine
//! ([`courier_core::campaign`]) and does what its status calls for (fix
//! the audience on a start, cancel the recipients left on a cancel).
//!
//! An event the state machine refuses (a second start, a pause of a
//! finished campaign) is applied as nothing but its sequence: it is a fact
//! in the stream, just not one that changes the campaign.

use courier_core::audience::{self, Recipients};
use courier_core::campaign::{CampaignStatus, Transition};
use courier_core::greeting;
use courier_core::proto::campaign_name;
use courier_core::proto::v1::{
    Audience, CampaignApprovalRequested, CampaignCancelled, CampaignCompleted, CampaignCreated,
    CampaignPaused, CampaignResumed, CampaignScheduled, CampaignStarted, Language, Variant,
};
use prost::Message as _;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::{ApplyError, Applying, campaign_uuid, timestamp};

pub(super) async fn created(
    event: &Applying<'_>,
    created: CampaignCreated,
) -> Result<Uuid, ApplyError> {
    let id = campaign_uuid(&created.campaign_id)?;
    // Campaigns from before filters carry the seed's ru / en / all.
    let filter = match (&created.filter, created.audience()) {
        (Some(filter), _) => filter.clone(),
        (None, Audience::Unspecified) => {
            return Err(ApplyError::Poison(format!("campaign {id} has no audience")));
        }
        (None, legacy) => audience::from_legacy(legacy),
    };
    // Stored as text, which the start reads back: a filter whose text does
    // not read back (a language this version does not know) parks now.
    let audience = audience::to_text(&filter);
    if let Err(error) = audience::parse(&audience) {
        return Err(ApplyError::Poison(format!(
            "campaign {id} has audience {audience:?}: {error}"
        )));
    }
    let variants = variant_languages(&created.variants)
        .map_err(|why| ApplyError::Poison(format!("campaign {id}: {why}")))?;
    let content = created.content.unwrap_or_default();
    let options = created.options.unwrap_or_default();
    let personal = std::iter::once(&content)
        .chain(created.variants.iter().filter_map(|v| v.content.as_ref()))
        .any(|content| greeting::is_personal(&content.text));
    event
        .tx
        .execute(
            "INSERT INTO campaigns (campaign_id, created_by, audience, content_kind, content,
                disable_notification, protect_content, paid_broadcast, status, created_at,
                last_event_seq, variants, personal, name, bot_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10, $11, $12, $13, $14)
             ON CONFLICT DO NOTHING",
            &[
                &id,
                &created.created_by,
                &audience,
                &content.kind().code(),
                &content.encode_to_vec(),
                &options.disable_notification,
                &options.protect_content,
                &options.paid_broadcast,
                &event.at,
                &event.seq,
                &variants,
                &personal,
                &campaign_name(&created.title, &content),
                &created.bot_id,
            ],
        )
        .await?;
    Ok(id)
}

/// The languages of a campaign's variants: known ones, once each, each
/// with content.
fn variant_languages(variants: &[Variant]) -> Result<Vec<String>, String> {
    let mut languages: Vec<String> = Vec::new();
    for variant in variants {
        let language = &variant.language;
        if ![Language::Ru, Language::En]
            .iter()
            .any(|l| l.code() == Some(language))
        {
            return Err(format!("a variant's language {language:?} is not ru or en"));
        }
        if languages.contains(language) {
            return Err(format!("two variants for {language}"));
        }
        if variant.content.is_none() {
            return Err(format!("the {language} variant has no content"));
        }
        languages.push(language.clone());
    }
    Ok(languages)
}

/// The audience is fixed now: the live, subscribed users of the campaign's
/// bot matching its filter as of this point of the stream (and "active within N
/// days" counts back from the start's own time), which a replay sees
/// identically because user events share the stream. The start's trace is kept: what the
/// projector publishes about the campaign later continues it.
pub(super) async fn started(
    event: &Applying<'_>,
    started: CampaignStarted,
) -> Result<Uuid, ApplyError> {
    let campaign = transition(event, &started.campaign_id, Transition::Start).await?;
    if campaign.moved {
        // Stored by `created` as a filter's text: it always reads back.
        let filter = audience::parse(&campaign.audience).map_err(|error| {
            ApplyError::Poison(format!(
                "campaign {} has audience {:?}: {error}",
                campaign.id, campaign.audience
            ))
        })?;
        let recipients = Recipients::new(campaign.bot_id, &filter, event.at);
        let (condition, filter_params) = recipients.condition(2);
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&campaign.id];
        params.extend(filter_params);
        // Each recipient's variant is fixed with the audience: their
        // language's, if the campaign has one.
        let size = event
            .tx
            .execute(
                &format!(
                    "INSERT INTO deliveries (campaign_id, user_id, chat_id, status, variant)
                     SELECT $1, user_id, chat_id, 'pending',
                         CASE WHEN language = ANY(c.variants) THEN language ELSE '' END
                     FROM users, (SELECT variants FROM campaigns WHERE campaign_id = $1) AS c
                     WHERE {condition}"
                ),
                &params,
            )
            .await?;
        event
            .tx
            .execute(
                "UPDATE campaigns SET started_at = $2, audience_size = $3, trace_parent = $4
                 WHERE campaign_id = $1",
                &[&campaign.id, &event.at, &(size as i32), &event.trace_parent],
            )
            .await?;
    }
    Ok(campaign.id)
}

/// To start at a set time, or at a new one.
pub(super) async fn scheduled(
    event: &Applying<'_>,
    scheduled: CampaignScheduled,
) -> Result<Uuid, ApplyError> {
    let campaign = transition(event, &scheduled.campaign_id, Transition::Schedule).await?;
    if campaign.moved {
        event
            .tx
            .execute(
                "UPDATE campaigns SET scheduled_at = $2 WHERE campaign_id = $1",
                &[&campaign.id, &timestamp(scheduled.start_at_ms)],
            )
            .await?;
    }
    Ok(campaign.id)
}

/// Waiting for a second admin; who asked is kept to tell approvers.
pub(super) async fn approval_requested(
    event: &Applying<'_>,
    requested: CampaignApprovalRequested,
) -> Result<Uuid, ApplyError> {
    let campaign = transition(event, &requested.campaign_id, Transition::RequestApproval).await?;
    if campaign.moved {
        let starts_at = (requested.start_at_ms > 0).then(|| timestamp(requested.start_at_ms));
        event
            .tx
            .execute(
                "UPDATE campaigns SET approval_requested_by = $2, scheduled_at = $3
                 WHERE campaign_id = $1",
                &[&campaign.id, &requested.requested_by, &starts_at],
            )
            .await?;
    }
    Ok(campaign.id)
}

pub(super) async fn paused(
    event: &Applying<'_>,
    paused: CampaignPaused,
) -> Result<Uuid, ApplyError> {
    let campaign = transition(event, &paused.campaign_id, Transition::Pause).await?;
    if campaign.moved {
        let reason = (!paused.reason.is_empty()).then_some(paused.reason);
        event
            .tx
            .execute(
                "UPDATE campaigns SET status_reason = $2, paused_at = $3, status_by = $4
                 WHERE campaign_id = $1",
                &[&campaign.id, &reason, &event.at, &paused.paused_by],
            )
            .await?;
    }
    Ok(campaign.id)
}

/// Resumed by an admin who saw the refusals: they are counted afresh. The
/// pause's length is kept for the delivery SLO.
pub(super) async fn resumed(
    event: &Applying<'_>,
    resumed: CampaignResumed,
) -> Result<Uuid, ApplyError> {
    let campaign = transition(event, &resumed.campaign_id, Transition::Resume).await?;
    if campaign.moved {
        event
            .tx
            .execute(
                "UPDATE campaigns SET status_reason = NULL, content_refusals = 0,
                     paused_ms = paused_ms
                         + COALESCE((extract(epoch FROM $2 - paused_at) * 1000)::BIGINT, 0),
                     paused_at = NULL, status_by = $3
                 WHERE campaign_id = $1",
                &[&campaign.id, &event.at, &resumed.resumed_by],
            )
            .await?;
    }
    Ok(campaign.id)
}

/// Recipients without an outcome are cancelled; an outcome that arrives
/// for one later (its send was in flight) still counts.
pub(super) async fn cancelled(
    event: &Applying<'_>,
    cancelled: CampaignCancelled,
) -> Result<Uuid, ApplyError> {
    let campaign = transition(event, &cancelled.campaign_id, Transition::Cancel).await?;
    if campaign.moved {
        let recipients = event
            .tx
            .execute(
                "UPDATE deliveries SET status = 'cancelled', finished_at = $2
                 WHERE campaign_id = $1 AND status = 'pending'",
                &[&campaign.id, &event.at],
            )
            .await?;
        event
            .tx
            .execute(
                "UPDATE campaigns SET cancelled = cancelled + $2, finished_at = $3, status_by = $4
                 WHERE campaign_id = $1",
                &[
                    &campaign.id,
                    &(recipients as i32),
                    &event.at,
                    &cancelled.cancelled_by,
                ],
            )
            .await?;
    }
    Ok(campaign.id)
}

pub(super) async fn completed(
    event: &Applying<'_>,
    completed: CampaignCompleted,
) -> Result<Uuid, ApplyError> {
    let campaign = transition(event, &completed.campaign_id, Transition::Complete).await?;
    if campaign.moved {
        event
            .tx
            .execute(
                "UPDATE campaigns SET finished_at = $2 WHERE campaign_id = $1",
                &[&campaign.id, &event.at],
            )
            .await?;
    }
    Ok(campaign.id)
}

/// A campaign after one of its events went through the state machine.
struct Transitioned {
    id: Uuid,
    audience: String,
    /// The bot whose users the audience is drawn from.
    bot_id: i64,
    /// The state machine allowed the event: its status is the new one.
    moved: bool,
}

/// Moves the campaign's status by `transition`, if the state machine
/// allows it. Every event on the campaign's subject moves its
/// `last_event_seq` on, allowed or not, so commands built from the read
/// model carry the right expectation.
async fn transition(
    event: &Applying<'_>,
    campaign_id: &str,
    transition: Transition,
) -> Result<Transitioned, ApplyError> {
    let id = campaign_uuid(campaign_id)?;
    let Some(row) = event
        .tx
        .query_opt(
            "SELECT status, audience, bot_id FROM campaigns WHERE campaign_id = $1 FOR UPDATE",
            &[&id],
        )
        .await?
    else {
        return Err(ApplyError::Poison(format!(
            "campaign {id} was never created"
        )));
    };
    // Not guessed: a status this version does not know (a newer courier's,
    // a hand-edited row) parks the event until an operator corrects the row.
    let status: CampaignStatus = row.get::<_, &str>(0).parse().map_err(|unknown| {
        ApplyError::Poison(format!(
            "campaign {id} has an {unknown} in the read model; correct the row, then retry this event"
        ))
    })?;
    let next = status.apply(transition);
    if let Err(refused) = &next {
        tracing::warn!(campaign = %id, %refused, "ignored an event outside the state machine");
    }
    let status = next.as_ref().map_or(status, |next| *next);
    event
        .tx
        .execute(
            "UPDATE campaigns SET last_event_seq = $2, status = $3 WHERE campaign_id = $1",
            &[&id, &event.seq, &status.as_str()],
        )
        .await?;
    Ok(Transitioned {
        id,
        audience: row.get(1),
        bot_id: row.get(2),
        moved: next.is_ok(),
    })
}
