//! How a campaign's amendments went, from the read model: for its last
//! edit, how many delivered messages were edited, already read so, or
//! failed (by reason); for a recall, how many were deleted, failed, or
//! were too old for Telegram to delete. One reading for the bot's card and
//! `courierctl campaign show`.

use std::fmt::Write as _;

use tokio_postgres::GenericClient;
use uuid::Uuid;

use crate::amend::DELETABLE_FOR;

/// What became of one amendment's messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Edited, or deleted.
    pub done: i64,
    /// Edits Telegram answered "message is not modified".
    pub unchanged: i64,
    /// The user blocked the bot since.
    pub not_alive: i64,
    /// By reason, most common first.
    pub failed: Vec<(String, i64)>,
    /// Not tried: older than Telegram allows (deletions only).
    pub too_old: i64,
    /// Still to do: the messages it applies to, less those above.
    pub waiting: i64,
}

impl Counts {
    fn failed_total(&self) -> i64 {
        self.failed.iter().map(|(_, n)| n).sum()
    }

    fn resolved(&self) -> i64 {
        self.done + self.unchanged + self.not_alive + self.failed_total()
    }

    /// How far along it is, while messages are still to go.
    fn percent_done(&self) -> Option<i64> {
        let all = self.resolved() + self.waiting;
        (self.waiting > 0).then(|| self.resolved() * 100 / all)
    }
}

/// A campaign's amendments as they stand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// The content's revision, and how its edit went (None: never edited).
    pub edit: Option<(u32, Counts)>,
    pub recall: Option<Counts>,
}

impl Tally {
    /// Reads the campaign's amendments.
    pub async fn read(
        client: &impl GenericClient,
        campaign: Uuid,
    ) -> Result<Tally, tokio_postgres::Error> {
        let Some(row) = client
            .query_opt(
                "SELECT revision, recalled_at FROM campaigns WHERE campaign_id = $1",
                &[&campaign],
            )
            .await?
        else {
            return Ok(Tally::default());
        };
        let revision: i32 = row.get(0);
        let recalled_at: Option<chrono::DateTime<chrono::Utc>> = row.get(1);
        let mut tally = Tally::default();
        if revision > 0 {
            let applies = client
                .query_one(
                    "SELECT count(*) FROM deliveries WHERE campaign_id = $1
                     AND status = 'delivered' AND message_id IS NOT NULL AND revision < $2",
                    &[&campaign, &revision],
                )
                .await?
                .get(0);
            let counts = counts(client, campaign, "edit", revision, applies, 0).await?;
            tally.edit = Some((revision as u32, counts));
        }
        if let Some(recalled_at) = recalled_at {
            let row = client
                .query_one(
                    "SELECT count(*), count(*) FILTER (WHERE finished_at <= $2)
                     FROM deliveries WHERE campaign_id = $1
                       AND status = 'delivered' AND message_id IS NOT NULL",
                    &[&campaign, &(recalled_at - DELETABLE_FOR)],
                )
                .await?;
            let counts = counts(client, campaign, "delete", 0, row.get(0), row.get(1)).await?;
            tally.recall = Some(counts);
        }
        Ok(tally)
    }

    /// Whether an amendment still has messages to go.
    pub fn in_progress(&self) -> bool {
        let edit = self.edit.as_ref().map(|(_, c)| c);
        edit.into_iter().chain(&self.recall).any(|c| c.waiting > 0)
    }

    /// One line per amendment, as admins read them.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some((revision, c)) = &self.edit {
            let version = revision + 1;
            let mut line = match c.percent_done() {
                None => format!("✏️ Edited (version {version}): {} edited", c.done),
                Some(done) => {
                    format!("✏️ Editing (version {version}), {done}%: {} edited", c.done)
                }
            };
            if c.unchanged > 0 {
                let _ = write!(line, " · {} already so", c.unchanged);
            }
            finish(&mut line, c);
            lines.push(line);
        }
        if let Some(c) = &self.recall {
            let mut line = match c.percent_done() {
                None => format!("🗑 Recalled: {} deleted", c.done),
                Some(done) => format!("🗑 Deleting, {done}%: {} deleted", c.done),
            };
            if c.too_old > 0 {
                let _ = write!(
                    line,
                    " · {} older than 48 h (Telegram keeps them)",
                    c.too_old
                );
            }
            finish(&mut line, c);
            lines.push(line);
        }
        lines
    }
}

/// Appends failures, users gone and what is still to do.
fn finish(line: &mut String, c: &Counts) {
    if c.not_alive > 0 {
        let _ = write!(line, " · {} blocked the bot", c.not_alive);
    }
    if c.failed_total() > 0 {
        let reasons: Vec<String> = c.failed.iter().map(|(r, n)| format!("{n} {r}")).collect();
        let _ = write!(
            line,
            " · {} failed ({})",
            c.failed_total(),
            reasons.join("; ")
        );
    }
    if c.waiting > 0 {
        let _ = write!(line, " · {} to go", c.waiting);
    }
}

/// The outcomes of one amendment; `applies` messages it is for, of which
/// `too_old` were not tried.
async fn counts(
    client: &impl GenericClient,
    campaign: Uuid,
    kind: &str,
    revision: i32,
    applies: i64,
    too_old: i64,
) -> Result<Counts, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT result, COALESCE(reason, ''), count(*) FROM amendments
             WHERE campaign_id = $1 AND kind = $2 AND revision = $3
             GROUP BY 1, 2 ORDER BY 3 DESC",
            &[&campaign, &kind, &revision],
        )
        .await?;
    let mut counts = Counts {
        too_old,
        ..Counts::default()
    };
    for row in rows {
        let (result, reason, n): (&str, String, i64) = (row.get(0), row.get(1), row.get(2));
        match result {
            "done" => counts.done += n,
            "unchanged" => counts.unchanged += n,
            "not_alive" => counts.not_alive += n,
            _ => counts.failed.push((reason, n)),
        }
    }
    counts.waiting = (applies - too_old - counts.resolved()).max(0);
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_admin_reads_each_amendment_on_one_line() {
        let tally = Tally {
            edit: Some((
                1,
                Counts {
                    done: 950,
                    unchanged: 3,
                    failed: vec![("message to edit not found".into(), 2)],
                    waiting: 45,
                    ..Counts::default()
                },
            )),
            recall: Some(Counts {
                done: 990,
                too_old: 10,
                not_alive: 1,
                ..Counts::default()
            }),
        };
        assert_eq!(
            tally.lines(),
            vec![
                "✏️ Editing (version 2), 95%: 950 edited · 3 already so · 2 failed (2 message to edit not found) · 45 to go",
                "🗑 Recalled: 990 deleted · 10 older than 48 h (Telegram keeps them) · 1 blocked the bot",
            ]
        );
        assert!(Tally::default().lines().is_empty());
    }
}
