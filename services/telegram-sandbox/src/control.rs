//! The control API under `/_sandbox`: the `Sandbox` handle's methods over HTTP and JSON, for
//! tests and demos that run the sandbox as a separate process.
//!
//! Answers use the Bot API envelope (`{"ok":true,"result":...}`), so one client reads both.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::chats::ChatState;
use crate::config::SandboxConfig;
use crate::envelope::{self, ApiError};
use crate::faults::Failure;
use crate::state::Shared;

type Answer = Result<Response, ApiError>;

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/chats/{chat_id}", post(set_chat_state))
        .route("/chats/{chat_id}/messages", get(messages_to))
        .route("/bots/{bot_id}/chats/{chat_id}", post(set_bot_chat_state))
        .route("/bots/{bot_id}/chats/{chat_id}/messages", get(messages_of))
        .route("/config", get(config).patch(patch_config))
        .route("/fail_next", post(fail_next))
        .route("/inject_429", post(inject_429))
        .route("/broken_files", post(break_file))
        .route("/bots/{bot_id}/updates", post(push_update))
        .route("/deliveries", get(deliveries))
        .route("/amendments", get(amendments))
        .route("/age_messages", post(age_messages))
        .route("/stats", get(stats))
        .route("/reset", post(reset))
}

/// `{"state":"blocked"}`
#[derive(Deserialize)]
struct StateBody {
    state: ChatState,
}

/// For every bot.
async fn set_chat_state(
    State(shared): State<Arc<Shared>>,
    Path(chat_id): Path<String>,
    body: Bytes,
) -> Answer {
    let StateBody { state } = read(&body)?;
    shared.set_chat_state(parse_chat_id(&chat_id)?, state);
    Ok(envelope::ok(json!(true)))
}

async fn set_bot_chat_state(
    State(shared): State<Arc<Shared>>,
    Path((bot_id, chat_id)): Path<(i64, String)>,
    body: Bytes,
) -> Answer {
    let StateBody { state } = read(&body)?;
    shared.set_bot_chat_state(bot_id, parse_chat_id(&chat_id)?, state);
    Ok(envelope::ok(json!(true)))
}

async fn messages_to(State(shared): State<Arc<Shared>>, Path(chat_id): Path<String>) -> Answer {
    Ok(envelope::ok(json!(
        shared.messages_to(parse_chat_id(&chat_id)?)
    )))
}

async fn messages_of(
    State(shared): State<Arc<Shared>>,
    Path((bot_id, chat_id)): Path<(i64, String)>,
) -> Answer {
    Ok(envelope::ok(json!(
        shared.messages_of(bot_id, parse_chat_id(&chat_id)?)
    )))
}

async fn config(State(shared): State<Arc<Shared>>) -> Answer {
    Ok(envelope::ok(json!(shared.config())))
}

/// Any subset of the configuration's fields, e.g. `{"rate_limit":5,"latency_ms":50}`; answers
/// the configuration that results.
async fn patch_config(State(shared): State<Arc<Shared>>, body: Bytes) -> Answer {
    let patch: Map<String, Value> = read(&body)?;
    let mut merged = json!(shared.config());
    for (field, value) in patch {
        merged[field] = value;
    }
    let config: SandboxConfig =
        serde_json::from_value(merged).map_err(|e| ApiError::bad_request(e.to_string()))?;
    shared.configure(|current| *current = config);
    Ok(envelope::ok(json!(shared.config())))
}

/// `{"count":3,"failure":"bad_gateway"}` (or `"internal_server_error"`)
async fn fail_next(State(shared): State<Arc<Shared>>, body: Bytes) -> Answer {
    #[derive(Deserialize)]
    struct Body {
        count: usize,
        failure: Failure,
    }
    let Body { count, failure } = read(&body)?;
    shared.fail_next(count, failure);
    Ok(envelope::ok(json!(true)))
}

/// `{"retry_after":5}`
async fn inject_429(State(shared): State<Arc<Shared>>, body: Bytes) -> Answer {
    #[derive(Deserialize)]
    struct Body {
        retry_after: u64,
    }
    let Body { retry_after } = read(&body)?;
    shared.inject_429(retry_after);
    Ok(envelope::ok(json!(true)))
}

/// `{"file_id":"..."}`
async fn break_file(State(shared): State<Arc<Shared>>, body: Bytes) -> Answer {
    #[derive(Deserialize)]
    struct Body {
        file_id: String,
    }
    let Body { file_id } = read(&body)?;
    shared.break_file(file_id);
    Ok(envelope::ok(json!(true)))
}

/// An `Update` object without `update_id`, for bot `bot_id` (its token's part before the
/// colon); answers `{"update_id":N}`.
async fn push_update(
    State(shared): State<Arc<Shared>>,
    Path(bot_id): Path<i64>,
    body: Bytes,
) -> Answer {
    let update_id = shared.push_update(bot_id, read(&body)?);
    Ok(envelope::ok(json!({ "update_id": update_id })))
}

async fn deliveries(State(shared): State<Arc<Shared>>) -> Answer {
    Ok(envelope::ok(json!(shared.deliveries())))
}

async fn amendments(State(shared): State<Arc<Shared>>) -> Answer {
    Ok(envelope::ok(json!(shared.amendments())))
}

/// `{"seconds":N}`: every message sent so far looks sent that much earlier.
async fn age_messages(State(shared): State<Arc<Shared>>, body: Bytes) -> Answer {
    #[derive(Deserialize)]
    struct Body {
        seconds: i64,
    }
    let Body { seconds } = read(&body)?;
    shared.age_messages(seconds);
    Ok(envelope::ok(json!(true)))
}

#[derive(Deserialize)]
struct StatsQuery {
    /// The window `max_sends_in_window` is counted over; one second unless given.
    #[serde(default = "one_second")]
    window_ms: u64,
}

fn one_second() -> u64 {
    1000
}

async fn stats(State(shared): State<Arc<Shared>>, Query(query): Query<StatsQuery>) -> Answer {
    let stats = shared.stats();
    let mut body = json!(stats);
    let window = std::time::Duration::from_millis(query.window_ms);
    body["window_ms"] = json!(query.window_ms);
    body["max_sends_in_window"] = json!(stats.max_sends_in_any_window(window));
    Ok(envelope::ok(body))
}

async fn reset(State(shared): State<Arc<Shared>>) -> Answer {
    shared.reset();
    Ok(envelope::ok(json!(true)))
}

fn read<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("can't parse JSON body: {e}")))
}

fn parse_chat_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::bad_request(format!("chat id {raw:?} is not an integer")))
}
