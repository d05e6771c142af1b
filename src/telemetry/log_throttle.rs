//! A cap on repeated log lines: a flood of the same failure (refused calls, refused connections,
//! a failing `accept`) writes a few lines a second and counts the rest, instead of one line per
//! event. Metrics still count every event.

use tokio::time::{Duration, Instant};

/// The window the cap applies to.
const WINDOW: Duration = Duration::from_secs(1);

/// Lets at most `per_second` lines of one kind through in each one-second window and counts the
/// others, to be reported on the next line that passes.
#[derive(Debug, Clone)]
pub(crate) struct LogThrottle {
    per_second: u32,
    window_start: Option<Instant>,
    passed: u32,
    suppressed: u64,
}

impl LogThrottle {
    pub(crate) const fn new(per_second: u32) -> Self {
        Self {
            per_second,
            window_start: None,
            passed: 0,
            suppressed: 0,
        }
    }

    /// `Some(n)`: write the line, and say that `n` similar lines were suppressed since the last
    /// one written. `None`: suppress it.
    pub(crate) fn admit(&mut self, now: Instant) -> Option<u64> {
        if self
            .window_start
            .is_none_or(|start| now.saturating_duration_since(start) >= WINDOW)
        {
            self.window_start = Some(now);
            self.passed = 0;
        }
        if self.passed < self.per_second {
            self.passed += 1;
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed = self.suppressed.saturating_add(1);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_passes_a_few_lines_a_second_and_reports_the_rest_on_the_next_line() {
        let start = Instant::now();
        let mut throttle = LogThrottle::new(3);
        let first_second: Vec<_> = (0..1000)
            .map(|i| throttle.admit(start + Duration::from_micros(i * 900)))
            .collect();
        assert_eq!(first_second[..3], [Some(0), Some(0), Some(0)]);
        assert!(first_second[3..].iter().all(Option::is_none));
        // The next window: the first line carries the count of the 997 suppressed.
        assert_eq!(throttle.admit(start + Duration::from_secs(1)), Some(997));
        assert_eq!(throttle.admit(start + Duration::from_millis(1001)), Some(0));
    }

    #[test]
    fn occasional_lines_all_pass() {
        let start = Instant::now();
        let mut throttle = LogThrottle::new(1);
        for second in 0..10 {
            assert_eq!(throttle.admit(start + Duration::from_secs(second)), Some(0));
        }
    }
}
