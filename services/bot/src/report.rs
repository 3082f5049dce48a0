//! What an admin gets when a campaign completes, besides the report's text
//! ([`crate::progress::report`]): its picture (recipients resolved per
//! second, and how they ended) as a photo, with a button for one CSV row
//! per recipient, sent as a document streamed from Postgres.

use courier_core::report;
use teloxide::Bot;
use teloxide::payloads::{AnswerCallbackQuerySetters, SendPhotoSetters};
use teloxide::prelude::Requester;
use teloxide::types::{CallbackQuery, ChatId, InlineKeyboardMarkup, InputFile};
use tokio_util::io::StreamReader;
use uuid::Uuid;

use crate::actions::Action;
use crate::handlers::HandlerResult;
use crate::progress::Snapshot;
use crate::storage::Store;

#[derive(Debug, thiserror::Error)]
enum ReportError {
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("postgres pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error(transparent)]
    Chart(#[from] report::chart::ChartError),
    #[error("telegram: {0}")]
    Telegram(#[from] teloxide::RequestError),
}

/// Sends the campaign's picture to `chat`. A failure is logged: the text
/// report went out already.
pub async fn send_picture(bot: &Bot, store: &Store, chat: ChatId, snapshot: &Snapshot) {
    if let Err(error) = picture(bot, store, chat, snapshot).await {
        tracing::warn!(%error, campaign = %snapshot.id, "sending the report's picture failed");
    }
}

async fn picture(
    bot: &Bot,
    store: &Store,
    chat: ChatId,
    snapshot: &Snapshot,
) -> Result<(), ReportError> {
    let campaign = snapshot.id;
    let client = store.pool().get().await?;
    let Some(report) = report::read(&client, campaign).await? else {
        return Ok(());
    };
    drop(client);
    let png = report::chart::png(&report)?;
    let csv = Action::Csv(campaign).button("📄 Every recipient (CSV)");
    bot.send_photo(
        chat,
        InputFile::memory(png).file_name(format!("campaign-{campaign}.png")),
    )
    .caption(format!("📊 How {} went\nid {campaign}", snapshot.title()))
    .reply_markup(InlineKeyboardMarkup::new([[csv]]))
    .await?;
    Ok(())
}

/// 📄 under the picture: the campaign's CSV, streamed (a large campaign's
/// rows are never all in memory).
pub async fn csv_pressed(
    bot: Bot,
    query: CallbackQuery,
    campaign: Uuid,
    store: Store,
) -> HandlerResult {
    let Some(chat) = query.regular_message().map(|m| m.chat.id) else {
        return Ok(());
    };
    bot.answer_callback_query(query.id.clone())
        .text("Preparing the CSV…")
        .await?;
    if let Err(error) = send_csv(&bot, &store, chat, campaign).await {
        tracing::warn!(%error, %campaign, "sending a campaign's CSV failed");
        bot.send_message(chat, format!("The CSV could not be sent: {error}"))
            .await?;
    }
    Ok(())
}

async fn send_csv(
    bot: &Bot,
    store: &Store,
    chat: ChatId,
    campaign: Uuid,
) -> Result<(), ReportError> {
    let client = store.pool().get().await?;
    let rows = Box::pin(report::csv(client, campaign).await?);
    let rows = StreamReader::new(futures::StreamExt::map(rows, |chunk| {
        chunk.map_err(std::io::Error::other)
    }));
    bot.send_document(
        chat,
        InputFile::read(rows).file_name(format!("campaign-{campaign}.csv")),
    )
    .await?;
    Ok(())
}
