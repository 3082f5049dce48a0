//! What senders know about campaigns, from the event stream alone: no
//! read model, so a lagging projector never delays a send.
//!
//! An ordered consumer on the campaign subjects, starting from each
//! subject's last event, keeps every campaign's status (the last event
//! decides, [`status_after`]) and whether it is sending. A pause or cancel
//! reaches every replica as it is published. A campaign's content is read
//! when its first item comes, by direct gets of the first event on its
//! subject (`CampaignCreated`) and the last on its amend subject (the last
//! edit, [`courier_core::amend`]); a second ordered consumer, on the amend
//! subjects, drops the content an edit or recall makes stale, so the next
//! item reads the new revision.
//!
//! The view also says whether a campaign may share chats with another one
//! sending at the same time ([`Overlap`]): then its sends must claim their
//! chats ([`crate::chat_spacing`]). A campaign that stopped (completed,
//! paused, cancelled) less than the chat spacing ago still counts: its last
//! sends keep their chats busy that long. That answer must never be stale by more
//! than [`FRESH_FOR`]: every [`PROBE_EVERY`] the view asks the stream for
//! its last campaign event, and it is *fresh as of* the time it asked once
//! it has applied that event. A view not fresh within [`FRESH_FOR`] counts
//! every campaign as overlapping. A campaign that starts while another is
//! sending waits [`PROPAGATION`] from its start event before its first send,
//! so every replica that still sends without claiming has not seen it for
//! at most [`FRESH_FOR`], and its records are in the bucket by then.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull::OrderedConfig};
use courier_core::amend::{self, Revision};
use courier_core::campaign::CampaignStatus;
use courier_core::commands::{CampaignCommands, CommandError, status_after};
use courier_core::event;
use courier_core::proto::v1::event::Payload;
use courier_core::proto::v1::{
    AmendKind, CampaignOptions, Content as CampaignContent, SendMessage,
};
use courier_core::send_limits::Lane;
use courier_core::topology::{PULL_EXPIRES, Topology};
use courier_telegram::payload::{self, Call, Template};
use futures::StreamExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The most a view may lag when it says a campaign sends alone: three
/// probes, so one late probe on a busy machine does not make every send
/// claim its chat.
pub const FRESH_FOR: Duration = Duration::from_millis(300);
/// How often the view checks that it has every campaign event, while a
/// campaign may be sending. Each probe is a round trip and a wake-up of a
/// sender that paces a few sends per millisecond: 10 a second cost it
/// less than the 40 it made before (docs/performance-history.md, "Cost per
/// message").
pub const PROBE_EVERY: Duration = Duration::from_millis(100);
/// How long after its start event a campaign that overlaps others waits
/// before its first send: [`FRESH_FOR`], and time for the last unclaimed
/// records of the others to reach the chat bucket.
pub const PROPAGATION: Duration = Duration::from_millis(350);
/// How long an item of a campaign the view does not know yet waits for it
/// before the stream is asked directly.
const VIEW_WAIT: Duration = Duration::from_millis(500);
/// Before the view's consumer is made again after it failed.
const RECREATE_AFTER: Duration = Duration::from_secs(1);

/// A campaign's content, as senders use it.
#[derive(Debug)]
pub struct Campaign {
    /// The calls to make, but for the chat: sends, and edits of a message
    /// delivered earlier to this revision.
    sends: Templates,
    /// A paid campaign's sends without `allow_paid_broadcast`, for while
    /// the bot's Stars cannot pay ([`crate::stars_out`]).
    free_sends: Option<Templates>,
    edits: Templates,
    pub paid: bool,
    /// The content's revision (0 as created, one more per edit).
    pub revision: u32,
    /// Recalled: its messages are being deleted, nothing is sent or edited.
    pub recalled: bool,
    /// The amend subject's last sequence when this was read.
    amend_seq: u64,
}

/// One template for the default content and one per variant.
#[derive(Debug)]
struct Templates {
    default: Template,
    /// Each variant's, by language.
    variants: Vec<(String, Template)>,
}

impl Templates {
    fn new(
        revision: &Revision,
        make: impl Fn(&CampaignContent) -> Result<Template, String>,
    ) -> Result<Templates, String> {
        let template = |content: Option<&CampaignContent>| match content {
            None => Err("the campaign has no content".to_owned()),
            Some(content) => make(content),
        };
        Ok(Templates {
            default: template(Some(&revision.content))?,
            variants: revision
                .variants
                .iter()
                .map(|v| Ok((v.language.clone(), template(v.content.as_ref())?)))
                .collect::<Result<_, String>>()?,
        })
    }

    /// The recipient's variant (fixed when the campaign started), or the
    /// default.
    fn of(&self, item: &SendMessage) -> &Template {
        self.variants
            .iter()
            .find(|(language, _)| *language == item.variant)
            .map_or(&self.default, |(_, template)| template)
    }
}

impl Campaign {
    /// A text campaign at `revision`, for tests of what depends on it.
    #[cfg(test)]
    pub fn for_tests(revision: u32, recalled: bool) -> Campaign {
        let content = CampaignContent {
            kind: courier_core::proto::v1::ContentKind::Text.into(),
            text: "Hello".into(),
            ..Default::default()
        };
        let revision = Revision {
            number: revision,
            content,
            variants: vec![],
        };
        let templates = || {
            Templates::new(&revision, |c| {
                Template::new(c, &Default::default()).map_err(|e| e.to_string())
            })
            .expect("text content makes a template")
        };
        Campaign {
            sends: templates(),
            free_sends: None,
            edits: templates(),
            paid: false,
            revision: revision.number,
            recalled,
            amend_seq: 0,
        }
    }

    /// Messages the call for `item` delivers, as Telegram counts them for
    /// its limits (an album's items; an amendment is one call).
    pub fn messages(&self, item: &SendMessage) -> u32 {
        match item.amend {
            None => self.sends.of(item).messages(),
            Some(_) => 1,
        }
    }

    /// The call that carries out `item`: a send of its variant's content
    /// greeting the recipient by the names the item carries (on `lane`: a
    /// paid campaign on the free lane goes without `allow_paid_broadcast`),
    /// or an edit or deletion of the message it got (every item of an
    /// album).
    pub fn call(&self, item: &SendMessage, lane: Lane) -> Call {
        let names = item.names.as_ref();
        let sends = match (lane, &self.free_sends) {
            (Lane::Free, Some(free_sends)) => free_sends,
            _ => &self.sends,
        };
        match &item.amend {
            None => sends.of(item).call(item.chat_id, names),
            Some(amend) if amend.kind() == AmendKind::Edit => {
                self.edits
                    .of(item)
                    .edit_call(item.chat_id, amend.message_id, names)
            }
            Some(amend) => {
                payload::delete(item.chat_id, amend.message_id, &amend.album_message_ids)
            }
        }
    }
}

/// A campaign's content, or why it cannot be sent.
pub type Content = Result<Arc<Campaign>, String>;

/// Who else may be sending to a campaign's chats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlap {
    /// Nobody: the campaign is the only one sending.
    Alone,
    /// Other campaigns are sending too (or this replica cannot tell).
    Others,
    /// Others are sending, and this campaign started so recently that some
    /// replica may not know yet, and would not check its claims: wait.
    JustStarted(Duration),
}

/// A campaign as the view knows it.
#[derive(Debug, Clone, Copy)]
struct Known {
    status: CampaignStatus,
    /// When its last event was published (the server's clock).
    since: SystemTime,
    /// Its bot, once seen (its `CampaignCreated`, or its content read).
    /// Chats are per bot, so only a campaign of the same bot overlaps; one
    /// of a bot not known yet might be the same.
    bot: Option<i64>,
}

/// Every campaign's status, folded from the stream, and how fresh it is.
/// Pure.
#[derive(Debug, Default)]
struct View {
    campaigns: HashMap<Uuid, Known>,
    /// Those sending, or stopped less than [`View::linger`] ago: the only
    /// ones a send's overlap looks at (the rest may be many).
    active: HashMap<Uuid, Known>,
    /// The stream sequence of the last campaign event applied.
    applied: u64,
    /// Every campaign event published before this time is applied.
    fresh_as_of: Option<SystemTime>,
    /// A probe's answer not applied yet: the last campaign event's
    /// sequence, and when the probe asked.
    probe: Option<(u64, SystemTime)>,
    /// How long a stopped campaign still counts as sending: its last sends
    /// keep their chats busy for the chat spacing.
    linger: Duration,
}

impl View {
    fn apply(
        &mut self,
        seq: u64,
        campaign: Uuid,
        status: CampaignStatus,
        published: SystemTime,
        bot: Option<i64>,
    ) {
        let known = Known {
            status,
            since: published,
            bot: bot.or_else(|| self.campaigns.get(&campaign).and_then(|known| known.bot)),
        };
        self.campaigns.insert(campaign, known);
        self.active.insert(campaign, known);
        self.applied_up_to(seq);
    }

    /// Campaign `campaign` is bot `bot`'s.
    fn learn_bot(&mut self, campaign: Uuid, bot: i64) {
        for known in [&mut self.campaigns, &mut self.active] {
            if let Some(known) = known.get_mut(&campaign) {
                known.bot = Some(bot);
            }
        }
    }

    /// Events up to `seq` are applied (some need no change).
    fn applied_up_to(&mut self, seq: u64) {
        self.applied = self.applied.max(seq);
        if let Some((last, asked)) = self.probe
            && self.applied >= last
        {
            self.fresh_as_of = Some(asked);
            self.probe = None;
        }
    }

    /// A probe that asked at `asked` found `last` the last campaign event.
    fn probed(&mut self, last: u64, asked: SystemTime) {
        if self.probe.is_none() {
            self.probe = Some((last, asked));
        }
        self.applied_up_to(self.applied);
        let linger = self.linger;
        self.active
            .retain(|_, known| may_still_send(known, asked, linger));
    }

    /// The bots of the campaigns sending, those whose bot the view knows.
    fn sending_bots(&self) -> impl Iterator<Item = i64> + '_ {
        self.active
            .values()
            .filter(|known| known.status == CampaignStatus::Sending)
            .filter_map(|known| known.bot)
    }

    fn fresh(&self, now: SystemTime) -> bool {
        self.fresh_as_of
            .is_some_and(|at| now.duration_since(at).unwrap_or_default() <= FRESH_FOR)
    }

    /// Who else may send to the chats of bot `bot`'s `campaign`.
    fn overlap(&self, campaign: Uuid, bot: i64, now: SystemTime) -> Overlap {
        if !self.fresh(now) {
            return Overlap::Others;
        }
        let started = self.campaigns.get(&campaign).map(|known| known.since);
        let mut others = self
            .active
            .iter()
            .filter(|(id, known)| {
                **id != campaign
                    && known.bot.is_none_or(|other| other == bot)
                    && may_still_send(known, now, self.linger)
            })
            .map(|(_, known)| known)
            .peekable();
        if others.peek().is_none() {
            return Overlap::Alone;
        }
        // Sends of a campaign that was sending first may not know this one
        // yet (and not claim): this one waits until they do. One that
        // started later waits for this one instead.
        let Some(first) = others
            .filter(|known| known.status == CampaignStatus::Sending)
            .map(|known| known.since)
            .min()
        else {
            return Overlap::Others;
        };
        let known_everywhere = match started {
            // Not in this view yet: newer than anything it knows.
            None => Some(now + PROPAGATION),
            Some(since) if first <= since => Some(since + PROPAGATION),
            Some(_) => None,
        };
        match known_everywhere.and_then(|at| at.duration_since(now).ok()) {
            Some(wait) if !wait.is_zero() => Overlap::JustStarted(wait),
            _ => Overlap::Others,
        }
    }
}

/// Whether a campaign may still reach a chat within the chat spacing
/// (`linger`): sending, or stopped less than that ago.
fn may_still_send(known: &Known, now: SystemTime, linger: Duration) -> bool {
    known.status == CampaignStatus::Sending
        || now.duration_since(known.since).unwrap_or_default() < linger
}

pub struct Campaigns {
    view: std::sync::RwLock<View>,
    changed: Notify,
    caught_up: Arc<AtomicBool>,
    content: tokio::sync::RwLock<HashMap<Uuid, Content>>,
    /// The sequence of the last amendment seen of each campaign amended
    /// while this replica runs: content read before it is stale.
    amended: std::sync::Mutex<HashMap<Uuid, u64>>,
    events: jetstream::stream::Stream,
    client: async_nats::Client,
    commands: CampaignCommands,
    topology: Topology,
}

impl Campaigns {
    pub async fn new(
        js: &jetstream::Context,
        client: async_nats::Client,
        topology: Topology,
        commands: CampaignCommands,
        chat_spacing: Duration,
    ) -> anyhow::Result<Arc<Campaigns>> {
        let caught_up = Arc::new(AtomicBool::new(false));
        let ready = caught_up.clone();
        courier_core::health::watched_check("campaign view", move || {
            (!ready.load(Ordering::Relaxed)).then(|| "catching up on campaign events".to_owned())
        });
        Ok(Arc::new(Campaigns {
            view: std::sync::RwLock::new(View {
                linger: chat_spacing,
                ..View::default()
            }),
            changed: Notify::new(),
            caught_up,
            content: tokio::sync::RwLock::new(HashMap::new()),
            amended: std::sync::Mutex::new(HashMap::new()),
            events: js.get_stream(topology.events_stream()).await?,
            client,
            commands,
            topology,
        }))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, View> {
        self.view
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, View> {
        self.view
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Keeps the view current, and knows how fresh it is, until
    /// `shutdown`.
    pub async fn follow(self: Arc<Self>, shutdown: CancellationToken) {
        tokio::join!(
            self.follow_events(&shutdown),
            self.probe(&shutdown),
            self.follow_amendments(&shutdown)
        );
    }

    /// Drops the content an amendment makes stale, as amendments come.
    /// Every time the consumer is made (again), all content is dropped:
    /// amendments published meanwhile were not seen.
    async fn follow_amendments(&self, shutdown: &CancellationToken) {
        while !shutdown.is_cancelled() {
            let followed = async {
                let consumer = self
                    .events
                    .create_consumer(OrderedConfig {
                        filter_subject: self.topology.amend_events(),
                        deliver_policy: DeliverPolicy::New,
                        max_expires: PULL_EXPIRES,
                        ..Default::default()
                    })
                    .await?;
                self.content.write().await.clear();
                let mut messages = consumer.messages().await?;
                while let Some(message) = messages.next().await {
                    let message = message?;
                    let seq = message
                        .info()
                        .map_err(|e| anyhow::anyhow!("{e}"))?
                        .stream_sequence;
                    if let Ok((_, _, payload)) = event::decode(&message.payload)
                        && let Some(campaign) = campaign_of(&payload)
                    {
                        self.lock_amended().insert(campaign, seq);
                        self.content.write().await.remove(&campaign);
                    }
                }
                anyhow::bail!("the amendments consumer ended")
            };
            if let Err(error) = shutdown
                .run_until_cancelled(followed)
                .await
                .unwrap_or(Ok(()))
            {
                tracing::warn!(error = format!("{error:#}"), "following amendments");
            }
            shutdown
                .run_until_cancelled(tokio::time::sleep(RECREATE_AFTER))
                .await;
        }
    }

    fn lock_amended(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, u64>> {
        self.amended
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies campaign events as they come, making the consumer again
    /// whenever it fails (a NATS restart).
    async fn follow_events(&self, shutdown: &CancellationToken) {
        while !shutdown.is_cancelled() {
            if let Err(error) = shutdown
                .run_until_cancelled(self.follow_once())
                .await
                .unwrap_or(Ok(()))
            {
                tracing::warn!(error = format!("{error:#}"), "following campaign events");
            }
            self.set_caught_up(false);
            shutdown
                .run_until_cancelled(tokio::time::sleep(RECREATE_AFTER))
                .await;
        }
    }

    async fn follow_once(&self) -> anyhow::Result<()> {
        let consumer = self
            .events
            .create_consumer(OrderedConfig {
                filter_subject: self.topology.campaign_events(),
                deliver_policy: DeliverPolicy::LastPerSubject,
                max_expires: PULL_EXPIRES,
                ..Default::default()
            })
            .await?;
        if consumer.cached_info().num_pending == 0 {
            self.set_caught_up(true);
        }
        let mut messages = consumer.messages().await?;
        while let Some(message) = messages.next().await {
            let message = message?;
            let info = message.info().map_err(|e| anyhow::anyhow!("{e}"))?;
            let (pending, seq) = (info.pending, info.stream_sequence);
            let published = SystemTime::from(info.published);
            match event::decode(&message.payload) {
                Ok((_, _, payload)) => {
                    self.apply(seq, &payload, published);
                    self.learn_bot_of_sending(&payload).await;
                }
                Err(error) => {
                    tracing::warn!(%error, "skipped an unreadable campaign event");
                    self.write().applied_up_to(seq);
                }
            }
            if pending == 0 {
                self.set_caught_up(true);
            }
        }
        anyhow::bail!("the campaign events consumer ended")
    }

    /// Every [`PROBE_EVERY`], asks the stream for its last campaign event;
    /// the view is fresh as of the asking once it has applied that event.
    /// With no campaign sending (nor stopped within the chat spacing) no
    /// send asks whether it is alone: an idle sender waits for the view to
    /// change instead, and probes at once when a campaign starts.
    async fn probe(&self, shutdown: &CancellationToken) {
        let mut every = tokio::time::interval(PROBE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Enabled before the view is read, so no change is missed.
            let changed = self.changed();
            let next = if self.read().active.is_empty() {
                shutdown.run_until_cancelled(changed).await
            } else {
                shutdown.run_until_cancelled(every.tick()).await.map(drop)
            };
            if next.is_none() {
                return;
            }
            if self.read().active.is_empty() {
                continue;
            }
            let asked = SystemTime::now();
            match self.last_campaign_event().await {
                Ok(last) => self.write().probed(last, asked),
                // Unanswered, the view goes stale and sends claim their chats.
                Err(error) => tracing::debug!(%error, "probing the campaign events"),
            }
        }
    }

    /// The stream sequence of the last campaign event (0 if none), by a
    /// direct get of the last message on the campaign subjects.
    async fn last_campaign_event(&self) -> anyhow::Result<u64> {
        let request = format!(
            r#"{{"last_by_subj":"{}"}}"#,
            self.topology.campaign_events()
        );
        let answer = self
            .client
            .request(
                format!("$JS.API.DIRECT.GET.{}", self.topology.events_stream()),
                request.into(),
            )
            .await?;
        if answer.status == Some(async_nats::StatusCode::NOT_FOUND) {
            return Ok(0);
        }
        answer
            .headers
            .as_ref()
            .and_then(|headers| headers.get(async_nats::header::NATS_SEQUENCE))
            .and_then(|seq| seq.as_str().parse().ok())
            .ok_or_else(|| anyhow::anyhow!("a direct get answered without a sequence"))
    }

    fn apply(&self, seq: u64, payload: &Payload, published: SystemTime) {
        let (Some(status), Some(campaign)) = (status_after(payload), campaign_of(payload)) else {
            self.write().applied_up_to(seq);
            return;
        };
        let bot = match payload {
            Payload::CampaignCreated(created) => Some(created.bot_id),
            _ => None,
        };
        self.write().apply(seq, campaign, status, published, bot);
        self.changed.notify_waiters();
        if status.is_final()
            && let Ok(mut content) = self.content.try_write()
        {
            content.remove(&campaign);
        }
    }

    /// Reads a sending campaign's content (which names its bot) when the
    /// view saw only its last event (one that was sending before this
    /// replica started): until then, every send of every bot would claim
    /// its chat.
    async fn learn_bot_of_sending(&self, payload: &Payload) {
        let Some(campaign) = campaign_of(payload) else {
            return;
        };
        let unknown =
            self.read().campaigns.get(&campaign).is_some_and(|known| {
                known.status == CampaignStatus::Sending && known.bot.is_none()
            });
        if unknown && let Err(error) = self.content(campaign).await {
            tracing::debug!(%campaign, error = format!("{error:#}"), "reading a campaign's bot");
        }
    }

    fn set_caught_up(&self, caught_up: bool) {
        self.caught_up.store(caught_up, Ordering::Relaxed);
    }

    /// The campaign's status. One the view does not know yet is waited for
    /// briefly, then asked of the stream directly.
    pub async fn status(&self, id: Uuid) -> Result<CampaignStatus, CommandError> {
        let deadline = tokio::time::Instant::now() + VIEW_WAIT;
        loop {
            let changed = self.changed.notified();
            if let Some(known) = self.read().campaigns.get(&id) {
                return Ok(known.status);
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                break;
            }
        }
        let (status, _) = self.commands.status(id).await?;
        Ok(status)
    }

    /// The bots with a campaign sending now.
    pub fn sending_bots(&self) -> Vec<i64> {
        self.read().sending_bots().collect()
    }

    /// Resolves at the view's next change (enable it before reading the
    /// view, to miss none).
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// Who else may send to the chats of bot `bot`'s campaign `id` now.
    pub fn overlap(&self, id: Uuid, bot: i64) -> Overlap {
        self.read().overlap(id, bot, SystemTime::now())
    }

    /// Whether campaign `id` is still the only one of bot `bot` sending; if
    /// in doubt, no (the send claims its chat).
    pub fn still_alone(&self, id: Uuid, bot: i64) -> bool {
        self.overlap(id, bot) == Overlap::Alone
    }

    /// The campaign's content as it stands: `CampaignCreated`'s, or its
    /// last edit's. Read once, and again after an amendment.
    pub async fn content(&self, id: Uuid) -> anyhow::Result<Content> {
        let seen = self.lock_amended().get(&id).copied().unwrap_or(0);
        if let Some(content) = self.content.read().await.get(&id)
            && content.as_ref().map_or(true, |c| c.amend_seq >= seen)
        {
            return Ok(content.clone());
        }
        let created = match amend::read_created(&self.events, &self.topology, id).await {
            Ok(created) => created,
            Err(CommandError::NotFound(_) | CommandError::Unreadable(_)) => {
                return Ok(Err(NOT_CREATED.to_owned()));
            }
            Err(error) => return Err(error.into()),
        };
        self.write().learn_bot(id, created.bot_id);
        self.changed.notify_waiters();
        let amended = amend::read_amended(&self.events, &self.topology, id).await?;
        let options = created.options.unwrap_or_default();
        let revision = Revision::of(&created, amended.edit.as_ref());
        let markup_only = amended.edit.as_ref().is_some_and(|e| e.markup_only);
        let content = Templates::new(&revision, |content| {
            Template::new(content, &options).map_err(|e| e.to_string())
        })
        .and_then(|sends| {
            let edits = Templates::new(&revision, |content| {
                Template::edit(content, markup_only).map_err(|e| e.to_string())
            })?;
            let unpaid = CampaignOptions {
                paid_broadcast: false,
                ..options
            };
            let free_sends = match options.paid_broadcast {
                true => Some(Templates::new(&revision, |content| {
                    Template::new(content, &unpaid).map_err(|e| e.to_string())
                })?),
                false => None,
            };
            Ok(Arc::new(Campaign {
                sends,
                free_sends,
                edits,
                paid: options.paid_broadcast,
                revision: revision.number,
                recalled: amended.recalled,
                amend_seq: amended.last_seq,
            }))
        });
        self.content.write().await.insert(id, content.clone());
        Ok(content)
    }
}

/// Why a campaign whose first event is not its creation cannot be sent.
const NOT_CREATED: &str = "its CampaignCreated event is not in the event stream";

/// The campaign a campaign event is about.
fn campaign_of(payload: &Payload) -> Option<Uuid> {
    let id = match payload {
        Payload::CampaignCreated(e) => &e.campaign_id,
        Payload::CampaignScheduled(e) => &e.campaign_id,
        Payload::CampaignApprovalRequested(e) => &e.campaign_id,
        Payload::CampaignStarted(e) => &e.campaign_id,
        Payload::CampaignPaused(e) => &e.campaign_id,
        Payload::CampaignResumed(e) => &e.campaign_id,
        Payload::CampaignCancelled(e) => &e.campaign_id,
        Payload::CampaignCompleted(e) => &e.campaign_id,
        Payload::CampaignEdited(e) => &e.campaign_id,
        Payload::CampaignRecalled(e) => &e.campaign_id,
        _ => return None,
    };
    Uuid::parse_str(id).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Uuid = Uuid::from_u128(1);
    const B: Uuid = Uuid::from_u128(2);

    /// A view that has applied every event published before `t0`.
    fn fresh_at(t0: SystemTime) -> View {
        let mut view = View {
            linger: Duration::from_secs(1),
            ..View::default()
        };
        view.probed(0, t0);
        view
    }

    #[test]
    fn a_campaign_sending_alone_skips_the_claims() {
        let t0 = SystemTime::now();
        let mut view = fresh_at(t0);
        view.apply(1, A, CampaignStatus::Sending, t0, None);
        let long_ago = t0 - Duration::from_secs(10);
        view.apply(2, B, CampaignStatus::Completed, long_ago, None);
        assert_eq!(view.overlap(A, 0, t0), Overlap::Alone);
    }

    #[test]
    fn a_campaign_starting_beside_another_waits_until_every_replica_knows() {
        let t0 = SystemTime::now();
        let mut view = fresh_at(t0);
        view.apply(1, A, CampaignStatus::Sending, t0, None);
        let started = t0 + Duration::from_millis(50);
        view.apply(2, B, CampaignStatus::Sending, started, None);
        view.probed(2, started);
        let soon = started + Duration::from_millis(30);
        assert_eq!(
            view.overlap(B, 0, soon),
            Overlap::JustStarted(PROPAGATION - Duration::from_millis(30))
        );
        assert_eq!(view.overlap(B, 0, started + PROPAGATION), Overlap::Others);
        assert_eq!(
            view.overlap(A, 0, soon),
            Overlap::Others,
            "the older one claims at once"
        );
    }

    #[test]
    fn only_a_campaign_of_the_same_bot_or_of_a_bot_not_known_overlaps() {
        let t0 = SystemTime::now();
        let mut view = fresh_at(t0);
        view.apply(1, A, CampaignStatus::Sending, t0, Some(7));
        view.apply(2, B, CampaignStatus::Sending, t0, Some(8));
        assert_eq!(
            view.overlap(A, 7, t0),
            Overlap::Alone,
            "another bot's chats"
        );
        assert_eq!(view.overlap(B, 8, t0), Overlap::Alone);
        // A later event names no bot: the one seen first stays.
        view.apply(3, B, CampaignStatus::Sending, t0, None);
        assert_eq!(view.overlap(A, 7, t0), Overlap::Alone);
        let c = Uuid::from_u128(3);
        view.apply(4, c, CampaignStatus::Sending, t0, None);
        assert_ne!(view.overlap(A, 7, t0), Overlap::Alone, "c may be bot 7's");
        view.learn_bot(c, 9);
        assert_eq!(view.overlap(A, 7, t0), Overlap::Alone);
    }

    #[test]
    fn the_sending_bots_are_the_known_bots_of_the_campaigns_sending() {
        let t0 = SystemTime::now();
        let mut view = fresh_at(t0);
        view.apply(1, A, CampaignStatus::Sending, t0, Some(7));
        view.apply(2, B, CampaignStatus::Paused, t0, Some(8));
        view.apply(3, Uuid::from_u128(3), CampaignStatus::Sending, t0, None);
        assert_eq!(view.sending_bots().collect::<Vec<_>>(), [7]);
        view.apply(4, A, CampaignStatus::Completed, t0, None);
        view.apply(5, B, CampaignStatus::Sending, t0, None);
        assert_eq!(view.sending_bots().collect::<Vec<_>>(), [8]);
    }

    #[test]
    fn a_campaign_stopped_less_than_the_chat_spacing_ago_still_counts() {
        let t0 = SystemTime::now();
        let mut view = fresh_at(t0);
        view.apply(1, A, CampaignStatus::Sending, t0, None);
        view.apply(2, B, CampaignStatus::Sending, t0, None);
        let completed = t0 + Duration::from_secs(5);
        view.apply(3, A, CampaignStatus::Completed, completed, None);
        view.probed(3, completed);
        let soon = completed + Duration::from_millis(10);
        assert_eq!(view.overlap(B, 0, soon), Overlap::Others);
        view.probed(3, completed + view.linger);
        assert_eq!(view.overlap(B, 0, completed + view.linger), Overlap::Alone);
    }

    #[test]
    fn campaigns_stopped_long_ago_leave_the_active_set() {
        let t0 = SystemTime::now();
        let mut view = fresh_at(t0);
        view.apply(1, A, CampaignStatus::Completed, t0, None);
        view.apply(2, B, CampaignStatus::Sending, t0, None);
        view.probed(2, t0 + view.linger);
        assert_eq!(view.active.len(), 1, "{:?}", view.active);
        assert!(view.active.contains_key(&B));
        assert_eq!(view.campaigns.len(), 2, "statuses stay known");
    }

    #[test]
    fn a_view_fresh_too_long_ago_claims_everything() {
        let t0 = SystemTime::now();
        let mut view = fresh_at(t0);
        view.apply(1, A, CampaignStatus::Sending, t0, None);
        assert_eq!(view.overlap(A, 0, t0 + FRESH_FOR), Overlap::Alone);
        let later = t0 + FRESH_FOR + Duration::from_millis(1);
        assert_eq!(view.overlap(A, 0, later), Overlap::Others);
        assert_eq!(
            View::default().overlap(A, 0, t0),
            Overlap::Others,
            "never fresh"
        );
    }

    #[test]
    fn a_view_is_fresh_as_of_a_probe_once_it_applied_what_the_probe_found() {
        let t0 = SystemTime::now();
        let mut view = fresh_at(t0);
        view.apply(1, A, CampaignStatus::Sending, t0, None);
        // Asked later; B's start (seq 2) is on the stream, not in the view.
        let asked = t0 + FRESH_FOR;
        view.probed(2, asked);
        let now = asked + Duration::from_millis(50);
        assert_eq!(view.overlap(A, 0, now), Overlap::Others, "stale meanwhile");
        view.apply(
            2,
            B,
            CampaignStatus::Paused,
            t0 - Duration::from_secs(10),
            None,
        );
        assert_eq!(view.fresh_as_of, Some(asked));
        assert_eq!(view.overlap(A, 0, now), Overlap::Alone);
    }

    #[test]
    fn campaign_events_name_their_campaign() {
        use courier_core::proto::v1::{CampaignPaused, UserBlocked};
        let paused = Payload::CampaignPaused(CampaignPaused {
            campaign_id: A.to_string(),
            ..Default::default()
        });
        assert_eq!(campaign_of(&paused), Some(A));
        assert_eq!(
            campaign_of(&Payload::UserBlocked(UserBlocked::default())),
            None
        );
    }
}
