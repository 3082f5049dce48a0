//! RED for the bot: every update is counted by kind, timed, and handled
//! inside an `update` span (kept at `COURIER_USER_TRACE_RATIO`, like a
//! user's registration), whose trace becomes the latency's exemplar. A
//! handler's error is counted and marks the span ERROR.

use std::ops::ControlFlow;
use std::time::Instant;

use courier_core::metrics;
use courier_core::telemetry::{self, UPDATE_SPAN};
use teloxide::dispatching::{DpHandlerDescription, UpdateHandler};
use teloxide::dptree::di::DependencyMap;
use teloxide::dptree::{self, HandlerDescription as _, HandlerSignature};
use teloxide::types::{Update, UpdateKind};
use tracing::Instrument as _;

use crate::handlers::{HandlerError, HandlerResult};

/// `handlers`, counted, timed and traced.
pub fn metered(handlers: UpdateHandler<HandlerError>) -> UpdateHandler<HandlerError> {
    let measure = dptree::from_fn_with_description(
        DpHandlerDescription::entry(),
        |dependencies: DependencyMap, handle: dptree::Cont<'static, HandlerResult>| async move {
            let (update_id, kind) = dependencies
                .try_get::<Update>()
                .map_or((0, "other"), |update| {
                    (i64::from(update.id.0), kind_of(&update.kind))
                });
            let red = metrics::bot();
            let span = tracing::info_span!(parent: None, UPDATE_SPAN, update_id, kind);
            let started = Instant::now();
            let handled = handle(dependencies).instrument(span.clone()).await;
            red.updates.get([kind]).inc();
            if let ControlFlow::Break(Err(error)) = &handled {
                red.update_errors.get([kind]).inc();
                telemetry::mark_error(&span, error.to_string());
            }
            span.in_scope(|| red.update_duration.observe([kind], started.elapsed()));
            handled
        },
        HandlerSignature::Entry,
    );
    measure.chain(handlers)
}

/// The `kind` label of an update: one of [`metrics::UPDATE_KINDS`].
fn kind_of(update: &UpdateKind) -> &'static str {
    match update {
        UpdateKind::Message(_) => "message",
        UpdateKind::CallbackQuery(_) => "callback_query",
        UpdateKind::MyChatMember(_) => "my_chat_member",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_a_declared_label_value() {
        let kinds = [
            UpdateKind::Error(serde_json::Value::Null),
            UpdateKind::Message(serde_json::from_value(message()).unwrap()),
        ];
        for kind in &kinds {
            assert!(metrics::UPDATE_KINDS.contains(&kind_of(kind)));
        }
        assert_eq!(kind_of(&kinds[1]), "message");
    }

    fn message() -> serde_json::Value {
        serde_json::json!({
            "message_id": 1,
            "date": 0,
            "chat": {"id": 5, "type": "private", "first_name": "A"},
            "text": "/start"
        })
    }
}
