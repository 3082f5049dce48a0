//! Importing an existing bot's users from CSV (`user_id,language` and
//! optionally `chat_id`, `tags` (separated by spaces or `;`), `source`,
//! `first_name`, `last_name`, `username`) as UserRegistered events, then a
//! UserTagged per tag. The whole file is checked before anything is
//! published, so a bad row costs nothing but an error naming its line.
//! Each user has one line: a user on two lines (say ru on one, en on the
//! other) refuses the file, naming both, rather than let the last line win
//! unseen. Errors quote at most [`QUOTED_CHARS`] of a value.

use std::collections::HashMap;
use std::future::IntoFuture;
use std::io::Read;

use courier_core::audience::{self, Tagging};
use courier_core::event::EventPublisher;
use courier_core::proto::v1::{Event, Language, Names, UserRegistered, event::Payload};
use courier_core::telemetry::REGISTRATION_SPAN;
use courier_core::topology::DEFAULT_BOT;
use futures::future::try_join_all;
use tracing::Instrument as _;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImportError {
    #[error("the CSV needs a header with user_id and language columns (chat_id optional)")]
    MissingColumns,
    #[error("line {line}: {problem}")]
    BadRow { line: u64, problem: String },
    #[error("line {again}: user {user_id} is on line {first} too; give each user one line")]
    TwoLines {
        user_id: i64,
        first: u64,
        again: u64,
    },
    #[error("reading the CSV: {0}")]
    Csv(String),
}

/// One CSV line: the user and the tags to put on them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedUser {
    pub registration: UserRegistered,
    pub tags: Vec<String>,
}

/// Parses the CSV into users, all or nothing.
pub fn parse(input: impl Read) -> Result<Vec<ImportedUser>, ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(input);
    let headers = reader
        .headers()
        .map_err(|e| ImportError::Csv(e.to_string()))?
        .clone();
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(user_col), Some(language_col)) = (column("user_id"), column("language")) else {
        return Err(ImportError::MissingColumns);
    };
    let chat_col = column("chat_id");
    let optional = |name: &str| column(name);
    let (tags_col, source_col) = (optional("tags"), optional("source"));
    let name_cols = [
        optional("first_name"),
        optional("last_name"),
        optional("username"),
    ];
    let mut users = Vec::new();
    let mut lines: HashMap<i64, u64> = HashMap::new();
    for record in reader.records() {
        let record = record.map_err(|e| ImportError::Csv(e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line());
        let bad = |problem: String| ImportError::BadRow { line, problem };
        let field = |i: usize| record.get(i).unwrap_or_default();
        let user_id: i64 = field(user_col).parse().map_err(|_| {
            bad(format!(
                "user_id {} is not an integer",
                quoted(field(user_col))
            ))
        })?;
        if let Some(&first) = lines.get(&user_id) {
            return Err(ImportError::TwoLines {
                user_id,
                first,
                again: line,
            });
        }
        lines.insert(user_id, line);
        let language = match field(language_col).to_ascii_lowercase().as_str() {
            "ru" => Language::Ru,
            "en" => Language::En,
            _ => {
                return Err(bad(format!(
                    "language {} is not ru or en",
                    quoted(field(language_col))
                )));
            }
        };
        let chat_id = match chat_col.map(field).filter(|s| !s.is_empty()) {
            Some(chat) => chat
                .parse()
                .map_err(|_| bad(format!("chat_id {} is not an integer", quoted(chat))))?,
            // In a private chat the chat id is the user id.
            None => user_id,
        };
        let tags = tags_col
            .map(field)
            .unwrap_or_default()
            .split([' ', ';'])
            .filter(|tag| !tag.is_empty())
            .map(|tag| audience::tag(tag).map_err(&bad))
            .collect::<Result<Vec<_>, _>>()?;
        let source = match source_col.map(field).filter(|s| !s.is_empty()) {
            Some(source) => audience::source(source).map_err(&bad)?,
            None => String::new(),
        };
        let [first_name, last_name, username] =
            name_cols.map(|col| col.map(field).unwrap_or_default().to_owned());
        users.push(ImportedUser {
            registration: UserRegistered {
                user_id,
                chat_id,
                language: language.into(),
                // What the earlier bot had is what the user chose there.
                language_chosen: true,
                source,
                names: Some(Names {
                    first_name,
                    last_name,
                    username: username.trim_start_matches('@').to_owned(),
                }),
                // The command names the bot: `publish` sets it.
                bot_id: DEFAULT_BOT,
            },
            tags,
        });
    }
    Ok(users)
}

/// Puts `tags` on bot `bot`'s user `user_id` (or takes them off): all are
/// checked before any is published. Returns the tags as stored.
pub async fn tag(
    publisher: &EventPublisher,
    bot: i64,
    user_id: i64,
    tags: &[String],
    tagging: Tagging,
) -> anyhow::Result<Vec<String>> {
    let tags = tags
        .iter()
        .map(|tag| audience::tag(tag))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    if tags.is_empty() {
        anyhow::bail!("name at least one tag");
    }
    for tag in &tags {
        let event = Event::new(tagging.event(bot, user_id, tag.clone(), 0));
        publisher.publish(&event).await?;
    }
    Ok(tags)
}

/// Values longer than this are cut in errors: a 10 MB field is quoted as
/// its beginning and its length, not repeated on the terminal.
pub const QUOTED_CHARS: usize = 40;

/// `value` in quotes, cut to [`QUOTED_CHARS`] characters.
fn quoted(value: &str) -> String {
    match value.char_indices().nth(QUOTED_CHARS) {
        None => format!("{value:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes)", &value[..cut], value.len()),
    }
}

/// What an import registered, e.g. `registered 3 users: 2 ru, 1 en; 4 tags`.
pub fn summary(users: &[ImportedUser]) -> String {
    let ru = users
        .iter()
        .filter(|user| user.registration.language() == Language::Ru)
        .count();
    let tags: usize = users.iter().map(|user| user.tags.len()).sum();
    format!(
        "registered {} users: {ru} ru, {} en; {tags} tags",
        users.len(),
        users.len() - ru
    )
}

/// Publishes the users as bot `bot`'s, a window of acks at a time. The
/// import is one trace; each user's registration in it is a `register`
/// span, kept at `COURIER_USER_TRACE_RATIO`.
pub async fn publish(
    publisher: &EventPublisher,
    bot: i64,
    users: &[ImportedUser],
) -> anyhow::Result<()> {
    let import = tracing::info_span!("users.import", users = users.len() as i64);
    async {
        for chunk in users.chunks(512) {
            let sends = chunk.iter().map(|user| {
                let user_id = user.registration.user_id;
                let registration = tracing::info_span!(REGISTRATION_SPAN, user_id);
                // One user's events in order: registered, then tagged.
                async move {
                    let registered = Payload::UserRegistered(UserRegistered {
                        bot_id: bot,
                        ..user.registration.clone()
                    });
                    publisher.publish(&Event::new(registered)).await?;
                    for tag in &user.tags {
                        let tagged = Tagging::Put.event(bot, user_id, tag.clone(), 0);
                        publisher.publish(&Event::new(tagged)).await?;
                    }
                    Ok::<_, courier_core::event::PublishError>(())
                }
                .instrument(registration)
            });
            try_join_all(sends.map(IntoFuture::into_future)).await?;
        }
        Ok(())
    }
    .instrument(import)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_become_registrations() {
        let csv = "user_id,language,chat_id\n1,ru,\n2, EN ,20\n";
        let users = parse(csv.as_bytes()).unwrap();
        let registrations: Vec<_> = users.iter().map(|u| u.registration.clone()).collect();
        let names = Some(Names::default());
        assert_eq!(
            registrations,
            vec![
                UserRegistered {
                    user_id: 1,
                    chat_id: 1,
                    language: Language::Ru.into(),
                    language_chosen: true,
                    source: String::new(),
                    names: names.clone(),
                    ..Default::default()
                },
                UserRegistered {
                    user_id: 2,
                    chat_id: 20,
                    language: Language::En.into(),
                    language_chosen: true,
                    source: String::new(),
                    names,
                    ..Default::default()
                },
            ]
        );
        assert!(users.iter().all(|u| u.tags.is_empty()));
    }

    #[test]
    fn tags_sources_and_names_come_along() {
        let csv = "user_id,language,tags,source,first_name,last_name,username\n\
                   1,ru,VIP;gold paid,ad_spring,Анна,Петрова,@anna\n2,en,,,,,\n";
        let users = parse(csv.as_bytes()).unwrap();
        assert_eq!(users[0].tags, ["vip", "gold", "paid"]);
        assert_eq!(users[0].registration.source, "ad_spring");
        let names = users[0].registration.names.clone().unwrap();
        assert_eq!(
            (
                names.first_name.as_str(),
                names.last_name.as_str(),
                names.username.as_str()
            ),
            ("Анна", "Петрова", "anna")
        );
        assert!(users[1].tags.is_empty());
        assert_eq!(summary(&users), "registered 2 users: 1 ru, 1 en; 3 tags");
    }

    #[test]
    fn a_bad_tag_or_source_names_its_line() {
        let csv = "user_id,language,tags\n1,ru,ok\n2,en,not!ok\n";
        assert!(matches!(
            parse(csv.as_bytes()),
            Err(ImportError::BadRow { line: 3, problem }) if problem.contains("not a tag")
        ));
        let csv = "user_id,language,source\n1,ru,a b\n";
        assert!(matches!(
            parse(csv.as_bytes()),
            Err(ImportError::BadRow { line: 2, problem }) if problem.contains("not a source")
        ));
    }

    #[test]
    fn a_bad_row_names_its_line() {
        let csv = "user_id,language\n1,ru\nx,en\n";
        assert_eq!(
            parse(csv.as_bytes()),
            Err(ImportError::BadRow {
                line: 3,
                problem: "user_id \"x\" is not an integer".into()
            })
        );
        let csv = "user_id,language\n1,de\n";
        assert!(matches!(
            parse(csv.as_bytes()),
            Err(ImportError::BadRow { line: 2, .. })
        ));
    }

    #[test]
    fn a_user_on_two_lines_refuses_the_file_naming_both() {
        let csv = "user_id,language\n1,ru\n2,en\n1,en\n";
        assert_eq!(
            parse(csv.as_bytes()),
            Err(ImportError::TwoLines {
                user_id: 1,
                first: 2,
                again: 4
            })
        );
        let error = parse(csv.as_bytes()).unwrap_err().to_string();
        assert_eq!(
            error,
            "line 4: user 1 is on line 2 too; give each user one line"
        );
    }

    #[test]
    fn a_huge_value_is_quoted_by_its_beginning_and_length() {
        let huge = "é".repeat(5_000_000);
        let csv = format!("user_id,language\n1,{huge}\n");
        let error = parse(csv.as_bytes()).unwrap_err().to_string();
        let beginning = "é".repeat(QUOTED_CHARS);
        assert_eq!(
            error,
            format!("line 2: language \"{beginning}\"… (10000000 bytes) is not ru or en")
        );
        assert_eq!(quoted("de"), "\"de\"");
    }

    #[test]
    fn the_summary_counts_each_language() {
        let users = parse("user_id,language\n1,ru\n2,en\n3,ru\n".as_bytes()).unwrap();
        assert_eq!(summary(&users), "registered 3 users: 2 ru, 1 en; 0 tags");
    }

    #[test]
    fn missing_columns_are_explained() {
        assert_eq!(
            parse("id,lang\n1,ru\n".as_bytes()),
            Err(ImportError::MissingColumns)
        );
    }
}
