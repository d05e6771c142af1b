//! Percentiles by sorting, and the formatting of durations and rates in the table.

use std::time::Duration;

/// The `q` quantile (0.0..=1.0) of `sorted` by nearest rank; zero for an empty slice.
pub fn pct(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64) * q).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of a few values (start-up runs).
pub fn median(values: &[Duration]) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    pct(&sorted, 0.5)
}

/// Milliseconds with three decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// A signed difference `b - a` in milliseconds.
pub fn diff_ms(a: Duration, b: Duration) -> f64 {
    (b.as_secs_f64() - a.as_secs_f64()) * 1e3
}

/// `+0.123 ms` / `-0.010 ms`.
pub fn signed_ms(value: f64) -> String {
    format!("{value:+.3} ms")
}

/// A verdict cell.
pub fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}
