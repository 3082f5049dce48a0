//! The HTTP face: `/bot<token>/<method>` for the Bot API, `/_sandbox/...` for tests.
//!
//! Before a method runs, the request goes through what Telegram's front does: the token is
//! checked, the token's requests in flight are capped, and the configured latency is added.
//! Every answer is counted for [`crate::Stats`].

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

use crate::api;
use crate::bot::Bot;
use crate::control;
use crate::envelope::{self, ApiError};
use crate::params::Params;
use crate::state::Shared;
use crate::uploads::MAX_FILE_BYTES;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/{bot}/{method}", get(bot_api).post(bot_api))
        // Uploads up to Telegram's cap (axum's default stops at 2 MB).
        .layer(DefaultBodyLimit::max(MAX_FILE_BYTES + 1024 * 1024))
        .nest("/_sandbox", control::routes())
        .fallback(|| async { ApiError::not_found() })
        .with_state(shared)
}

async fn bot_api(
    State(shared): State<Arc<Shared>>,
    Path((bot, method)): Path<(String, String)>,
    request: Request,
) -> Response {
    shared.world().record.count_request();
    let answer = answer(&shared, &bot, &method, request).await;
    tracing::debug!(
        method,
        code = answer.as_ref().map_or_else(|e| e.code, |_| 200),
        "answered"
    );
    match answer {
        Ok(result) => envelope::ok(result),
        Err(error) => {
            shared.world().record.count_error(error.code);
            error.into_response()
        }
    }
}

async fn answer(
    shared: &Shared,
    bot: &str,
    method: &str,
    request: Request,
) -> Result<Value, ApiError> {
    let token = bot.strip_prefix("bot").ok_or_else(ApiError::not_found)?;
    let bot = Bot::from_token(token)
        .filter(|bot| shared.world().config.accepts(&bot.token))
        .ok_or_else(ApiError::unauthorized)?;
    let _in_flight = InFlightGuard::enter(shared, &bot.token)?;
    let latency = shared.world().config.latency();
    tokio::time::sleep(latency).await;
    let params = Params::from_request(request).await?;
    api::call(shared, &bot, method, &params).await
}

/// Counts one request of a token as in flight until dropped, also when the client goes away.
struct InFlightGuard<'a> {
    shared: &'a Shared,
    token: &'a str,
}

impl<'a> InFlightGuard<'a> {
    fn enter(shared: &'a Shared, token: &'a str) -> Result<Self, ApiError> {
        let mut world = shared.world();
        let max = world.config.max_in_flight;
        world
            .in_flight
            .enter(token, max)
            .map_err(ApiError::too_many_requests)?;
        Ok(Self { shared, token })
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.shared.world().in_flight.leave(self.token);
    }
}
