//! Authentication: password hashing and policy, access and refresh tokens, and the `Actor` (who is calling).

pub mod actor;
pub mod limiter;
pub mod password;
pub mod tokens;

pub use actor::Actor;
pub use password::{PasswordHasher, PasswordPolicy};
pub use tokens::TokenService;

use crate::config::Config;

/// Everything the account services need to authenticate: hashing, password rules and tokens.
#[derive(Clone)]
pub struct Auth {
    pub hasher: PasswordHasher,
    pub policy: PasswordPolicy,
    pub tokens: TokenService,
    pub abuse: crate::config::AbuseLimits,
}

impl Auth {
    pub fn new(config: &Config) -> Self {
        Self {
            hasher: PasswordHasher::new(config.abuse.hash_wait),
            policy: PasswordPolicy::new(config.password_min_length),
            tokens: TokenService::new(config),
            abuse: config.abuse.clone(),
        }
    }
}
