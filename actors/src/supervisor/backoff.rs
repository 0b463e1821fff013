//! Jittered exponential backoff with a cap and a floor: the one delay rule shared by the
//! supervisors (between restarts of a crashed child) and the tunnels (between ssh runs).
//! Pure: the caller draws the jitter (`unit` in `[0, 1)`) so tests need no randomness.

use std::time::Duration;

/// Backoff parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Delay before the first retry.
    pub initial: Duration,
    /// Cap.
    pub max: Duration,
    /// Growth factor per attempt (2 doubles).
    pub multiplier: f64,
    /// Fraction taken off at random, in `[0, 1]`: the delay is scaled by `[1 - jitter, 1]`.
    pub jitter: f64,
}

// === impl Backoff ===

impl Backoff {
    /// Delay before retry `attempt` (1-based); `unit` in `[0, 1)` draws the jitter. Never
    /// below `initial * (1 - jitter)`, so a retry loop is never hot.
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let jitter = self.jitter.clamp(0.0, 1.0);
        let exp = self
            .multiplier
            .max(1.0)
            .powi(attempt.saturating_sub(1).min(64) as i32);
        let capped = (self.initial.as_secs_f64() * exp).min(self.max.as_secs_f64());
        let scaled = Duration::from_secs_f64(capped * (1.0 - jitter * unit.clamp(0.0, 1.0)));
        scaled.max(self.initial.min(self.max).mul_f64(1.0 - jitter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn grows_caps_and_jitters_down_to_a_floor() {
        let b = Backoff {
            initial: ms(100),
            max: Duration::from_secs(2),
            multiplier: 2.0,
            jitter: 0.5,
        };
        let no_jitter: Vec<u128> = (1..=7).map(|a| b.delay(a, 0.0).as_millis()).collect();
        assert_eq!(no_jitter, vec![100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(b.delay(1, 0.999).as_millis(), 50);
        assert!(b.delay(3, 0.5) < b.delay(3, 0.0));
        assert_eq!(b.delay(1000, 0.0), b.max);
        assert!(b.delay(1, 0.999) >= ms(50), "floor initial*(1-jitter)");
    }

    #[test]
    fn table() {
        let b = |initial, max, multiplier, jitter| Backoff {
            initial: ms(initial),
            max: ms(max),
            multiplier,
            jitter,
        };
        // (backoff, attempt, unit, want ms)
        let cases = [
            (b(250, 60_000, 2.0, 0.2), 1, 0.0, 250),
            (b(250, 60_000, 2.0, 0.2), 9, 0.0, 60_000),
            (b(250, 60_000, 2.0, 0.2), 1, 0.999, 200),
            (b(100, 1_000, 3.0, 0.0), 3, 0.5, 900),
            (b(100, 1_000, 0.5, 0.0), 5, 0.0, 100), // a multiplier below 1 never shrinks
            (b(0, 0, 2.0, 0.3), 4, 0.7, 0),
        ];
        for (bo, attempt, unit, want) in cases {
            assert_eq!(
                bo.delay(attempt, unit).as_millis(),
                want,
                "{bo:?} {attempt} {unit}"
            );
        }
    }
}
