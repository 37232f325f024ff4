//! Configuration: the only place that reads the environment. `Debug` never shows the JWT secret.

use std::{fmt, net::SocketAddr, time::Duration};

/// Every variable `Config::from_env` reads (the deploy files and `.env.example` are tested against this).
pub const ENV_VARS: &[&str] = &[
    "DATABASE_URL",
    "BIND_ADDR",
    "JWT_SECRET",
    "ACCESS_TOKEN_TTL",
    "REFRESH_TOKEN_TTL",
    "MEDGRAPH_ENV",
    "LOG_FORMAT",
    "RUST_LOG",
    "DATABASE_MAX_CONNECTIONS",
    "PASSWORD_MIN_LENGTH",
];

pub const DEFAULT_DATABASE_URL: &str = "sqlite://medgraph.db?mode=rwc";
pub const DEFAULT_BIND_ADDR: &str = "127.0.0.1:8080";
/// NIST SP 800-63B rev 4: at least 15 characters for single-factor passwords; never configurable below 8.
pub const DEFAULT_PASSWORD_MIN_LENGTH: usize = 15;
pub const PASSWORD_MIN_LENGTH_FLOOR: usize = 8;
pub const MIN_PRODUCTION_SECRET_BYTES: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Clone)]
pub struct JwtSecret {
    bytes: Vec<u8>,
    /// True when no JWT_SECRET was configured and a random one was made for this process.
    pub generated: bool,
}

impl JwtSecret {
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn random() -> Self {
        let mut bytes = vec![0u8; 64];
        rand::fill(&mut bytes[..]);
        Self {
            bytes,
            generated: true,
        }
    }
}

impl fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.generated {
            "<generated>"
        } else {
            "<redacted>"
        })
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: String,
    pub bind_addr: SocketAddr,
    pub jwt_secret: JwtSecret,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub environment: Environment,
    pub log_format: LogFormat,
    pub db_max_connections: u32,
    pub password_min_length: usize,
}

/// One line naming the variable and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

fn invalid(var: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        reason: reason.into(),
    }
}

impl Config {
    /// Reads the process environment (after `.env` was loaded by the caller).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup`, so tests can supply variables without touching the process.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let environment = match get("MEDGRAPH_ENV").as_deref() {
            None | Some("development") => Environment::Development,
            Some("production") => Environment::Production,
            Some(other) => {
                return Err(invalid(
                    "MEDGRAPH_ENV",
                    format!("expected development or production, got {other:?}"),
                ));
            }
        };
        let log_format = match get("LOG_FORMAT").as_deref() {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(invalid(
                    "LOG_FORMAT",
                    format!("expected pretty or json, got {other:?}"),
                ));
            }
        };

        let database_url = get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "DATABASE_URL",
                "expected a sqlite://, sqlite::memory: or postgres:// URL",
            ));
        }

        let bind_addr = get("BIND_ADDR")
            .unwrap_or_else(|| DEFAULT_BIND_ADDR.to_owned())
            .parse()
            .map_err(|e| {
                invalid(
                    "BIND_ADDR",
                    format!("expected host:port, e.g. 127.0.0.1:8080 ({e})"),
                )
            })?;

        let jwt_secret = match lookup("JWT_SECRET").filter(|s| !s.is_empty()) {
            Some(secret) => {
                if environment == Environment::Production
                    && secret.len() < MIN_PRODUCTION_SECRET_BYTES
                {
                    return Err(invalid(
                        "JWT_SECRET",
                        format!(
                            "must be at least {MIN_PRODUCTION_SECRET_BYTES} bytes in production"
                        ),
                    ));
                }
                JwtSecret {
                    bytes: secret.into_bytes(),
                    generated: false,
                }
            }
            None if environment == Environment::Production => {
                return Err(invalid(
                    "JWT_SECRET",
                    format!(
                        "required in production (at least {MIN_PRODUCTION_SECRET_BYTES} bytes)"
                    ),
                ));
            }
            None => JwtSecret::random(),
        };

        let access_token_ttl = duration(&get, "ACCESS_TOKEN_TTL", Duration::from_secs(15 * 60))?;
        let refresh_token_ttl = duration(
            &get,
            "REFRESH_TOKEN_TTL",
            Duration::from_secs(14 * 24 * 3600),
        )?;

        let db_max_connections = match get("DATABASE_MAX_CONNECTIONS") {
            None => 10,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| {
                    invalid(
                        "DATABASE_MAX_CONNECTIONS",
                        "expected a whole number from 1 to 1000",
                    )
                })?,
        };

        let password_min_length = match get("PASSWORD_MIN_LENGTH") {
            None => DEFAULT_PASSWORD_MIN_LENGTH,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (PASSWORD_MIN_LENGTH_FLOOR..=128).contains(n))
                .ok_or_else(|| {
                    invalid(
                        "PASSWORD_MIN_LENGTH",
                        format!("expected a whole number from {PASSWORD_MIN_LENGTH_FLOOR} to 128"),
                    )
                })?,
        };

        Ok(Config {
            database_url,
            bind_addr,
            jwt_secret,
            access_token_ttl,
            refresh_token_ttl,
            environment,
            log_format,
            db_max_connections,
            password_min_length,
        })
    }

    /// A development configuration for tests: random secret, default TTLs and password rules.
    pub fn for_tests(database_url: &str) -> Self {
        Config {
            database_url: database_url.to_owned(),
            bind_addr: ([127, 0, 0, 1], 0).into(),
            jwt_secret: JwtSecret::random(),
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(14 * 24 * 3600),
            environment: Environment::Development,
            log_format: LogFormat::Pretty,
            db_max_connections: 5,
            password_min_length: DEFAULT_PASSWORD_MIN_LENGTH,
        }
    }

    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }
}

fn duration(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let Some(raw) = get(var) else {
        return Ok(default);
    };
    // A bare number means seconds; otherwise a humantime duration such as 15m, 1h, 14d.
    let parsed = match raw.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(&raw).map_err(|e| {
            invalid(
                var,
                format!("expected a duration like 900, 15m or 14d ({e})"),
            )
        })?,
    };
    if parsed < Duration::from_secs(1) {
        return Err(invalid(var, "must be at least 1 second"));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_run_on_sqlite_with_a_generated_secret() {
        let c = config(&[]).expect("defaults are valid");
        assert_eq!(c.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(c.bind_addr.to_string(), DEFAULT_BIND_ADDR);
        assert!(c.jwt_secret.generated);
        assert_eq!(c.access_token_ttl, Duration::from_secs(900));
        assert_eq!(c.refresh_token_ttl, Duration::from_secs(14 * 86400));
        assert_eq!(c.password_min_length, 15);
    }

    #[test]
    fn production_refuses_a_missing_or_short_secret() {
        let err = config(&[("MEDGRAPH_ENV", "production")]).expect_err("should be rejected");
        assert_eq!(err.var, "JWT_SECRET");
        let err = config(&[("MEDGRAPH_ENV", "production"), ("JWT_SECRET", "short")])
            .expect_err("should be rejected");
        assert_eq!(err.var, "JWT_SECRET");
        let ok = config(&[
            ("MEDGRAPH_ENV", "production"),
            ("JWT_SECRET", &"x".repeat(32)),
        ]);
        assert!(ok.is_ok());
    }

    #[test]
    fn invalid_values_name_their_variable() {
        for (var, value) in [
            ("BIND_ADDR", "nowhere"),
            ("ACCESS_TOKEN_TTL", "soon"),
            ("REFRESH_TOKEN_TTL", "0"),
            ("MEDGRAPH_ENV", "staging"),
            ("LOG_FORMAT", "xml"),
            ("DATABASE_URL", "mysql://x"),
            ("DATABASE_MAX_CONNECTIONS", "0"),
            ("PASSWORD_MIN_LENGTH", "7"),
        ] {
            let err = config(&[(var, value)]).expect_err("should be rejected");
            assert_eq!(err.var, var, "{var}={value}");
            assert!(
                err.to_string()
                    .starts_with(&format!("invalid configuration: {var}: "))
            );
        }
    }

    #[test]
    fn durations_accept_seconds_and_humantime() {
        let c = config(&[("ACCESS_TOKEN_TTL", "120"), ("REFRESH_TOKEN_TTL", "2h")]).expect("valid");
        assert_eq!(c.access_token_ttl, Duration::from_secs(120));
        assert_eq!(c.refresh_token_ttl, Duration::from_secs(7200));
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let c = config(&[("JWT_SECRET", "super-secret-value-that-must-not-leak")]).expect("valid");
        assert!(!format!("{c:?}").contains("super-secret"));
    }
}
