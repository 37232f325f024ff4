//! Test harness: starts the real medgraph server on an ephemeral port, against its own fresh database
//! (in-memory SQLite, or a throw-away PostgreSQL database when `TEST_DATABASE_URL` is set), and speaks
//! GraphQL to it over HTTP. Not every test file uses every helper.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use medgraph::app::{self, AppState};
use medgraph::config::Config;
use medgraph::domain::Role;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

pub mod process;

/// A password every test user gets: long enough, and not a commonly used one.
pub const PASSWORD: &str = "correct horse battery staple";

/// The `extensions.code` values of errors.md.
pub const ERROR_CODES: &[&str] = &[
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "BAD_USER_INPUT",
    "CONFLICT",
    "RATE_LIMITED",
    "INTERNAL_SERVER_ERROR",
];

/// The fields of `AuthPayload` the helpers ask for.
pub const AUTH_PAYLOAD: &str =
    "accessToken refreshToken tokenType expiresIn user { id name email role createdAt }";

/// Writes a scenario once and generates `<name>::sqlite` and `<name>::postgres` tests from it.
/// The PostgreSQL test skips (with a notice) when `TEST_DATABASE_URL` is not set.
macro_rules! scenario {
    ($name:ident, |$app:ident| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $app = $crate::common::TestApp::spawn($crate::common::TestDb::Sqlite).await;
                $body.await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::common::postgres_admin_url().is_none() {
                    eprintln!("skipping: TEST_DATABASE_URL not set");
                    return;
                }
                let $app = $crate::common::TestApp::spawn($crate::common::TestDb::Postgres).await;
                $body.await;
            }
        }
    };
}
pub(crate) use scenario;

pub enum TestDb {
    Sqlite,
    Postgres,
}

/// `TEST_DATABASE_URL`: a PostgreSQL server URL whose role may create databases.
pub fn postgres_admin_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
}

/// `postgres://u:p@h:5432/postgres?x=y` with the database replaced by `name`.
fn with_database_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    format!("{server}/{name}{query}")
}

/// A PostgreSQL database that exists for one test. Dropping it drops the database (WITH (FORCE)), on a
/// thread of its own with its own runtime, so it also happens when the test panics.
pub struct PgDatabase {
    admin_url: String,
    name: String,
}

impl PgDatabase {
    /// Creates `medgraph_test_<uuid>` on the server of `admin_url`; returns it and its connection URL.
    pub async fn create(admin_url: &str) -> (PgDatabase, String) {
        let name = format!("medgraph_test_{}", uuid::Uuid::now_v7().simple());
        let admin = sea_orm::Database::connect(admin_url)
            .await
            .expect("connect to TEST_DATABASE_URL");
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create the test database (does the role have CREATEDB?)");
        drop(admin);
        let url = with_database_name(admin_url, &name);
        (
            PgDatabase {
                admin_url: admin_url.to_owned(),
                name,
            },
            url,
        )
    }

    /// The database's name, `medgraph_test_<uuid>`.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let outcome = std::thread::spawn(move || -> anyhow::Result<()> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let admin = sea_orm::Database::connect(&admin_url).await?;
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await?;
                Ok(())
            })
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!(
                "warning: could not drop test database {}: {error:#}",
                self.name
            ),
            Err(_) => eprintln!("warning: dropping test database {} panicked", self.name),
        }
    }
}

/// The tokens and identity of a signed-in user.
#[derive(Clone, Debug)]
pub struct AuthTokens {
    pub access: String,
    pub refresh: String,
    pub user_id: String,
    pub email: String,
}

impl AuthTokens {
    fn from_payload(payload: &Value) -> AuthTokens {
        AuthTokens {
            access: string(&payload["accessToken"]),
            refresh: string(&payload["refreshToken"]),
            user_id: string(&payload["user"]["id"]),
            email: string(&payload["user"]["email"]),
        }
    }

    pub fn token(&self) -> Option<&str> {
        Some(&self.access)
    }
}

/// The running server, its state, and an HTTP client.
/// Field order matters: the server stops before the database goes away.
pub struct TestApp {
    pub addr: SocketAddr,
    pub state: AppState,
    pub client: reqwest::Client,
    pub password_min_length: usize,
    server: tokio::task::JoinHandle<()>,
    _database: Option<PgDatabase>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestApp {
    pub async fn spawn(db: TestDb) -> TestApp {
        Self::spawn_with(db, |_| {}).await
    }

    /// Like `spawn`, with the test configuration adjusted first (limits, rate limits, proxies …).
    pub async fn spawn_with(db: TestDb, adjust: impl FnOnce(&mut Config)) -> TestApp {
        let (database_url, database) = match db {
            TestDb::Sqlite => ("sqlite::memory:".to_owned(), None),
            TestDb::Postgres => {
                let admin_url = postgres_admin_url().expect("TEST_DATABASE_URL is set");
                let (database, url) = PgDatabase::create(&admin_url).await;
                (url, Some(database))
            }
        };
        let mut config = Config::for_tests(&database_url);
        adjust(&mut config);
        let password_min_length = config.password_min_length;
        let state = AppState::connect(&config)
            .await
            .expect("connect and migrate");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind an ephemeral port");
        let addr = listener.local_addr().expect("local address");
        let router = app::router(state.clone());
        let server = tokio::spawn(async move {
            if let Err(error) = app::serve(listener, router).await {
                eprintln!("test server stopped: {error}");
            }
        });
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("HTTP client");
        TestApp {
            addr,
            state,
            client,
            password_min_length,
            server,
            _database: database,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// POSTs a GraphQL request to `/graphql`.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> GqlResponse {
        self.gql_with_headers(token, query, variables, &[]).await
    }

    /// POSTs a GraphQL request computed afresh (`Cache-Control: no-cache`), for tests that count
    /// what computing it costs.
    pub async fn gql_fresh(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> GqlResponse {
        self.gql_with_headers(token, query, variables, &[("cache-control", "no-cache")])
            .await
    }

    pub async fn gql_with_headers(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
        headers: &[(&str, &str)],
    ) -> GqlResponse {
        let mut request = self
            .client
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        GqlResponse::read(request.send().await.expect("send the GraphQL request")).await
    }

    /// Sends the same request `n` times at once (all tasks wait on a barrier, then send).
    pub async fn gql_concurrently(
        &self,
        n: usize,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Vec<GqlResponse> {
        let barrier = Arc::new(tokio::sync::Barrier::new(n));
        let body = json!({ "query": query, "variables": variables });
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..n {
            let mut request = self.client.post(self.url("/graphql")).json(&body);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let barrier = Arc::clone(&barrier);
            tasks.spawn(async move {
                barrier.wait().await;
                GqlResponse::read(request.send().await.expect("send the GraphQL request")).await
            });
        }
        tasks.join_all().await
    }

    // ---- auth ----

    pub async fn try_register(&self, name: &str, email: &str, password: &str) -> GqlResponse {
        self.gql(
            None,
            &format!("mutation($input: RegisterInput!) {{ register(input: $input) {{ {AUTH_PAYLOAD} }} }}"),
            json!({ "input": { "name": name, "email": email, "password": password } }),
        )
        .await
    }

    pub async fn register(&self, name: &str, email: &str, password: &str) -> AuthTokens {
        AuthTokens::from_payload(&self.try_register(name, email, password).await.data()["register"])
    }

    pub async fn try_login(&self, email: &str, password: &str) -> GqlResponse {
        self.gql(
            None,
            &format!(
                "mutation($input: LoginInput!) {{ login(input: $input) {{ {AUTH_PAYLOAD} }} }}"
            ),
            json!({ "input": { "email": email, "password": password } }),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> AuthTokens {
        AuthTokens::from_payload(&self.try_login(email, password).await.data()["login"])
    }

    /// Registers a new user with a unique email and [`PASSWORD`].
    pub async fn signed_in_user(&self) -> AuthTokens {
        self.register("Test User", &unique_email("user"), PASSWORD)
            .await
    }

    /// Makes the user (registered with [`PASSWORD`]) an ADMIN, and logs in again for a token with that role.
    pub async fn make_admin(&self, email: &str) -> AuthTokens {
        medgraph::services::accounts::set_role(&self.state.db, email, Role::Admin)
            .await
            .expect("set_role ADMIN");
        self.login(email, PASSWORD).await
    }

    // ---- resources ----

    pub async fn create_patient(&self, token: &str, input: Value) -> String {
        let response = self
            .gql(
                Some(token),
                "mutation($input: CreatePatientInput!) { createPatient(input: $input) { id } }",
                json!({ "input": input }),
            )
            .await;
        string(&response.data()["createPatient"]["id"])
    }

    pub async fn create_doctor(&self, token: &str, input: Value) -> String {
        let response = self
            .gql(
                Some(token),
                "mutation($input: CreateDoctorInput!) { createDoctor(input: $input) { id } }",
                json!({ "input": input }),
            )
            .await;
        string(&response.data()["createDoctor"]["id"])
    }

    pub async fn try_assign(&self, token: &str, patient: &str, doctor: &str) -> GqlResponse {
        self.gql(
            Some(token),
            "mutation($p: ID!, $d: ID!) { assignDoctor(patientId: $p, doctorId: $d) { id assignedAt patient { id } doctor { id } } }",
            json!({ "p": patient, "d": doctor }),
        )
        .await
    }

    pub async fn assign(&self, token: &str, patient: &str, doctor: &str) -> String {
        string(&self.try_assign(token, patient, doctor).await.data()["assignDoctor"]["id"])
    }
}

/// A minimal valid `CreatePatientInput`.
pub fn patient_input(first: &str, last: &str, age: i64) -> Value {
    json!({ "firstName": first, "lastName": last, "age": age, "gender": "UNKNOWN" })
}

/// A minimal valid `CreateDoctorInput` with a unique email.
pub fn doctor_input(first: &str, last: &str, specialization: &str) -> Value {
    json!({
        "firstName": first,
        "lastName": last,
        "specialization": specialization,
        "email": unique_email("doctor"),
    })
}

pub fn unique_email(prefix: &str) -> String {
    format!("{prefix}-{}@example.com", uuid::Uuid::now_v7().simple())
}

/// A random, well-formed id that names nothing.
pub fn missing_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

pub fn string(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("expected a string, got {value}"))
        .to_owned()
}

/// The `id` of every element of a JSON array of objects.
pub fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("expected a list, got {list}"))
        .iter()
        .map(|item| string(&item["id"]))
        .collect()
}

/// A parsed GraphQL response. Every response is checked on arrival: error codes come from errors.md and
/// no message shows database internals.
#[derive(Debug)]
pub struct GqlResponse {
    pub status: reqwest::StatusCode,
    pub body: Value,
}

impl GqlResponse {
    pub async fn read(response: reqwest::Response) -> GqlResponse {
        let status = response.status();
        let text = response.text().await.expect("read the response body");
        let body: Value = serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("response is not JSON ({error}): {status} {text}"));
        let response = GqlResponse { status, body };
        response.check_errors_are_clean();
        response
    }

    fn check_errors_are_clean(&self) {
        for error in self.errors() {
            if let Some(code) = error["extensions"]["code"].as_str() {
                assert!(
                    ERROR_CODES.contains(&code),
                    "unknown error code {code}: {}",
                    self.body
                );
            }
            let message = error["message"].as_str().unwrap_or_default();
            let lower = message.to_lowercase();
            for leak in ["SELECT", "INSERT"] {
                assert!(
                    !message.contains(leak),
                    "error message shows SQL: {message}"
                );
            }
            for leak in ["constraint", "sqlx", "sqlite"] {
                assert!(
                    !lower.contains(leak),
                    "error message shows database internals: {message}"
                );
            }
        }
    }

    /// `data`, after checking there are no errors.
    pub fn data(&self) -> &Value {
        assert!(
            self.errors().is_empty(),
            "unexpected GraphQL errors: {}",
            self.body
        );
        &self.body["data"]
    }

    pub fn errors(&self) -> Vec<Value> {
        self.body["errors"].as_array().cloned().unwrap_or_default()
    }

    /// The first error's `extensions.code` (panics when there is no error).
    pub fn error_code(&self) -> String {
        let errors = self.errors();
        let first = errors
            .first()
            .unwrap_or_else(|| panic!("expected an error, got {}", self.body));
        first["extensions"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The first error's `extensions.fields` (Null when absent).
    pub fn error_fields(&self) -> Value {
        self.errors()
            .first()
            .map(|error| error["extensions"]["fields"].clone())
            .unwrap_or(Value::Null)
    }

    pub fn error_message(&self) -> String {
        self.errors()
            .first()
            .and_then(|error| error["message"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Asserts the first error has this code.
    pub fn assert_code(&self, code: &str) {
        assert_eq!(self.error_code(), code, "response: {}", self.body);
    }

    /// Asserts BAD_USER_INPUT naming `field` in `extensions.fields`.
    pub fn assert_bad_input(&self, field: &str) {
        self.assert_code("BAD_USER_INPUT");
        let fields = self.error_fields();
        assert!(
            fields.get(field).is_some_and(|reason| !reason.is_null()),
            "expected extensions.fields.{field}, response: {}",
            self.body
        );
    }
}
