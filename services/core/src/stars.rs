//! What the paid broadcast lane costs. Telegram charges 0.1 Star for each
//! message above the free 30 a second (only for delivered ones), from the
//! bot's Stars balance. The bot shows the estimate beside the balance
//! before an admin starts a paid campaign. Amounts are in nanostars, as
//! Telegram's `StarAmount` counts them, so tenths of a Star stay exact.

/// One Star in nanostars.
pub const NANOSTARS_PER_STAR: i64 = 1_000_000_000;
/// Telegram's price of one message above the free rate: 0.1 Star.
pub const NANOSTARS_PER_PAID_MESSAGE: i64 = NANOSTARS_PER_STAR / 10;
/// Messages a second a bot sends without charge.
pub const FREE_PER_SECOND: i64 = 30;
/// The balance Telegram asks of a bot before it may broadcast paid (its
/// FAQ, 2026: 10,000 Stars, and 10,000 monthly active users).
pub const PAID_BROADCAST_MIN_BALANCE: i64 = 10_000 * NANOSTARS_PER_STAR;

/// The cost, in nanostars, of sending to `recipients` on the paid lane at
/// `rate` messages a second: every second, the first 30 are free.
pub fn paid_lane_cost(recipients: i64, rate: f64) -> i64 {
    if recipients <= 0 || !crate::send_limits::is_usable(rate) {
        return 0;
    }
    let seconds = (recipients as f64 / rate).ceil() as i64;
    let charged = (recipients - FREE_PER_SECOND * seconds).max(0);
    charged * NANOSTARS_PER_PAID_MESSAGE
}

/// How far ahead senders look while paid broadcasts go out: a balance that
/// cannot pay for this long of them is running low.
pub const LOW_BALANCE_HORIZON_SECS: i64 = 10;

/// Whether `balance` (nanostars) is running low for paid broadcasts at
/// `paid_rate` a second: it cannot pay for [`LOW_BALANCE_HORIZON_SECS`] of
/// them. Then senders move the bot's paid campaigns to the free lane
/// before Telegram refuses a send.
pub fn running_low(balance: i64, paid_rate: f64) -> bool {
    let messages = (paid_rate * LOW_BALANCE_HORIZON_SECS as f64).ceil() as i64;
    balance < paid_lane_cost(messages, paid_rate)
}

/// `nanostars` as people read Stars: "291 Stars", "7.5 Stars" (tenths,
/// rounded up: an estimate must not come out short).
pub fn describe(nanostars: i64) -> String {
    let tenths = nanostars.div_euclid(NANOSTARS_PER_PAID_MESSAGE)
        + i64::from(nanostars.rem_euclid(NANOSTARS_PER_PAID_MESSAGE) > 0);
    let (whole, tenth) = (tenths.div_euclid(10), tenths.rem_euclid(10));
    match tenth {
        0 => format!("{whole} Stars"),
        _ => format!("{whole}.{tenth} Stars"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_thirty_of_every_second_are_free() {
        // 100 at 1,000/s go out in one second: 70 are charged.
        assert_eq!(paid_lane_cost(100, 1000.0), 70 * NANOSTARS_PER_PAID_MESSAGE);
        // 3,000 take three seconds: 90 free, 2,910 charged, 291 Stars.
        assert_eq!(describe(paid_lane_cost(3000, 1000.0)), "291 Stars");
        assert_eq!(describe(paid_lane_cost(1_000_000, 1000.0)), "97000 Stars");
        assert_eq!(paid_lane_cost(30, 1000.0), 0);
        // At the free rate nothing is above it.
        assert_eq!(paid_lane_cost(10_000, 30.0), 0);
        assert_eq!(paid_lane_cost(0, 1000.0), 0);
        assert_eq!(paid_lane_cost(100, f64::NAN), 0);
    }

    #[test]
    fn a_balance_for_less_than_ten_seconds_of_paid_sends_runs_low() {
        // Ten seconds at 1,000/s: 9,700 charged, 970 Stars.
        assert!(running_low(969 * NANOSTARS_PER_STAR, 1000.0));
        assert!(!running_low(970 * NANOSTARS_PER_STAR, 1000.0));
        // At the free rate nothing is charged: never low.
        assert!(!running_low(0, 30.0));
    }

    #[test]
    fn stars_read_in_tenths_rounded_up() {
        assert_eq!(describe(75 * NANOSTARS_PER_PAID_MESSAGE), "7.5 Stars");
        assert_eq!(describe(NANOSTARS_PER_STAR * 10_000), "10000 Stars");
        assert_eq!(describe(1), "0.1 Stars");
        assert_eq!(describe(0), "0 Stars");
    }
}
