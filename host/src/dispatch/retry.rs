//! Retry maths, pure: exponential backoff with full jitter.

use crate::model::{Outcome, RetryPolicy};

/// What to do after attempt `number` ended with `outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Succeeded,
    /// Try again after this many ms.
    RetryIn(u64),
    Dead,
}

/// Decides the delivery's fate. `jitter` is a uniform random number in
/// `[0, 1)`: the wait is `jitter * min(initial * 2^(number-1), max)`.
pub fn decide(policy: &RetryPolicy, number: u32, outcome: &Outcome, jitter: f64) -> Decision {
    if *outcome == Outcome::Ok {
        return Decision::Succeeded;
    }
    if !outcome.is_retryable() || number >= policy.max_attempts {
        return Decision::Dead;
    }
    Decision::RetryIn((backoff_cap(policy, number) as f64 * jitter.clamp(0.0, 1.0)) as u64)
}

/// The longest wait between two attempts, whatever a plugin's policy
/// asks: a week. A handler chooses its policy, and a wait near `u64::MAX`
/// would overflow the clock it is added to.
pub const MAX_BACKOFF_MS: u64 = 7 * 24 * 3600 * 1000;

/// The upper bound of the wait after attempt `number` (1-based).
pub fn backoff_cap(policy: &RetryPolicy, number: u32) -> u64 {
    let doublings = number.saturating_sub(1).min(63);
    policy
        .initial_backoff_ms
        .saturating_mul(1u64 << doublings)
        .min(policy.max_backoff_ms)
        .min(MAX_BACKOFF_MS)
}

/// When a retry `wait_ms` after `now_ms` falls due.
pub fn due_after(now_ms: u64, wait_ms: u64) -> u64 {
    now_ms.saturating_add(wait_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        max_attempts: 5,
        initial_backoff_ms: 1_000,
        max_backoff_ms: 3_600_000,
    };

    #[test]
    fn backoff_doubles_and_is_capped() {
        let caps: Vec<u64> = (1..=4).map(|n| backoff_cap(&POLICY, n)).collect();
        assert_eq!(caps, [1_000, 2_000, 4_000, 8_000]);
        assert_eq!(backoff_cap(&POLICY, 40), 3_600_000);
        assert_eq!(backoff_cap(&POLICY, u32::MAX), 3_600_000);
    }

    #[test]
    fn a_policy_asking_for_an_endless_wait_gets_a_week() {
        let greedy = RetryPolicy {
            max_attempts: 100,
            initial_backoff_ms: u64::MAX,
            max_backoff_ms: u64::MAX,
        };
        let retry = Outcome::Retry("x".into());
        for number in [1, 2, 64, 99] {
            match decide(&greedy, number, &retry, 0.999_999) {
                Decision::RetryIn(ms) => assert!(ms <= MAX_BACKOFF_MS, "{ms}"),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(due_after(u64::MAX - 1, MAX_BACKOFF_MS), u64::MAX);
    }

    #[test]
    fn jitter_spreads_the_wait_below_the_cap() {
        let retry = Outcome::Retry("x".into());
        assert_eq!(decide(&POLICY, 3, &retry, 0.0), Decision::RetryIn(0));
        assert_eq!(decide(&POLICY, 3, &retry, 0.5), Decision::RetryIn(2_000));
        assert_eq!(
            decide(&POLICY, 3, &retry, 0.999_999),
            Decision::RetryIn(3_999)
        );
    }

    #[test]
    fn rejections_and_exhaustion_are_dead_letters() {
        assert_eq!(
            decide(&POLICY, 1, &Outcome::Reject("bad".into()), 0.5),
            Decision::Dead
        );
        assert_eq!(decide(&POLICY, 5, &Outcome::OutOfFuel, 0.5), Decision::Dead);
        assert_eq!(
            decide(&POLICY, 4, &Outcome::Trap("t".into()), 0.0),
            Decision::RetryIn(0)
        );
        assert_eq!(decide(&POLICY, 5, &Outcome::Ok, 0.5), Decision::Succeeded);
    }
}
