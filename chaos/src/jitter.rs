//! Seeded pseudo-random delays (xorshift64*): reproducible from the seed a campaign prints.

use std::time::Duration;

/// A generator of delays.
#[derive(Debug, Clone)]
pub struct Jitter {
    state: u64,
}

impl Jitter {
    /// A generator from `seed` (0 is replaced: xorshift needs a non-zero state).
    pub fn new(seed: u64) -> Jitter {
        Jitter {
            state: if seed == 0 {
                0x9e37_79b9_7f4a_7c15
            } else {
                seed
            },
        }
    }

    /// A seed from the clock, for runs that print it.
    pub fn seed_from_clock() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    }

    /// The next raw value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A delay uniformly in `[min, max]`.
    pub fn between(&mut self, min: Duration, max: Duration) -> Duration {
        let span = max.saturating_sub(min).as_micros() as u64;
        let offset = if span == 0 {
            0
        } else {
            self.next_u64() % (span + 1)
        };
        min + Duration::from_micros(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_delays_and_within_bounds() {
        let (min, max) = (Duration::from_millis(5), Duration::from_millis(50));
        let mut a = Jitter::new(42);
        let mut b = Jitter::new(42);
        let mut distinct = std::collections::BTreeSet::new();
        for _ in 0..1000 {
            let d = a.between(min, max);
            assert_eq!(d, b.between(min, max));
            assert!(d >= min && d <= max, "{d:?}");
            distinct.insert(d);
        }
        assert!(
            distinct.len() > 500,
            "delays barely vary: {}",
            distinct.len()
        );
        assert_eq!(Jitter::new(0).between(min, min), min);
    }
}
