//! The service's clock.

/// A configured span as a span of the clock; one too long for it is as good as forever.
pub(crate) fn clock_span(span: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(span).unwrap_or(chrono::Duration::MAX)
}

/// The current time, truncated to the microseconds both databases store, so that what an
/// insert returns equals what a later read finds.
pub(crate) fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6)
}
