//! Passwords: the NIST SP 800-63B rev 4 policy and argon2id hashing on the blocking pool.

use std::{
    collections::HashSet,
    sync::{Arc, LazyLock},
    time::Duration,
};

use anyhow::Context;
use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};
use tokio::sync::Semaphore;

use crate::{
    config::PASSWORD_MIN_LENGTH_FLOOR,
    error::{AppError, AppResult},
};

/// Longest accepted password (NIST asks for at least 64; we accept well beyond the 128 a passphrase needs).
pub const PASSWORD_MAX_LENGTH: usize = 256;

/// Common passwords (lower-cased, 8+ characters); see common_passwords.LICENSE.md for the source.
static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common_passwords.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
});

#[derive(Clone, Copy, Debug)]
pub struct PasswordPolicy {
    pub min_length: usize,
}

impl PasswordPolicy {
    pub fn new(min_length: usize) -> Self {
        Self {
            min_length: min_length.max(PASSWORD_MIN_LENGTH_FLOOR),
        }
    }

    /// No composition rules: length and the blocklist only. The error is the reason for the field.
    pub fn check(&self, password: &str, context_words: &[&str]) -> Result<(), String> {
        let length = password.chars().count();
        if length < self.min_length {
            return Err(format!("must be at least {} characters", self.min_length));
        }
        if length > PASSWORD_MAX_LENGTH {
            return Err(format!("must be at most {PASSWORD_MAX_LENGTH} characters"));
        }
        let lowered = password.to_lowercase();
        if COMMON_PASSWORDS.contains(lowered.as_str()) {
            return Err("is too common; choose a less predictable password".into());
        }
        if context_words
            .iter()
            .any(|w| !w.is_empty() && lowered == w.to_lowercase())
        {
            return Err("must not be your name or email".into());
        }
        Ok(())
    }
}

/// Hashes and verifies with argon2id at OWASP's parameters (the crate defaults: m=19456 KiB, t=2, p=1),
/// on the blocking pool and with at most one hash per core at a time, so a login storm leaves the async
/// workers free for ordinary reads. A request that cannot get a hasher within `wait` is refused with
/// RATE_LIMITED instead of queueing without bound.
#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    wait: Duration,
    dummy_hash: Arc<tokio::sync::OnceCell<String>>,
}

impl PasswordHasher {
    pub fn new(wait: Duration) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            permits: Arc::new(Semaphore::new(cores)),
            wait,
            dummy_hash: Arc::default(),
        }
    }

    pub async fn hash(&self, password: &str) -> AppResult<String> {
        let password = password.to_owned();
        self.run(move || {
            Argon2::default()
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| anyhow::anyhow!("argon2 hash failed: {e}"))
        })
        .await
    }

    /// True when `password` matches `hash`. A malformed stored hash is an internal error.
    pub async fn verify(&self, password: &str, hash: &str) -> AppResult<bool> {
        let password = password.to_owned();
        let hash = hash.to_owned();
        self.run(move || {
            match Argon2::default().verify_password(password.as_bytes(), hash.as_str()) {
                Ok(()) => Ok(true),
                Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
                Err(e) => Err(anyhow::anyhow!("stored password hash unusable: {e}")),
            }
        })
        .await
    }

    /// Spends the same work as a real verification, for logins of unknown accounts, so the response time
    /// does not tell whether an email is registered.
    pub async fn verify_dummy(&self, password: &str) -> AppResult<()> {
        let hash = self
            .dummy_hash
            .get_or_try_init(|| self.hash("medgraph dummy password for timing"))
            .await?
            .clone();
        self.verify(password, &hash).await.map(|_| ())
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> AppResult<T> {
        let _permit = match tokio::time::timeout(self.wait, self.permits.acquire()).await {
            Ok(permit) => permit.context("password hasher closed")?,
            Err(_) => {
                return Err(AppError::RateLimited {
                    message: "The server is busy checking passwords; try again shortly",
                    retry_after: Some(1),
                });
            }
        };
        Ok(tokio::task::spawn_blocking(work)
            .await
            .context("password hashing task failed")??)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_checks_length_blocklist_and_context() {
        let policy = PasswordPolicy::new(15);
        assert!(policy.check("short", &[]).is_err());
        assert!(policy.check("correct horse battery staple", &[]).is_ok());
        assert!(
            policy
                .check(&"x".repeat(PASSWORD_MAX_LENGTH + 1), &[])
                .is_err()
        );
        assert!(
            policy
                .check("alice@example.com", &["alice@example.com"])
                .is_err()
        );
        let common = COMMON_PASSWORDS
            .iter()
            .find(|p| p.chars().count() >= 8)
            .expect("the blocklist has entries of 8+ characters");
        assert!(PasswordPolicy::new(8).check(common, &[]).is_err());
        assert!(
            PasswordPolicy::new(8)
                .check(&common.to_uppercase(), &[])
                .is_err()
        );
    }

    #[test]
    fn the_minimum_is_never_below_eight() {
        assert_eq!(PasswordPolicy::new(3).min_length, 8);
    }

    #[tokio::test]
    async fn a_request_that_cannot_get_a_hasher_in_time_is_rate_limited() {
        let hasher = PasswordHasher::new(Duration::ZERO);
        let _all = hasher
            .permits
            .acquire_many(u32::try_from(hasher.permits.available_permits()).unwrap_or(1))
            .await;
        match hasher.hash("correct horse battery staple").await {
            Err(AppError::RateLimited { .. }) => {}
            other => panic!("expected RateLimited, got {:?}", other.map(|_| ())),
        }
    }

    #[tokio::test]
    async fn hashes_verify_and_use_argon2id_with_owasp_parameters() {
        let hasher = PasswordHasher::new(Duration::from_secs(5));
        let hash = hasher
            .hash("correct horse battery staple")
            .await
            .expect("hash");
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            hasher
                .verify("correct horse battery staple", &hash)
                .await
                .expect("verify")
        );
        assert!(
            !hasher
                .verify("wrong horse battery staple", &hash)
                .await
                .expect("verify")
        );
        assert!(hasher.verify("x", "not a hash").await.is_err());
    }
}
