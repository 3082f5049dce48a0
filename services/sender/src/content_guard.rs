//! Stopping a campaign whose content Telegram refuses. A 400 about the
//! message itself (bad entities, too long, wrong file id, bad button) will
//! fail for every recipient, so after a few identical refusals the campaign
//! pauses itself with the reason, for the admin to see, instead of burning
//! through the whole audience.

use std::collections::HashMap;

use uuid::Uuid;

/// Identical refusals of one campaign's content, per replica, before it
/// pauses the campaign.
pub const REFUSALS_BEFORE_PAUSE: u32 = 3;

#[derive(Debug, Default)]
pub struct ContentGuard {
    refusals: HashMap<(Uuid, String), u32>,
}

impl ContentGuard {
    /// Counts a refusal; true when the campaign should now pause.
    pub fn refused(&mut self, campaign: Uuid, reason: &str) -> bool {
        let count = self
            .refusals
            .entry((campaign, reason.to_owned()))
            .or_default();
        *count += 1;
        *count >= REFUSALS_BEFORE_PAUSE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_after_a_few_identical_refusals() {
        let mut guard = ContentGuard::default();
        let campaign = Uuid::nil();
        assert!(!guard.refused(campaign, "message is too long"));
        assert!(!guard.refused(campaign, "message is too long"));
        assert!(guard.refused(campaign, "message is too long"));
    }

    #[test]
    fn different_reasons_and_campaigns_count_apart() {
        let mut guard = ContentGuard::default();
        let (a, b) = (Uuid::nil(), Uuid::max());
        guard.refused(a, "x");
        guard.refused(a, "x");
        assert!(!guard.refused(a, "y"));
        assert!(!guard.refused(b, "x"));
    }
}
