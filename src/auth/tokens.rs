//! Access tokens (JWT, HS256, algorithm pinned on verify) and refresh tokens (opaque, 256-bit random,
//! stored only as a SHA-256 hash).

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    auth::Actor,
    config::Config,
    domain::{Role, UserId},
};

const ISSUER: &str = "medgraph";
const AUDIENCE: &str = "medgraph-api";
const ACCESS_TYPE: &str = "access";
/// Tolerated clock difference between servers, in seconds.
const LEEWAY_SECS: u64 = 30;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: Uuid,
    exp: u64,
    iat: u64,
    iss: String,
    aud: String,
    jti: Uuid,
    role: String,
    typ: String,
}

#[derive(Clone)]
pub struct TokenService {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    access_ttl: Duration,
    pub refresh_ttl: Duration,
}

/// Why an access token was refused (logged at debug; the client only sees UNAUTHENTICATED).
#[derive(Debug, thiserror::Error)]
#[error("invalid access token: {0}")]
pub struct InvalidToken(String);

impl TokenService {
    pub fn new(config: &Config) -> Self {
        let secret = config.jwt_secret.bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            access_ttl: config.access_token_ttl,
            refresh_ttl: config.refresh_token_ttl,
        }
    }

    pub fn access_ttl_secs(&self) -> i64 {
        i64::try_from(self.access_ttl.as_secs()).unwrap_or(i64::MAX)
    }

    pub fn issue_access(&self, user_id: UserId, role: Role) -> anyhow::Result<String> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: user_id.0,
            iat: now,
            exp: now + self.access_ttl.as_secs(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            jti: Uuid::now_v7(),
            role: role.as_str().into(),
            typ: ACCESS_TYPE.into(),
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    pub fn verify_access(&self, token: &str) -> Result<Actor, InvalidToken> {
        self.verify_access_until(token).map(|(actor, _)| actor)
    }

    /// The caller and how long the token stays valid (zero once past `exp`, within the leeway).
    pub fn verify_access_until(&self, token: &str) -> Result<(Actor, Duration), InvalidToken> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| InvalidToken(e.to_string()))?;
        let claims = data.claims;
        if claims.typ != ACCESS_TYPE {
            return Err(InvalidToken("not an access token".into()));
        }
        let role = Role::parse(&claims.role).ok_or_else(|| InvalidToken("unknown role".into()))?;
        let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
        let remaining = claims.exp.saturating_sub(now);
        Ok((
            Actor {
                user_id: UserId(claims.sub),
                role,
            },
            Duration::from_secs(remaining),
        ))
    }
}

/// A new refresh token: 32 random bytes, base64url. Returns (token for the client, hash to store).
pub fn new_refresh_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_refresh_token(&token);
    (token, hash)
}

pub fn hash_refresh_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> TokenService {
        TokenService::new(&Config::for_tests("sqlite::memory:"))
    }

    #[test]
    fn an_issued_token_verifies_to_its_user_and_role() {
        let tokens = service();
        let user = UserId::new();
        let jwt = tokens.issue_access(user, Role::Admin).expect("issue");
        assert_eq!(
            tokens.verify_access(&jwt).expect("verify"),
            Actor {
                user_id: user,
                role: Role::Admin
            }
        );
    }

    #[test]
    fn tokens_from_another_secret_or_alg_none_are_refused() {
        let jwt = service()
            .issue_access(UserId::new(), Role::User)
            .expect("issue");
        assert!(service().verify_access(&jwt).is_err(), "other secret");

        let payload = jwt.split('.').nth(1).expect("payload");
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert!(
            service()
                .verify_access(&format!("{none_header}.{payload}."))
                .is_err()
        );
        assert!(service().verify_access("garbage").is_err());
    }

    #[test]
    fn refresh_tokens_are_random_and_stored_hashed() {
        let (a, hash_a) = new_refresh_token();
        let (b, _) = new_refresh_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(hash_a.len(), 64);
        assert_eq!(hash_refresh_token(&a), hash_a);
        assert!(!hash_a.contains(&a));
    }
}
