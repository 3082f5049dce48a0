//! What the admins' inline buttons do, and the callback data that carries
//! it. The data comes back from Telegram untrusted (any client can send
//! any data, and a forwarded message keeps its buttons), so it is parsed
//! here into an [`Action`] and anything else is ignored. Pure.

use courier_core::audience;
use courier_core::proto::v1::{Audience, Language};
use teloxide::types::InlineKeyboardButton;
use uuid::Uuid;

/// A press on one of the admins' buttons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// /broadcast, step 1: one of the one-tap audiences (ru, en, all).
    Audience(Audience),
    /// Step 1: build a segment instead.
    Segment,
    /// Step 1, building a segment: change one part of it.
    Refine(Refinement),
    /// Step 1: the segment built is the audience.
    UseSegment,
    /// Step 2: the album sent is complete.
    UseAlbum,
    /// Step 3: no extra buttons.
    SkipButtons,
    /// Step 4: flip an option in the summary.
    Toggle(Toggle),
    /// Step 4: add the message in this language (or drop it).
    Variant(Language),
    /// Step 4: send the message, as recipients will get it, to me.
    TestSend,
    /// Step 4: choose when it starts.
    When,
    /// Choosing a start time: one of the offered ones.
    StartAt(Preset),
    /// Step 4: publish the campaign.
    Start,
    /// Any step: leave the dialog (like /cancel).
    Abort,
    /// Any step after the first: the step before (from a question asked
    /// on the summary: the summary).
    Back,
    /// Step 4: give the campaign a name.
    Rename,
    /// Step 4: send another message instead, keeping everything else.
    ChangeMessage,
    /// Step 4: set the buttons again.
    ChangeButtons,
    /// On a progress card.
    Control(Uuid, Control),
    /// In /campaigns: show this campaign's card.
    Show(Uuid),
    /// In /campaigns: the page of campaigns from this one on.
    Page(i64),
    /// Under a completed campaign's picture: one CSV row per recipient.
    Csv(Uuid),
    /// The answer to a card's question before something that cannot be
    /// undone.
    Confirm(Uuid, Confirm),
    /// Asked for a corrected message: correct the buttons alone instead.
    CorrectButtons(Uuid),
    /// Asked for a corrected message: correct this language's version.
    CorrectVersion(Uuid, Language),
}

/// What an admin confirms (or not) after a card's button asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirm {
    /// Edit the delivered messages to the corrected message shown.
    Edit,
    /// Delete the delivered messages.
    Recall,
    /// Cancel the campaign.
    Cancel,
    /// Neither: leave things as they are.
    Keep,
}

/// One press in the audience builder ([`crate::segment`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refinement {
    Language(Language),
    /// Cycles: not used → has it → has it not → not used.
    Tag(String),
    /// Active within this many days; 0 for any time.
    Active(u32),
    Source(String),
    Everyone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Toggle {
    Silent,
    Protected,
    Paid,
    Unsubscribe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Pause,
    Resume,
    Cancel,
    /// A scheduled campaign: choose another start time.
    Move,
    /// A campaign awaiting approval: let it begin (another admin only).
    Approve,
    /// Correct the message: asks for it, then to confirm.
    Edit,
    /// Delete every delivered message: asks to confirm.
    Recall,
}

/// A start time offered as a button.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    Now,
    InAnHour,
    TomorrowMorning,
}

impl Preset {
    pub const ALL: [Preset; 3] = [Preset::Now, Preset::InAnHour, Preset::TomorrowMorning];

    fn code(self) -> &'static str {
        match self {
            Preset::Now => "now",
            Preset::InAnHour => "1h",
            Preset::TomorrowMorning => "t10",
        }
    }

    fn from_code(code: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.code() == code)
    }

    pub fn label(self) -> &'static str {
        match self {
            Preset::Now => "▶️ Now",
            Preset::InAnHour => "In 1 hour",
            Preset::TomorrowMorning => "Tomorrow 10:00",
        }
    }

    /// The time as an admin would type it (`courier_core::schedule`);
    /// `None` for now.
    pub fn written(self) -> Option<&'static str> {
        match self {
            Preset::Now => None,
            Preset::InAnHour => Some("in 1h"),
            Preset::TomorrowMorning => Some("tomorrow 10:00"),
        }
    }
}

impl Action {
    /// The campaign a press acts on, if any.
    pub fn campaign(&self) -> Option<Uuid> {
        match self {
            Action::Control(id, _)
            | Action::Show(id)
            | Action::Csv(id)
            | Action::Confirm(id, _)
            | Action::CorrectButtons(id)
            | Action::CorrectVersion(id, _) => Some(*id),
            Action::Audience(_)
            | Action::Segment
            | Action::Refine(_)
            | Action::UseSegment
            | Action::UseAlbum
            | Action::SkipButtons
            | Action::Toggle(_)
            | Action::Variant(_)
            | Action::TestSend
            | Action::When
            | Action::StartAt(_)
            | Action::Start
            | Action::Abort
            | Action::Back
            | Action::Rename
            | Action::ChangeMessage
            | Action::ChangeButtons
            | Action::Page(_) => None,
        }
    }

    /// The callback data: at most 64 bytes, as Telegram requires (a UUID
    /// and the longest prefix take 46).
    /// Tags (32) and sources the builder offers (see
    /// [`Action::fits`]) keep refinements within it too.
    pub fn data(&self) -> String {
        match self {
            Action::Audience(audience) => format!("bc:aud:{}", audience.code().unwrap_or("")),
            Action::Segment => "bc:seg".into(),
            Action::UseSegment => "bc:use".into(),
            Action::Refine(Refinement::Language(language)) => {
                format!("bc:f:lang:{}", language.code().unwrap_or(""))
            }
            Action::Refine(Refinement::Tag(tag)) => format!("bc:f:tag:{tag}"),
            Action::Refine(Refinement::Active(days)) => format!("bc:f:act:{days}"),
            Action::Refine(Refinement::Source(source)) => format!("bc:f:src:{source}"),
            Action::Refine(Refinement::Everyone) => "bc:f:all".into(),
            Action::UseAlbum => "bc:album".into(),
            Action::SkipButtons => "bc:skip".into(),
            Action::Toggle(toggle) => format!("bc:opt:{}", toggle.code()),
            Action::Variant(language) => format!("bc:var:{}", language.code().unwrap_or("")),
            Action::TestSend => "bc:test".into(),
            Action::When => "bc:when".into(),
            Action::StartAt(preset) => format!("bc:at:{}", preset.code()),
            Action::Start => "bc:start".into(),
            Action::Abort => "bc:abort".into(),
            Action::Back => "bc:back".into(),
            Action::Rename => "bc:name".into(),
            Action::ChangeMessage => "bc:msg".into(),
            Action::ChangeButtons => "bc:btn".into(),
            Action::Control(id, control) => format!("cc:{}:{id}", control.code()),
            Action::Show(id) => format!("cc:show:{id}"),
            Action::Page(offset) => format!("cc:page:{offset}"),
            Action::Csv(id) => format!("cc:csv:{id}"),
            Action::Confirm(id, answer) => format!("ok:{}:{id}", answer.code()),
            Action::CorrectButtons(id) => format!("am:btn:{id}"),
            Action::CorrectVersion(id, language) => {
                format!("am:ver:{}:{id}", language.code().unwrap_or(""))
            }
        }
    }

    /// The action `data` names, or `None` for anything else.
    pub fn parse(data: &str) -> Option<Action> {
        let parts: Vec<&str> = data.split(':').collect();
        Some(match parts.as_slice() {
            ["bc", "aud", code] => Action::Audience(Audience::from_code(code)?),
            ["bc", "seg"] => Action::Segment,
            ["bc", "use"] => Action::UseSegment,
            ["bc", "f", "lang", code] => {
                Action::Refine(Refinement::Language(Language::from_code(code)?))
            }
            ["bc", "var", code] => Action::Variant(Language::from_code(code)?),
            ["bc", "f", "tag", tag] => Action::Refine(Refinement::Tag(audience::tag(tag).ok()?)),
            ["bc", "f", "act", days] => Action::Refine(Refinement::Active(days.parse().ok()?)),
            ["bc", "f", "src", source] => {
                Action::Refine(Refinement::Source(audience::source(source).ok()?))
            }
            ["bc", "f", "all"] => Action::Refine(Refinement::Everyone),
            ["bc", "album"] => Action::UseAlbum,
            ["bc", "skip"] => Action::SkipButtons,
            ["bc", "opt", code] => Action::Toggle(Toggle::from_code(code)?),
            ["bc", "test"] => Action::TestSend,
            ["bc", "when"] => Action::When,
            ["bc", "at", code] => Action::StartAt(Preset::from_code(code)?),
            ["bc", "start"] => Action::Start,
            ["bc", "abort"] => Action::Abort,
            ["bc", "back"] => Action::Back,
            ["bc", "name"] => Action::Rename,
            ["bc", "msg"] => Action::ChangeMessage,
            ["bc", "btn"] => Action::ChangeButtons,
            ["cc", "show", id] => Action::Show(id.parse().ok()?),
            ["cc", "page", offset] => Action::Page(offset.parse().ok().filter(|o| *o >= 0)?),
            ["cc", "csv", id] => Action::Csv(id.parse().ok()?),
            ["ok", code, id] => Action::Confirm(id.parse().ok()?, Confirm::from_code(code)?),
            ["am", "btn", id] => Action::CorrectButtons(id.parse().ok()?),
            ["am", "ver", code, id] => {
                Action::CorrectVersion(id.parse().ok()?, Language::from_code(code)?)
            }
            ["cc", code, id] => Action::Control(id.parse().ok()?, Control::from_code(code)?),
            _ => return None,
        })
    }

    pub fn button(&self, label: impl Into<String>) -> InlineKeyboardButton {
        InlineKeyboardButton::callback(label, self.data())
    }

    /// Telegram refuses callback data over 64 bytes: a long source cannot
    /// be a button (it can still be typed).
    pub fn fits(&self) -> bool {
        self.data().len() <= 64
    }
}

impl Toggle {
    const ALL: [Toggle; 4] = [
        Toggle::Silent,
        Toggle::Protected,
        Toggle::Paid,
        Toggle::Unsubscribe,
    ];

    fn code(self) -> &'static str {
        match self {
            Toggle::Silent => "silent",
            Toggle::Protected => "protected",
            Toggle::Paid => "paid",
            Toggle::Unsubscribe => "unsub",
        }
    }

    fn from_code(code: &str) -> Option<Toggle> {
        Toggle::ALL.into_iter().find(|t| t.code() == code)
    }
}

impl Control {
    const ALL: [Control; 7] = [
        Control::Pause,
        Control::Resume,
        Control::Cancel,
        Control::Move,
        Control::Approve,
        Control::Edit,
        Control::Recall,
    ];

    fn code(self) -> &'static str {
        match self {
            Control::Pause => "pause",
            Control::Resume => "resume",
            Control::Cancel => "cancel",
            Control::Move => "move",
            Control::Approve => "approve",
            Control::Edit => "edit",
            Control::Recall => "recall",
        }
    }

    fn from_code(code: &str) -> Option<Control> {
        Control::ALL.into_iter().find(|c| c.code() == code)
    }
}

impl Confirm {
    const ALL: [Confirm; 4] = [
        Confirm::Edit,
        Confirm::Recall,
        Confirm::Cancel,
        Confirm::Keep,
    ];

    fn code(self) -> &'static str {
        match self {
            Confirm::Edit => "edit",
            Confirm::Recall => "recall",
            Confirm::Cancel => "cancel",
            Confirm::Keep => "keep",
        }
    }

    fn from_code(code: &str) -> Option<Confirm> {
        Confirm::ALL.into_iter().find(|c| c.code() == code)
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
            Action::Page(20),
            Action::CorrectButtons(id),
            Action::CorrectVersion(id, Language::Ru),
            Action::Csv(id),
        ];
        actions.extend([Audience::All, Audience::Ru, Audience::En].map(Action::Audience));
        actions.extend([
            Action::Segment,
            Action::UseSegment,
            Action::UseAlbum,
            Action::Variant(Language::En),
            Action::TestSend,
            Action::When,
            Action::Back,
            Action::Rename,
            Action::ChangeMessage,
            Action::ChangeButtons,
        ]);
        actions.extend(Preset::ALL.map(Action::StartAt));
        actions.extend(
            [
                Refinement::Language(Language::Ru),
                Refinement::Tag("a".repeat(audience::MAX_TAG_LEN)),
                Refinement::Active(30),
                Refinement::Source("ad_spring".into()),
                Refinement::Everyone,
            ]
            .map(Action::Refine),
        );
        actions.extend(Toggle::ALL.map(Action::Toggle));
        actions.extend(Control::ALL.map(|c| Action::Control(id, c)));
        actions.extend(Confirm::ALL.map(|c| Action::Confirm(id, c)));
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
            "bc:at:later",
            "cc:pause:not-a-uuid",
            "cc:explode:0190a6f0-0000-7000-8000-000000000000",
            "bc:f:lang:de",
            "bc:f:tag:not!a:tag",
            "bc:f:act:soon",
            "bc:f:src:a b",
        ] {
            assert_eq!(Action::parse(data), None, "{data:?}");
        }
    }

    #[test]
    fn a_source_too_long_for_a_button_does_not_fit() {
        let long = Action::Refine(Refinement::Source("s".repeat(audience::MAX_SOURCE_LEN)));
        assert!(!long.fits());
        assert!(Action::Refine(Refinement::Source("ad_spring".into())).fits());
    }
}
