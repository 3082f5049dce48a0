//! What the admins' inline buttons do, and the callback data that carries
//! it. The data comes back from Telegram untrusted (any client can send
//! any data, and a forwarded message keeps its buttons), so it is parsed
//! here into an [`Action`] and anything else is ignored. Pure.

use courier_core::proto::v1::Audience;
use teloxide::types::InlineKeyboardButton;
use uuid::Uuid;

/// A press on one of the admins' buttons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// /broadcast, step 1: who receives it.
    Audience(Audience),
    /// Step 3: no extra buttons.
    SkipButtons,
    /// Step 4: flip an option in the summary.
    Toggle(Toggle),
    /// Step 4: publish the campaign.
    Start,
    /// Any step: leave the dialog (like /cancel).
    Abort,
    /// On a progress card.
    Control(Uuid, Control),
    /// In /campaigns: show this campaign's card.
    Show(Uuid),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Toggle {
    Silent,
    Protected,
    Paid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Pause,
    Resume,
    Cancel,
}

impl Action {
    /// The callback data: at most 64 bytes, as Telegram requires (a UUID
    /// and the longest prefix take 46).
    pub fn data(self) -> String {
        match self {
            Action::Audience(audience) => format!("bc:aud:{}", audience.code().unwrap_or("")),
            Action::SkipButtons => "bc:skip".into(),
            Action::Toggle(toggle) => format!("bc:opt:{}", toggle.code()),
            Action::Start => "bc:start".into(),
            Action::Abort => "bc:abort".into(),
            Action::Control(id, control) => format!("cc:{}:{id}", control.code()),
            Action::Show(id) => format!("cc:show:{id}"),
        }
    }

    /// The action `data` names, or `None` for anything else.
    pub fn parse(data: &str) -> Option<Action> {
        let parts: Vec<&str> = data.split(':').collect();
        Some(match parts.as_slice() {
            ["bc", "aud", code] => Action::Audience(Audience::from_code(code)?),
            ["bc", "skip"] => Action::SkipButtons,
            ["bc", "opt", code] => Action::Toggle(Toggle::from_code(code)?),
            ["bc", "start"] => Action::Start,
            ["bc", "abort"] => Action::Abort,
            ["cc", "show", id] => Action::Show(id.parse().ok()?),
            ["cc", code, id] => Action::Control(id.parse().ok()?, Control::from_code(code)?),
            _ => return None,
        })
    }

    pub fn button(self, label: impl Into<String>) -> InlineKeyboardButton {
        InlineKeyboardButton::callback(label, self.data())
    }
}

impl Toggle {
    const ALL: [Toggle; 3] = [Toggle::Silent, Toggle::Protected, Toggle::Paid];

    fn code(self) -> &'static str {
        match self {
            Toggle::Silent => "silent",
            Toggle::Protected => "protected",
            Toggle::Paid => "paid",
        }
    }

    fn from_code(code: &str) -> Option<Toggle> {
        Toggle::ALL.into_iter().find(|t| t.code() == code)
    }
}

impl Control {
    const ALL: [Control; 3] = [Control::Pause, Control::Resume, Control::Cancel];

    fn code(self) -> &'static str {
        match self {
            Control::Pause => "pause",
            Control::Resume => "resume",
            Control::Cancel => "cancel",
        }
    }

    fn from_code(code: &str) -> Option<Control> {
        Control::ALL.into_iter().find(|c| c.code() == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_round_trips_within_telegrams_limit() {
        let id = Uuid::now_v7();
        let mut actions = vec![
            Action::SkipButtons,
            Action::Start,
            Action::Abort,
            Action::Show(id),
        ];
        actions.extend([Audience::All, Audience::Ru, Audience::En].map(Action::Audience));
        actions.extend(Toggle::ALL.map(Action::Toggle));
        actions.extend(Control::ALL.map(|c| Action::Control(id, c)));
        for action in actions {
            let data = action.data();
            assert!(data.len() <= 64, "{data}");
            assert_eq!(Action::parse(&data), Some(action), "{data}");
        }
    }

    #[test]
    fn other_data_is_no_action() {
        for data in [
            "",
            "lang:ru",
            "bc:aud:de",
            "bc:aud:",
            "bc:opt:loud",
            "bc:start:now",
            "cc:pause:not-a-uuid",
            "cc:explode:0190a6f0-0000-7000-8000-000000000000",
        ] {
            assert_eq!(Action::parse(data), None, "{data:?}");
        }
    }
}
