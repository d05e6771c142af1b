//! Placeholder replaced by the benchmark (issue 9).
fn main() {}
