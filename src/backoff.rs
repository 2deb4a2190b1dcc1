//! The one backoff policy of every retry loop: each wait twice the one before, up to a
//! cap. The loops keep their own give-up rules (a deadline, an answer that waiting cannot
//! change); the growth of their waits is decided here.

use std::time::Duration;

/// The wait after `wait`: twice it, but never more than `cap` (nor an overflow). Pure.
pub fn doubled(wait: Duration, cap: Duration) -> Duration {
    wait.saturating_mul(2).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap_and_never_overflow() {
        let cap = Duration::from_secs(30);
        let cases = [
            (Duration::from_secs(1), Duration::from_secs(2)),
            (Duration::from_secs(16), cap),
            (cap, cap),
            (Duration::ZERO, Duration::ZERO),
            (Duration::MAX, cap),
        ];
        for (wait, want) in cases {
            assert_eq!(doubled(wait, cap), want, "{wait:?}");
        }
    }
}
