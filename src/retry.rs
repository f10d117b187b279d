//! Retrying with exponential backoff, for errors that say they are
//! [`Transient`](crate::error::ErrorClass::Transient); permanent ones return at once.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use backoff::ExponentialBackoff;
use tracing::warn;

use crate::error::Classify;

/// How long and how fast to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// First delay.
    pub initial: Duration,
    /// Longest single delay.
    pub max_interval: Duration,
    /// Give up after retrying this long.
    pub max_elapsed: Duration,
}

impl RetryPolicy {
    /// A policy starting at `initial` and giving up after `max_elapsed`.
    pub fn new(initial: Duration, max_elapsed: Duration) -> Self {
        RetryPolicy {
            initial,
            max_interval: Duration::from_secs(10),
            max_elapsed,
        }
    }
}

/// Runs `op` until it succeeds, fails permanently, or `policy` gives up.
/// Each retry is logged and counted in `gmrelay_source_retries_total{chain}`.
pub async fn with_retry<T, E, F, Fut>(
    policy: RetryPolicy,
    chain: &'static str,
    what: &str,
    mut op: F,
) -> Result<T, E>
where
    E: Classify + Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let backoff = ExponentialBackoff {
        initial_interval: policy.initial,
        max_interval: policy.max_interval,
        max_elapsed_time: Some(policy.max_elapsed),
        ..ExponentialBackoff::default()
    };
    backoff::future::retry_notify(
        backoff,
        || {
            let fut = op();
            async move {
                fut.await.map_err(|e| {
                    if e.is_transient() {
                        backoff::Error::transient(e)
                    } else {
                        backoff::Error::permanent(e)
                    }
                })
            }
        },
        |e: E, wait: Duration| {
            metrics::counter!("gmrelay_source_retries_total", "chain" => chain).increment(1);
            warn!(chain, error = %e, retry_in_ms = wait.as_millis() as u64, "{what}: transient failure, retrying");
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorClass;
    use std::cell::Cell;

    #[derive(Debug)]
    struct E(ErrorClass);
    impl Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{:?}", self.0)
        }
    }
    impl Classify for E {
        fn class(&self) -> ErrorClass {
            self.0
        }
    }

    #[tokio::test]
    async fn transient_errors_are_retried_permanent_ones_are_not() {
        let policy = RetryPolicy::new(Duration::from_millis(1), Duration::from_secs(5));
        let calls = Cell::new(0);
        let r: Result<u32, E> = with_retry(policy, "test", "op", || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n < 3 {
                    Err(E(ErrorClass::Transient))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(r.unwrap(), 3);

        calls.set(0);
        let r: Result<u32, E> = with_retry(policy, "test", "op", || {
            calls.set(calls.get() + 1);
            async { Err(E(ErrorClass::Permanent)) }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls.get(), 1);
    }

    #[tokio::test]
    async fn transient_errors_give_up_after_the_policy() {
        let policy = RetryPolicy::new(Duration::from_millis(1), Duration::from_millis(30));
        let calls = Cell::new(0);
        let r: Result<(), E> = with_retry(policy, "test", "op", || {
            calls.set(calls.get() + 1);
            async { Err(E(ErrorClass::Transient)) }
        })
        .await;
        assert!(r.is_err());
        assert!(calls.get() > 1);
    }
}
