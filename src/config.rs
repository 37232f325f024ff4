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
    "GRAPHQL_INTROSPECTION",
    "GRAPHQL_MAX_DEPTH",
    "GRAPHQL_MAX_COMPLEXITY",
    "GRAPHQL_MAX_ALIASES",
    "GRAPHQL_MAX_DIRECTIVES",
    "GRAPHQL_MAX_TOKENS",
    "GRAPHQL_MAX_RECURSION",
    "GRAPHQL_MAX_BATCH",
    "MAX_BODY_BYTES",
    "REQUEST_TIMEOUT",
    "DB_STATEMENT_TIMEOUT",
    "AUTH_RATE_LIMIT_PER_MINUTE",
    "AUTH_RATE_LIMIT_BURST",
    "LOGIN_BACKOFF_AFTER",
    "LOGIN_LOCKOUT_AFTER",
    "PASSWORD_HASH_WAIT",
    "TRUSTED_PROXIES",
    "CORS_ALLOWED_ORIGINS",
    "EVENTS_LISTEN_LINGER",
    "RESPONSE_CACHE_BYTES",
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

    /// A configured secret (what `JWT_SECRET` holds).
    pub fn new(secret: &str) -> Self {
        Self {
            bytes: secret.as_bytes().to_vec(),
            generated: false,
        }
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

/// Limits on what one request may ask for, checked before anything executes.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_aliases: usize,
    pub max_directives: usize,
    pub max_tokens: usize,
    pub max_recursion: usize,
    pub max_batch: usize,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub statement_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 10,
            max_complexity: 5_000,
            max_aliases: 15,
            max_directives: 50,
            max_tokens: 1_000,
            max_recursion: 32,
            max_batch: 10,
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(10),
            statement_timeout: Duration::from_secs(5),
        }
    }
}

/// Brute-force protection of the authentication operations.
#[derive(Clone, Debug)]
pub struct AbuseLimits {
    /// `login`, `register` and `refreshToken` operations per client IP per minute.
    pub auth_per_minute: u32,
    /// How many of those operations a client IP may make at once before the per-minute rate applies.
    pub auth_burst: u32,
    /// Consecutive failed logins of one account after which each further attempt waits (1 s, 2 s, 4 s …).
    pub backoff_after: u32,
    /// Consecutive failed logins after which the account locks until an admin unlocks it.
    pub lockout_after: u32,
    /// How long a request may wait for a free password hasher before it gets RATE_LIMITED.
    pub hash_wait: Duration,
}

impl Default for AbuseLimits {
    fn default() -> Self {
        AbuseLimits {
            auth_per_minute: 5,
            auth_burst: 5,
            backoff_after: 5,
            lockout_after: 100,
            hash_wait: Duration::from_secs(2),
        }
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
    /// The tracing filter (`RUST_LOG`), checked here so a typo stops the start instead of silencing logs.
    pub log_filter: String,
    pub db_max_connections: u32,
    pub password_min_length: usize,
    /// Introspection and "did you mean" suggestions (on in development, off in production by default).
    pub introspection: bool,
    pub limits: Limits,
    pub abuse: AbuseLimits,
    /// Peers whose `X-Forwarded-For` is believed (reverse proxies / load balancers).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Origins allowed to call the API from a browser (CORS); none by default.
    pub cors_allowed_origins: Vec<String>,
    /// PostgreSQL: how long the instance keeps LISTENing for change events after its last subscription
    /// ended (it listens again when the next one starts).
    pub events_listen_linger: Duration,
    /// Memory for answers to repeated patient lists, checked against the database's stamps before
    /// each use (`graphql::response_cache`); 0 turns the cache off.
    pub response_cache_bytes: usize,
}

pub const DEFAULT_EVENTS_LISTEN_LINGER: Duration = Duration::from_secs(30);
/// About a hundred first pages of 20 patients with their doctors.
pub const DEFAULT_RESPONSE_CACHE_BYTES: usize = 2 * 1024 * 1024;

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

        let log_filter =
            get("RUST_LOG").unwrap_or_else(|| crate::telemetry::DEFAULT_FILTER.to_owned());
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log_filter) {
            return Err(invalid("RUST_LOG", format!("not a log filter: {e}")));
        }

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

        let introspection = match get("GRAPHQL_INTROSPECTION").as_deref() {
            None => environment == Environment::Development,
            Some("true") | Some("1") | Some("on") => true,
            Some("false") | Some("0") | Some("off") => false,
            Some(other) => {
                return Err(invalid(
                    "GRAPHQL_INTROSPECTION",
                    format!("expected true or false, got {other:?}"),
                ));
            }
        };

        let d = Limits::default();
        let limits = Limits {
            max_depth: number(&get, "GRAPHQL_MAX_DEPTH", d.max_depth, 1, 100)?,
            max_complexity: number(
                &get,
                "GRAPHQL_MAX_COMPLEXITY",
                d.max_complexity,
                1,
                1_000_000,
            )?,
            max_aliases: number(&get, "GRAPHQL_MAX_ALIASES", d.max_aliases, 0, 10_000)?,
            max_directives: number(&get, "GRAPHQL_MAX_DIRECTIVES", d.max_directives, 0, 10_000)?,
            max_tokens: number(&get, "GRAPHQL_MAX_TOKENS", d.max_tokens, 10, 1_000_000)?,
            max_recursion: number(&get, "GRAPHQL_MAX_RECURSION", d.max_recursion, 1, 1_000)?,
            max_batch: number(&get, "GRAPHQL_MAX_BATCH", d.max_batch, 1, 1_000)?,
            max_body_bytes: number(
                &get,
                "MAX_BODY_BYTES",
                d.max_body_bytes,
                1_024,
                100 * 1024 * 1024,
            )?,
            request_timeout: duration(&get, "REQUEST_TIMEOUT", d.request_timeout)?,
            statement_timeout: duration(&get, "DB_STATEMENT_TIMEOUT", d.statement_timeout)?,
        };
        if limits.statement_timeout > limits.request_timeout {
            return Err(invalid(
                "DB_STATEMENT_TIMEOUT",
                "must not be longer than REQUEST_TIMEOUT",
            ));
        }

        let a = AbuseLimits::default();
        let abuse = AbuseLimits {
            auth_per_minute: number(
                &get,
                "AUTH_RATE_LIMIT_PER_MINUTE",
                a.auth_per_minute,
                1,
                1_000_000,
            )?,
            auth_burst: number(&get, "AUTH_RATE_LIMIT_BURST", a.auth_burst, 1, 1_000_000)?,
            backoff_after: number(&get, "LOGIN_BACKOFF_AFTER", a.backoff_after, 1, 1_000)?,
            lockout_after: number(&get, "LOGIN_LOCKOUT_AFTER", a.lockout_after, 1, 100)?,
            hash_wait: duration_allowing_zero(&get, "PASSWORD_HASH_WAIT", a.hash_wait)?,
        };
        if abuse.lockout_after < abuse.backoff_after {
            return Err(invalid(
                "LOGIN_LOCKOUT_AFTER",
                "must not be less than LOGIN_BACKOFF_AFTER",
            ));
        }

        let trusted_proxies = match get("TRUSTED_PROXIES") {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<ipnet::IpNet>()
                        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                        .map_err(|_| {
                            invalid(
                                "TRUSTED_PROXIES",
                                format!("{s:?} is not an IP address or CIDR range"),
                            )
                        })
                })
                .collect::<Result<_, _>>()?,
        };
        let cors_allowed_origins = match get("CORS_ALLOWED_ORIGINS") {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(|s| s.trim().trim_end_matches('/').to_owned())
                .filter(|s| !s.is_empty())
                .map(|s| {
                    if (s.starts_with("http://") || s.starts_with("https://")) && !s.contains('*') {
                        Ok(s)
                    } else {
                        Err(invalid(
                            "CORS_ALLOWED_ORIGINS",
                            format!("{s:?} is not an origin like https://app.example.com"),
                        ))
                    }
                })
                .collect::<Result<_, _>>()?,
        };

        let events_listen_linger =
            duration(&get, "EVENTS_LISTEN_LINGER", DEFAULT_EVENTS_LISTEN_LINGER)?;

        let response_cache_bytes = number(
            &get,
            "RESPONSE_CACHE_BYTES",
            DEFAULT_RESPONSE_CACHE_BYTES,
            0,
            1024 * 1024 * 1024,
        )?;

        Ok(Config {
            events_listen_linger,
            response_cache_bytes,
            introspection,
            limits,
            abuse,
            trusted_proxies,
            cors_allowed_origins,
            database_url,
            bind_addr,
            jwt_secret,
            access_token_ttl,
            refresh_token_ttl,
            environment,
            log_format,
            log_filter,
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
            log_filter: crate::telemetry::DEFAULT_FILTER.to_owned(),
            db_max_connections: 5,
            password_min_length: DEFAULT_PASSWORD_MIN_LENGTH,
            introspection: true,
            limits: Limits::default(),
            // Tests make many accounts from one address; the abuse tests set these low again.
            abuse: AbuseLimits {
                auth_per_minute: 100_000,
                auth_burst: 100_000,
                ..AbuseLimits::default()
            },
            trusted_proxies: Vec::new(),
            cors_allowed_origins: Vec::new(),
            events_listen_linger: DEFAULT_EVENTS_LISTEN_LINGER,
            response_cache_bytes: DEFAULT_RESPONSE_CACHE_BYTES,
        }
    }

    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }
}

fn number<T>(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: T,
    min: T,
    max: T,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
{
    let Some(raw) = get(var) else {
        return Ok(default);
    };
    raw.parse::<T>()
        .ok()
        .filter(|n| *n >= min && *n <= max)
        .ok_or_else(|| invalid(var, format!("expected a whole number from {min} to {max}")))
}

fn duration_allowing_zero(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let Some(raw) = get(var) else {
        return Ok(default);
    };
    match raw.parse::<u64>() {
        Ok(secs) => Ok(Duration::from_secs(secs)),
        Err(_) => humantime::parse_duration(&raw)
            .map_err(|e| invalid(var, format!("expected a duration like 2s or 500ms ({e})"))),
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
            ("GRAPHQL_MAX_DEPTH", "0"),
            ("GRAPHQL_INTROSPECTION", "maybe"),
            ("TRUSTED_PROXIES", "10.0.0.0/33"),
            ("CORS_ALLOWED_ORIGINS", "*"),
            ("LOGIN_LOCKOUT_AFTER", "101"),
            ("DB_STATEMENT_TIMEOUT", "1h"),
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
    fn introspection_is_on_in_development_and_off_in_production_by_default() {
        assert!(config(&[]).expect("valid").introspection);
        let prod = config(&[
            ("MEDGRAPH_ENV", "production"),
            ("JWT_SECRET", &"x".repeat(32)),
        ])
        .expect("valid");
        assert!(!prod.introspection);
        let on = config(&[
            ("MEDGRAPH_ENV", "production"),
            ("JWT_SECRET", &"x".repeat(32)),
            ("GRAPHQL_INTROSPECTION", "true"),
        ]);
        assert!(on.expect("valid").introspection);
    }

    #[test]
    fn proxies_and_origins_parse_from_lists() {
        let c = config(&[
            ("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1"),
            (
                "CORS_ALLOWED_ORIGINS",
                "https://app.example.com/, http://localhost:5173",
            ),
        ])
        .expect("valid");
        assert_eq!(c.trusted_proxies.len(), 2);
        assert!(
            c.trusted_proxies[1].contains(&"127.0.0.1".parse::<std::net::IpAddr>().expect("ip"))
        );
        assert_eq!(
            c.cors_allowed_origins,
            vec!["https://app.example.com", "http://localhost:5173"]
        );
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
