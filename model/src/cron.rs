//! Cron expressions, evaluated in UTC on the host's millisecond clock.

use chrono::{DateTime, TimeZone as _, Utc};

/// The value of a schedule override that turns it off.
pub const OFF: &str = "off";

/// A parsed cron expression.
#[derive(Debug, Clone)]
pub struct Cron(croner::Cron);

impl Cron {
    pub fn parse(expression: &str) -> Result<Self, String> {
        expression
            .parse::<croner::Cron>()
            .map(Cron)
            .map_err(|e| format!("invalid cron {expression:?}: {e}"))
    }

    /// The latest tick in `(after_ms, now_ms]`, if any.
    pub fn latest_tick(&self, after_ms: u64, now_ms: u64) -> Option<u64> {
        let now = utc(now_ms)?;
        let tick = self.0.find_previous_occurrence(&now, true).ok()?;
        let tick = u64::try_from(tick.timestamp_millis()).ok()?;
        (tick > after_ms).then_some(tick)
    }

    /// The first tick after `after_ms`.
    pub fn next_tick(&self, after_ms: u64) -> Option<u64> {
        let after = utc(after_ms)?;
        let tick = self.0.find_next_occurrence(&after, false).ok()?;
        u64::try_from(tick.timestamp_millis()).ok()
    }
}

/// `ms` since the epoch as a UTC time, if it is one.
pub fn utc(ms: u64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(i64::try_from(ms).ok()?).single()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: u64 = 60_000;
    /// 2026-01-01T00:00:00Z.
    const NEW_YEAR: u64 = 1_767_225_600_000;

    #[test]
    fn ticks_are_found_in_utc_at_the_expected_times() {
        let every_minute = Cron::parse("* * * * *").expect("cron");
        assert_eq!(every_minute.next_tick(NEW_YEAR), Some(NEW_YEAR + MINUTE));
        assert_eq!(
            every_minute.next_tick(NEW_YEAR + 1),
            Some(NEW_YEAR + MINUTE)
        );
        let nightly = Cron::parse("0 3 * * *").expect("cron");
        assert_eq!(
            nightly.next_tick(NEW_YEAR),
            Some(NEW_YEAR + 3 * 60 * MINUTE)
        );
        let every_second = Cron::parse("* * * * * *").expect("cron");
        assert_eq!(every_second.next_tick(NEW_YEAR), Some(NEW_YEAR + 1000));
        assert!(Cron::parse("61 * * * *").is_err());
        assert!(Cron::parse("not a cron").is_err());
    }

    #[test]
    fn missed_ticks_collapse_into_the_latest_one() {
        let every_minute = Cron::parse("* * * * *").expect("cron");
        // Down for ten minutes and a half: one tick, the latest.
        let now = NEW_YEAR + 10 * MINUTE + 30_000;
        assert_eq!(
            every_minute.latest_tick(NEW_YEAR, now),
            Some(NEW_YEAR + 10 * MINUTE)
        );
        // Fired at that tick: nothing more is due until the next.
        assert_eq!(every_minute.latest_tick(NEW_YEAR + 10 * MINUTE, now), None);
        // A tick exactly now is due.
        assert_eq!(
            every_minute.latest_tick(NEW_YEAR, NEW_YEAR + MINUTE),
            Some(NEW_YEAR + MINUTE)
        );
    }
}
