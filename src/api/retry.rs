//! How often and how long to try again: jittered exponential backoff
//! (backon's schedule), bounded by attempts and by total time. A server's
//! `Retry-After` replaces the computed delay for that attempt.

use std::time::Duration;

use backon::BackoffBuilder;

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: usize,
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// No retry starts later than this after the first attempt
    /// (`--retry-max-time`).
    pub max_time: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 8,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_time: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// The delays before each retry.
    pub fn delays(&self) -> impl Iterator<Item = Duration> + Send {
        backon::ExponentialBuilder::default()
            .with_min_delay(self.first_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_max_times(self.max_retries)
            .with_jitter()
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_bounded_in_count_and_size() {
        let policy = RetryPolicy::default();
        let delays: Vec<Duration> = policy.delays().collect();
        assert_eq!(delays.len(), 8);
        // Jitter adds up to one more delay's worth on top of the base.
        assert!(
            delays.iter().all(|d| *d <= policy.max_delay * 2),
            "{delays:?}"
        );
        assert!(delays[0] >= policy.first_delay);
    }
}
