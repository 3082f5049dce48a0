//! `courierctl bots`: the bots this deployment serves. A token is read from
//! a file or standard input, never from an argument (arguments show in `ps`
//! and shell history); Telegram must know it (getMe) before anything is
//! kept. The token is sealed into the bots bucket
//! ([`courier_core::bot_tokens`]), and only then is `BotAdded` published,
//! with the bot's name and the token's fingerprint, never the token.

use std::fmt::Write as _;
use std::time::Duration;

use async_nats::jetstream::kv;
use courier_core::bot_languages::BotLanguages;
use courier_core::bot_tokens::{self, TokenKey};
use courier_core::config::{BotToken, TelegramApiConfig, TelegramConfig, TokenKeyConfig};
use courier_core::event::EventPublisher;
use courier_core::proto::v1::{
    BotAdded, BotLanguagesSet, BotOwnersSet, BotRemoved, Event, event::Payload,
};
use courier_core::startup::Nats;
use courier_core::topology::DEFAULT_BOT;
use courier_telegram::bot_api::{BotApi, Me};
use courier_telegram::classify::ApiFailure;
use deadpool_postgres::Pool;
use futures::{StreamExt as _, TryStreamExt as _};

/// What `bots add` and `bots check` need: the key tokens are sealed with,
/// and where Telegram is.
#[derive(Debug, Clone, clap::Args)]
pub struct Access {
    #[command(flatten)]
    pub key: TokenKeyConfig,
    #[command(flatten)]
    pub telegram: TelegramApiConfig,
}

/// How long getMe may take.
const GET_ME_TIMEOUT: Duration = Duration::from_secs(10);

/// Bots `bots check` asks Telegram about at once.
const CHECKS_AT_ONCE: usize = 16;

/// The bots bucket and the events stream.
pub struct Bots {
    sealed: kv::Store,
    publisher: EventPublisher,
}

/// What `bots add` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Added {
    New,
    /// The bot was there with another token: this one replaces it.
    TokenReplaced,
    /// The bot was there with this very token.
    Unchanged,
}

impl Bots {
    pub async fn new(nats: &Nats) -> anyhow::Result<Bots> {
        Ok(Bots {
            sealed: nats.topology.ensure_bots_bucket(&nats.js).await?,
            publisher: EventPublisher::new(nats.js.clone(), nats.topology.clone()),
        })
    }

    /// Adds the bot `token` belongs to, or replaces its token (a rotation:
    /// services reading the bucket take the new one; the old one keeps
    /// working at Telegram until revoked there).
    pub async fn add(&self, access: &Access, token: &str) -> anyhow::Result<(Me, Added)> {
        let key = access.key.required().map_err(anyhow::Error::msg)?;
        let token: BotToken = token.trim().parse().map_err(|_| {
            anyhow::anyhow!(
                "that is not a bot token: expected <bot id>:<secret> as @BotFather gives it"
            )
        })?;
        let me = get_me(&access.telegram, &token)
            .await
            .map_err(|error| error.context("nothing was added"))?;
        anyhow::ensure!(
            me.id.to_string() == token.bot_id(),
            "Telegram says this token belongs to bot {}, not {}: nothing was added",
            me.id,
            token.bot_id()
        );
        let added = match self.sealed_token(&key, me.id).await? {
            None => Added::New,
            Some(Ok(old)) if old == token => Added::Unchanged,
            // One that does not open (another key) is replaced as well.
            Some(_) => Added::TokenReplaced,
        };
        if added != Added::Unchanged {
            self.sealed
                .put(me.id.to_string(), key.seal(&token).into())
                .await?;
        }
        // Published even when unchanged: the bot's name may have changed.
        self.publisher
            .publish(&Event::new(Payload::BotAdded(BotAdded {
                bot_id: me.id,
                username: me.username.clone(),
                first_name: me.first_name.clone(),
                token_fingerprint: bot_tokens::fingerprint(&token),
            })))
            .await?;
        Ok((me, added))
    }

    /// Removes a bot: its sealed token is deleted first, so nothing sends
    /// for it after this returns, whatever happens to the event.
    pub async fn remove(&self, bot_id: i64) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.sealed.get(bot_id.to_string()).await?.is_some(),
            "bot {bot_id} is not in this deployment (see `courierctl bots list`)"
        );
        self.sealed.purge(bot_id.to_string()).await?;
        self.publisher
            .publish(&Event::new(Payload::BotRemoved(BotRemoved { bot_id })))
            .await?;
        Ok(())
    }

    /// Sets who owns bot `bot_id` (an empty list: nobody). Owners of the
    /// default bot come from the bot service's OWNER_IDS instead.
    pub async fn set_owners(&self, bot_id: i64, owner_ids: &[i64]) -> anyhow::Result<()> {
        self.ensure_added(bot_id, "owners", "OWNER_IDS").await?;
        anyhow::ensure!(
            owner_ids.iter().all(|&id| id > 0),
            "an owner is a person's numeric Telegram id"
        );
        let owners = BotOwnersSet {
            bot_id,
            owner_ids: owner_ids.to_vec(),
        };
        self.publisher
            .publish(&Event::new(Payload::BotOwnersSet(owners)))
            .await?;
        Ok(())
    }

    /// Sets the languages bot `bot_id` offers its users, in its order
    /// (codes such as `en`). The default bot's are the bot service's
    /// BOT_LANGUAGES instead.
    pub async fn set_languages(&self, bot_id: i64, codes: &[String]) -> anyhow::Result<()> {
        self.ensure_added(bot_id, "languages", "BOT_LANGUAGES")
            .await?;
        let languages = BotLanguages::parse(codes).map_err(anyhow::Error::msg)?;
        let set = BotLanguagesSet {
            bot_id,
            languages: languages.iter().map(i32::from).collect(),
        };
        self.publisher
            .publish(&Event::new(Payload::BotLanguagesSet(set)))
            .await?;
        Ok(())
    }

    /// Refuses the default bot (its `what` is the bot service's `variable`)
    /// and a bot not in this deployment.
    async fn ensure_added(&self, bot_id: i64, what: &str, variable: &str) -> anyhow::Result<()> {
        anyhow::ensure!(
            bot_id != DEFAULT_BOT,
            "the default bot's {what} are the bot service's {variable}"
        );
        anyhow::ensure!(
            self.sealed.get(bot_id.to_string()).await?.is_some(),
            "bot {bot_id} is not in this deployment (see `courierctl bots list`)"
        );
        Ok(())
    }

    /// Seals every bot's token again under COURIER_TOKEN_KEY, opening those
    /// sealed before with COURIER_TOKEN_KEY_PREVIOUS: the key's rotation.
    /// Services see the same tokens (their fingerprints) and go on; a token
    /// replaced meanwhile by `bots add` keeps its new seal.
    pub async fn rekey(&self, keys: &TokenKeyConfig) -> anyhow::Result<Rekeyed> {
        let key = keys.required().map_err(anyhow::Error::msg)?;
        let mut rekeyed = Rekeyed::default();
        let mut names = self.sealed.keys().await?;
        while let Some(name) = names.try_next().await? {
            let Ok(bot_id) = name.parse::<i64>() else {
                continue;
            };
            // Removed meanwhile: nothing to seal.
            let Some(entry) = self.sealed.entry(name.as_str()).await? else {
                continue;
            };
            if entry.operation != kv::Operation::Put {
                continue;
            }
            let resealed = match key.reseal(bot_id, &entry.value) {
                Ok(Some(resealed)) => resealed,
                Ok(None) => {
                    rekeyed.current.push(bot_id);
                    continue;
                }
                Err(error) => {
                    rekeyed.unopened.push((bot_id, error.to_string()));
                    continue;
                }
            };
            match self
                .sealed
                .update(&name, resealed.into(), entry.revision)
                .await
            {
                Ok(_) => rekeyed.resealed.push(bot_id),
                Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    rekeyed.current.push(bot_id);
                }
                Err(error) => return Err(error.into()),
            }
        }
        Ok(rekeyed)
    }

    /// The bot's token as sealed in the bucket, opened with `key`.
    async fn sealed_token(
        &self,
        key: &TokenKey,
        bot_id: i64,
    ) -> anyhow::Result<Option<Result<BotToken, bot_tokens::OpenError>>> {
        Ok(self
            .sealed
            .get(bot_id.to_string())
            .await?
            .map(|sealed| key.open(bot_id, &sealed)))
    }

    /// One line per bot of the read model, saying whether its sealed token
    /// opens and Telegram still takes it (`CHECKS_AT_ONCE` bots at a time:
    /// with thousands of bots, one after another would take minutes).
    pub async fn check(&self, pool: &Pool, access: &Access) -> anyhow::Result<String> {
        let key = &access.key.required().map_err(anyhow::Error::msg)?;
        let lines: Vec<anyhow::Result<String>> = futures::stream::iter(listed(pool).await?)
            .map(|bot| async move {
                let verdict = match self.sealed_token(key, bot.id).await? {
                    None => "no sealed token: add it again".to_owned(),
                    Some(Err(error)) => error.to_string(),
                    Some(Ok(token)) => match get_me(&access.telegram, &token).await {
                        Ok(_) => "token works".to_owned(),
                        Err(error) => format!("{error:#}"),
                    },
                };
                Ok(format!("{}  @{}  {verdict}\n", bot.id, bot.username))
            })
            .buffered(CHECKS_AT_ONCE)
            .collect()
            .await;
        lines.into_iter().collect()
    }
}

/// What `bots rekey` did, by bot id.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rekeyed {
    /// Sealed again under COURIER_TOKEN_KEY.
    pub resealed: Vec<i64>,
    /// Sealed under it already.
    pub current: Vec<i64>,
    /// Opening with neither key, and why: left as they are.
    pub unopened: Vec<(i64, String)>,
}

impl std::fmt::Display for Rekeyed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} sealed again under COURIER_TOKEN_KEY, {} under it already",
            self.resealed.len(),
            self.current.len()
        )?;
        for (bot_id, error) in &self.unopened {
            writeln!(f, "{bot_id}: {error}: left as it is")?;
        }
        Ok(())
    }
}

/// A bot as the read model lists it.
struct Listed {
    id: i64,
    username: String,
    first_name: String,
    fingerprint: String,
    added_at: chrono::DateTime<chrono::Utc>,
    token_changed_at: chrono::DateTime<chrono::Utc>,
    owners: Vec<i64>,
    languages: Vec<String>,
}

async fn listed(pool: &Pool) -> anyhow::Result<Vec<Listed>> {
    let rows = pool
        .get()
        .await?
        .query(
            "SELECT bot_id, username, first_name, token_fingerprint, added_at, token_changed_at,
                    owner_ids, languages
             FROM bots WHERE removed_at IS NULL ORDER BY bot_id",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| Listed {
            id: row.get(0),
            username: row.get(1),
            first_name: row.get(2),
            fingerprint: row.get(3),
            added_at: row.get(4),
            token_changed_at: row.get(5),
            owners: row.get(6),
            languages: row.get(7),
        })
        .collect())
}

/// Refuses a bot that is not added (a typo in `--bot` would otherwise
/// register users or start a campaign nobody can ever send). The default
/// bot is always there.
pub async fn ensure_added(pool: &Pool, bot: i64) -> anyhow::Result<()> {
    if bot == DEFAULT_BOT || listed(pool).await?.iter().any(|listed| listed.id == bot) {
        return Ok(());
    }
    anyhow::bail!("bot {bot} is not added: `courierctl bots list` shows the bots there are")
}

/// `bots list`: the bots the read model knows, one per line.
pub async fn list(pool: &Pool) -> anyhow::Result<String> {
    let mut out = String::new();
    for bot in listed(pool).await? {
        let time = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
        write!(
            out,
            "{}  @{}  {}  token {}  added {}",
            bot.id,
            bot.username,
            bot.first_name,
            bot.fingerprint,
            time(bot.added_at)
        )?;
        if bot.token_changed_at != bot.added_at {
            write!(out, ", token replaced {}", time(bot.token_changed_at))?;
        }
        match bot.owners.as_slice() {
            [] => out.push_str(", no owners (`courierctl bots owners`)"),
            owners => {
                let owners: Vec<String> = owners.iter().map(i64::to_string).collect();
                write!(out, ", owners {}", owners.join(" "))?;
            }
        }
        match bot.languages.as_slice() {
            [] => out.push_str(", every language"),
            languages => write!(out, ", languages {}", languages.join(" "))?,
        }
        out.push('\n');
    }
    if out.is_empty() {
        out.push_str("no bots added (the services' own TELEGRAM_BOT_TOKEN still serves)\n");
    }
    Ok(out)
}

/// getMe with `token`, its refusal explained.
async fn get_me(telegram: &TelegramApiConfig, token: &BotToken) -> anyhow::Result<Me> {
    let config = TelegramConfig {
        bot_token: token.clone(),
        api: telegram.clone(),
    };
    let api = BotApi::new(&config, GET_ME_TIMEOUT, 1)?;
    api.get_me().await.map_err(|failure| match failure {
        ApiFailure::Api {
            code: 401 | 404, ..
        } => anyhow::anyhow!(
            "Telegram does not take the token of bot {} (revoked, or mistyped)",
            token.bot_id()
        ),
        other => anyhow::anyhow!("Telegram did not say whose token this is: {other:?}"),
    })
}
