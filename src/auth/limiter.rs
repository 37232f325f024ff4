//! Per-client-IP rate limit of the authentication operations (login, register, refreshToken), counted
//! per GraphQL operation so batches and aliases cannot multiply attempts. In memory: per instance.

use std::{net::IpAddr, num::NonZeroU32};

use governor::{
    Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    state::keyed::DefaultKeyedStateStore,
};

use crate::{config::AbuseLimits, error::AppError};

/// Distinct client addresses remembered before idle ones are forgotten.
const MAX_TRACKED: usize = 100_000;

pub struct AuthRateLimiter {
    limiter: RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock>,
    clock: DefaultClock,
}

impl AuthRateLimiter {
    pub fn new(limits: &AbuseLimits) -> Self {
        let per_minute = NonZeroU32::new(limits.auth_per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(limits.auth_burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_minute(per_minute).allow_burst(burst);
        Self {
            limiter: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one attempt for `ip`, or says how long to wait.
    pub fn check(&self, ip: IpAddr) -> Result<(), AppError> {
        if self.limiter.len() > MAX_TRACKED {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            AppError::RateLimited {
                message: "Too many attempts from this address; try again later",
                retry_after: Some(wait.as_secs() + u64::from(wait.subsec_nanos() > 0)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_burst_passes_and_the_next_attempt_waits() {
        let limiter = AuthRateLimiter::new(&AbuseLimits {
            auth_per_minute: 5,
            auth_burst: 2,
            ..AbuseLimits::default()
        });
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        assert!(limiter.check(ip).is_ok());
        assert!(limiter.check(ip).is_ok());
        match limiter.check(ip) {
            Err(AppError::RateLimited {
                retry_after: Some(secs),
                ..
            }) => assert!((1..=12).contains(&secs), "{secs}"),
            other => panic!("expected RateLimited, got {other:?}"),
        }
        assert!(
            limiter.check("192.0.2.2".parse().expect("ip")).is_ok(),
            "other addresses are not affected"
        );
    }
}
