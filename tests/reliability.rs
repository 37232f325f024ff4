//! Reliability of the real `medgraph` binary, run as a subprocess: a graceful shutdown under load loses no
//! audited read, PostgreSQL connections cut mid-run are survived, two instances on one database enforce the
//! same rules, and `/readyz` reports a database that went away.
//!
//! The PostgreSQL tests skip (with a notice) when `TEST_DATABASE_URL` is not set; each makes its own
//! `medgraph_test_<uuid>` database and drops it afterwards.
#[allow(unused_macros, unused_imports)]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::process::{Server, SqliteFile};
use common::{
    ERROR_CODES, PgDatabase, doctor_input, patient_input, postgres_admin_url, unique_email,
};
use medgraph::entities::{audit_event, patient, refresh_token, user};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, PaginatorTrait,
    QueryFilter, Statement,
};
use serde_json::{Value, json};

/// Every client request is bounded by this; the server's own request timeout is 10 s.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(12);
const PASSWORD: &str = "correct horse battery staple";

// ---------------------------------------------------------------------------------------------------
// The binary as a subprocess
// ---------------------------------------------------------------------------------------------------

fn jwt_secret() -> String {
    format!("reliability-test-secret-{}", uuid::Uuid::now_v7().simple())
}

// ---------------------------------------------------------------------------------------------------
// Speaking GraphQL to it
// ---------------------------------------------------------------------------------------------------

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(CLIENT_TIMEOUT)
        .build()
        .expect("HTTP client")
}

/// An HTTP answer to a GraphQL request. A body that is not JSON is kept as a JSON string.
#[derive(Debug, Clone)]
struct Reply {
    status: reqwest::StatusCode,
    body: Value,
    elapsed: Duration,
}

impl Reply {
    fn errors(&self) -> Vec<Value> {
        self.body["errors"].as_array().cloned().unwrap_or_default()
    }

    fn succeeded(&self) -> bool {
        self.status == reqwest::StatusCode::OK
            && self.errors().is_empty()
            && self.body["data"].is_object()
    }

    fn data(&self) -> &Value {
        assert!(self.succeeded(), "expected data, got {self:?}");
        &self.body["data"]
    }

    fn code(&self) -> String {
        self.errors()
            .first()
            .and_then(|error| error["extensions"]["code"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    fn message(&self) -> String {
        self.errors()
            .first()
            .and_then(|error| error["message"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    fn assert_code(&self, code: &str) {
        assert_eq!(self.code(), code, "reply: {self:?}");
    }

    /// A failed request that is a clear error: JSON `errors`, each with a documented code and a message
    /// that shows no SQL or database internals.
    fn assert_clean_error(&self) {
        let errors = self.errors();
        assert!(!errors.is_empty(), "expected a GraphQL error, got {self:?}");
        for error in errors {
            let code = error["extensions"]["code"].as_str().unwrap_or_default();
            assert!(
                ERROR_CODES.contains(&code),
                "error without a documented code: {self:?}"
            );
            let message = error["message"].as_str().unwrap_or_default();
            let lower = message.to_lowercase();
            for leak in [
                "select",
                "insert",
                "update ",
                "constraint",
                "sqlx",
                "postgres",
                "connection",
                "medgraph_test_",
            ] {
                assert!(
                    !lower.contains(leak),
                    "error message shows internals ({leak}): {self:?}"
                );
            }
        }
    }
}

async fn gql(
    client: &reqwest::Client,
    server: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> Result<Reply, reqwest::Error> {
    let started = Instant::now();
    let mut request = client
        .post(format!("{server}/graphql"))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status();
    let text = response.text().await?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok(Reply {
        status,
        body,
        elapsed: started.elapsed(),
    })
}

/// `gql` for steps that must get an answer.
async fn ask(
    client: &reqwest::Client,
    server: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> Reply {
    gql(client, server, token, query, variables)
        .await
        .unwrap_or_else(|error| panic!("no answer from {server}: {error}"))
}

struct Account {
    access: String,
    refresh: String,
    user_id: String,
    email: String,
}

const REGISTER: &str = "mutation($input: RegisterInput!) { register(input: $input) { accessToken refreshToken user { id email } } }";
const LOGIN: &str = "mutation($input: LoginInput!) { login(input: $input) { accessToken refreshToken user { id email } } }";
const REFRESH: &str =
    "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken } }";
const CREATE_PATIENT: &str =
    "mutation($input: CreatePatientInput!) { createPatient(input: $input) { id } }";
const LIST_PATIENTS: &str = "query($first: Int!) { patients(first: $first) { nodes { id } } }";
const ASSIGN: &str =
    "mutation($p: ID!, $d: ID!) { assignDoctor(patientId: $p, doctorId: $d) { id } }";

fn string(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("expected a string, got {value}"))
        .to_owned()
}

async fn register(client: &reqwest::Client, server: &str) -> Account {
    let email = unique_email("reliability");
    let reply = ask(
        client,
        server,
        None,
        REGISTER,
        json!({ "input": { "name": "Reliability Tester", "email": email, "password": PASSWORD } }),
    )
    .await;
    let payload = &reply.data()["register"];
    Account {
        access: string(&payload["accessToken"]),
        refresh: string(&payload["refreshToken"]),
        user_id: string(&payload["user"]["id"]),
        email,
    }
}

async fn create_patient(client: &reqwest::Client, server: &str, token: &str, n: usize) -> String {
    let reply = ask(
        client,
        server,
        Some(token),
        CREATE_PATIENT,
        json!({ "input": patient_input("Ada", &format!("Lovelace{n}"), 36) }),
    )
    .await;
    string(&reply.data()["createPatient"]["id"])
}

fn ids_of(nodes: &Value) -> Vec<String> {
    nodes
        .as_array()
        .unwrap_or_else(|| panic!("expected a list, got {nodes}"))
        .iter()
        .map(|node| string(&node["id"]))
        .collect()
}

fn skip_without_postgres() -> Option<String> {
    let url = postgres_admin_url();
    if url.is_none() {
        eprintln!("skipping: TEST_DATABASE_URL not set");
    }
    url
}

// ---------------------------------------------------------------------------------------------------
// 1. SIGTERM under load
// ---------------------------------------------------------------------------------------------------

/// List reads fired from four tasks; SIGTERM once 40 are answered. Every answered read must be in the
/// audit trail after the process exits: 5 READ rows (one per patient returned) per answered list.
async fn sigterm_under_load(database_url: &str) {
    const READS: isize = 200;
    let mut server = Server::start(database_url, &jwt_secret(), &[]).await;
    let client = http_client();
    let account = register(&client, server.base()).await;
    let mut patient_ids = Vec::new();
    for n in 0..5 {
        patient_ids.push(create_patient(&client, server.base(), &account.access, n).await);
    }

    let answered = Arc::new(AtomicUsize::new(0));
    let tickets = Arc::new(AtomicIsize::new(READS));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (client, base, token) = (
            client.clone(),
            server.base().to_owned(),
            account.access.clone(),
        );
        let (answered, tickets) = (Arc::clone(&answered), Arc::clone(&tickets));
        let expected: Vec<String> = patient_ids.clone();
        tasks.spawn(async move {
            while tickets.fetch_sub(1, Ordering::SeqCst) > 0 {
                match gql(
                    &client,
                    &base,
                    Some(&token),
                    LIST_PATIENTS,
                    json!({ "first": 5 }),
                )
                .await
                {
                    Ok(reply) => {
                        // An answer during shutdown is a whole answer, never an error.
                        let mut ids = ids_of(&reply.data()["patients"]["nodes"]);
                        ids.sort();
                        let mut expected = expected.clone();
                        expected.sort();
                        assert_eq!(ids, expected, "the list returns the user's 5 patients");
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(error) => {
                        // The server stopped accepting: no more answers from this task.
                        assert!(!error.is_timeout(), "a read hung during shutdown: {error}");
                        return;
                    }
                }
            }
        });
    }

    let deadline = Instant::now() + Duration::from_secs(15);
    while answered.load(Ordering::SeqCst) < 40 {
        assert!(Instant::now() < deadline, "the load did not get going");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let started = Instant::now();
    server.terminate();
    let status = server
        .wait_exit(Duration::from_secs(15))
        .await
        .expect("the binary exits within 15 s of SIGTERM");
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIGTERM: {status}"
    );
    let shutdown_took = started.elapsed();
    while let Some(task) = tasks.join_next().await {
        task.expect("a load task failed");
    }
    let answered = answered.load(Ordering::SeqCst);
    assert!(
        answered < READS as usize,
        "SIGTERM was meant to land while reads were still being sent, but all {READS} were answered"
    );
    let logs = server.finished_logs();
    assert!(
        logs.contains("shutting down"),
        "the shutdown is logged:\n{logs}"
    );

    let db = sea_orm::Database::connect(database_url)
        .await
        .expect("connect to the stopped server's database");
    let reads = audit_event::Entity::find()
        .filter(audit_event::Column::Action.eq("READ"))
        .all(&db)
        .await
        .expect("read the audit trail");
    eprintln!(
        "{answered} of {READS} list reads answered before the shutdown ({shutdown_took:?}); {} READ rows",
        reads.len()
    );
    assert_eq!(
        reads.len(),
        5 * answered,
        "every answered list read (5 patients each) is in the audit trail, and nothing else"
    );
    for row in &reads {
        assert_eq!(row.entity_type.as_deref(), Some("PATIENT"));
        assert_eq!(row.outcome, "SUCCESS");
        assert_eq!(
            row.user_id.map(|id| id.to_string()),
            Some(account.user_id.clone())
        );
        let entity = row.entity_id.map(|id| id.to_string()).unwrap_or_default();
        assert!(
            patient_ids.contains(&entity),
            "READ row of an unexpected record: {row:?}"
        );
    }
}

mod sigterm_under_load_loses_no_audited_reads {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite() {
        let file = SqliteFile::new();
        sigterm_under_load(&file.url()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres() {
        let Some(admin_url) = skip_without_postgres() else {
            return;
        };
        let (_database, database_url) = PgDatabase::create(&admin_url).await;
        sigterm_under_load(&database_url).await;
    }
}

// ---------------------------------------------------------------------------------------------------
// 2. Connections cut mid-run
// ---------------------------------------------------------------------------------------------------

/// Terminates every client connection to `database` (only that one), returning how many. Client
/// backends only: an autovacuum worker visiting the fresh database belongs to the superuser, and the
/// test role may not terminate it (a CI run failed on that race).
async fn cut_connections(admin: &DatabaseConnection, database: &str) -> usize {
    let rows = admin
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_terminate_backend(pid) AS terminated FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
            [database.into()],
        ))
        .await
        .expect("pg_terminate_backend");
    rows.iter()
        .filter(|row| row.try_get::<bool>("", "terminated").unwrap_or(false))
        .count()
}

#[derive(Default)]
struct LoadLog {
    acknowledged: Vec<String>,
    answered: usize,
    failed: Vec<Reply>,
    unanswered: Vec<String>,
    slowest: Duration,
}

impl LoadLog {
    fn note(&mut self, outcome: Result<Reply, reqwest::Error>) -> Option<Reply> {
        match outcome {
            Ok(reply) => {
                self.answered += 1;
                self.slowest = self.slowest.max(reply.elapsed);
                if reply.succeeded() {
                    Some(reply)
                } else {
                    self.failed.push(reply);
                    None
                }
            }
            Err(error) => {
                self.unanswered.push(error.to_string());
                None
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_connections_cut_mid_run_recover() {
    let Some(admin_url) = skip_without_postgres() else {
        return;
    };
    let (database, database_url) = PgDatabase::create(&admin_url).await;
    let server = Server::start(&database_url, &jwt_secret(), &[]).await;
    let client = http_client();
    let account = register(&client, server.base()).await;
    let mut before = Vec::new();
    for n in 0..3 {
        before.push(create_patient(&client, server.base(), &account.access, n).await);
    }

    // Writes and reads keep coming while the connections are cut, from several clients at once, so
    // on PostgreSQL creates also share statements (src/batched_creates.rs) when the cut hits them.
    let stop = Arc::new(AtomicBool::new(false));
    let loads: Vec<_> = (0..6)
        .map(|worker| {
            let (client, base, token, stop) = (
                client.clone(),
                server.base().to_owned(),
                account.access.clone(),
                Arc::clone(&stop),
            );
            tokio::spawn(async move {
                let mut log = LoadLog::default();
                let mut n = 100 + worker * 100_000;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let input = json!({ "input": patient_input("Cut", &format!("Over{n}"), 50) });
                    let write = gql(&client, &base, Some(&token), CREATE_PATIENT, input).await;
                    if let Some(reply) = log.note(write) {
                        log.acknowledged
                            .push(string(&reply.body["data"]["createPatient"]["id"]));
                    }
                    if worker == 0 {
                        let read = gql(
                            &client,
                            &base,
                            Some(&token),
                            LIST_PATIENTS,
                            json!({ "first": 100 }),
                        )
                        .await;
                        log.note(read);
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                log
            })
        })
        .collect();

    let admin = sea_orm::Database::connect(&admin_url)
        .await
        .expect("connect to TEST_DATABASE_URL");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut terminated = 0;
    for _ in 0..4 {
        terminated += cut_connections(&admin, database.name()).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(terminated > 0, "the server had connections to cut");

    // Service resumes by itself: a new write and a read succeed within a few seconds.
    let cut_over = Instant::now();
    let recovered_after = loop {
        let write = gql(
            &client,
            server.base(),
            Some(&account.access),
            CREATE_PATIENT,
            json!({ "input": patient_input("After", "Cut", 40) }),
        )
        .await;
        let read = gql(
            &client,
            server.base(),
            Some(&account.access),
            LIST_PATIENTS,
            json!({ "first": 100 }),
        )
        .await;
        if let (Ok(write), Ok(read)) = (&write, &read)
            && write.succeeded()
            && read.succeeded()
        {
            before.push(string(&write.data()["createPatient"]["id"]));
            break cut_over.elapsed();
        }
        assert!(
            cut_over.elapsed() < Duration::from_secs(5),
            "no recovery 5 s after the cut: write {write:?}, read {read:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::SeqCst);
    let mut log = LoadLog::default();
    for load in loads {
        let part = load.await.expect("a load task");
        log.acknowledged.extend(part.acknowledged);
        log.answered += part.answered;
        log.failed.extend(part.failed);
        log.unanswered.extend(part.unanswered);
        log.slowest = log.slowest.max(part.slowest);
    }
    eprintln!(
        "{terminated} connections cut; {} requests answered ({} failed, slowest {:?}), {} writes acknowledged; recovered after {recovered_after:?}",
        log.answered,
        log.failed.len(),
        log.slowest,
        log.acknowledged.len()
    );

    assert!(
        log.unanswered.is_empty(),
        "every request gets an answer within {CLIENT_TIMEOUT:?}: {:?}",
        log.unanswered
    );
    assert!(
        log.answered >= 10,
        "the load ran ({} requests)",
        log.answered
    );
    for reply in &log.failed {
        reply.assert_clean_error();
        reply.assert_code("INTERNAL_SERVER_ERROR");
        assert_eq!(reply.message(), "Internal server error", "reply: {reply:?}");
        assert!(
            reply.elapsed < Duration::from_secs(10),
            "a failure took longer than the request timeout: {reply:?}"
        );
    }

    let acknowledged: Vec<String> = before.iter().chain(&log.acknowledged).cloned().collect();
    let ids: Vec<uuid::Uuid> = acknowledged
        .iter()
        .map(|id| id.parse().expect("a patient id is a UUID"))
        .collect();
    let db = sea_orm::Database::connect(&database_url)
        .await
        .expect("connect to the test database");
    let stored = patient::Entity::find()
        .filter(patient::Column::Id.is_in(ids.clone()))
        .count(&db)
        .await
        .expect("count patients");
    assert_eq!(
        stored,
        ids.len() as u64,
        "every acknowledged createPatient is still stored"
    );

    let ready = client
        .get(server.url("/readyz"))
        .send()
        .await
        .expect("GET /readyz");
    assert_eq!(
        ready.status(),
        reqwest::StatusCode::OK,
        "/readyz after recovery"
    );
}

// ---------------------------------------------------------------------------------------------------
// 3. Two instances, one database
// ---------------------------------------------------------------------------------------------------

async fn set_last_failure_into_the_past(db: &DatabaseConnection, email: &str) {
    let past = chrono::Utc::now() - chrono::Duration::hours(1);
    user::Entity::update_many()
        .col_expr(user::Column::LastFailedLoginAt, Expr::value(past))
        .filter(user::Column::Email.eq(email))
        .exec(db)
        .await
        .expect("move the last failed login into the past");
}

async fn login(client: &reqwest::Client, server: &str, email: &str, password: &str) -> Reply {
    ask(
        client,
        server,
        None,
        LOGIN,
        json!({ "input": { "email": email, "password": password } }),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_share_the_rules() {
    let Some(admin_url) = skip_without_postgres() else {
        return;
    };
    let (_database, database_url) = PgDatabase::create(&admin_url).await;
    let secret = jwt_secret();
    let throttling = [("LOGIN_BACKOFF_AFTER", "1"), ("LOGIN_LOCKOUT_AFTER", "2")];
    // One after the other: the first one migrates the fresh database.
    let a = Server::start(&database_url, &secret, &throttling).await;
    let b = Server::start(&database_url, &secret, &throttling).await;
    let client = http_client();

    // (a) The same assignment sent to both instances at once: exactly one wins.
    let owner = register(&client, a.base()).await;
    let patient_id = create_patient(&client, a.base(), &owner.access, 1).await;
    let doctor = ask(
        &client,
        b.base(),
        Some(&owner.access),
        "mutation($input: CreateDoctorInput!) { createDoctor(input: $input) { id } }",
        json!({ "input": doctor_input("Gregory", "House", "Diagnostics") }),
    )
    .await;
    let doctor_id = string(&doctor.data()["createDoctor"]["id"]);
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let base = if i % 2 == 0 {
            a.base().to_owned()
        } else {
            b.base().to_owned()
        };
        let (client, token, barrier) = (client.clone(), owner.access.clone(), Arc::clone(&barrier));
        let variables = json!({ "p": patient_id, "d": doctor_id });
        tasks.spawn(async move {
            barrier.wait().await;
            ask(&client, &base, Some(&token), ASSIGN, variables).await
        });
    }
    let replies = tasks.join_all().await;
    let wins = replies.iter().filter(|reply| reply.succeeded()).count();
    assert_eq!(wins, 1, "exactly one assignment wins: {replies:#?}");
    for reply in replies.iter().filter(|reply| !reply.succeeded()) {
        reply.assert_clean_error();
        reply.assert_code("CONFLICT");
    }

    // (b) A refresh token rotated on A is refused on B, and its successor is revoked with the family.
    let rotated = ask(
        &client,
        a.base(),
        None,
        REFRESH,
        json!({ "t": owner.refresh }),
    )
    .await;
    let successor = string(&rotated.data()["refreshToken"]["refreshToken"]);
    let reuse = ask(
        &client,
        b.base(),
        None,
        REFRESH,
        json!({ "t": owner.refresh }),
    )
    .await;
    reuse.assert_code("UNAUTHENTICATED");
    let db = sea_orm::Database::connect(&database_url)
        .await
        .expect("connect to the test database");
    let owner_id: uuid::Uuid = owner.user_id.parse().expect("a user id is a UUID");
    let family = refresh_token::Entity::find()
        .filter(refresh_token::Column::UserId.eq(owner_id))
        .all(&db)
        .await
        .expect("read the refresh tokens");
    assert_eq!(
        family.len(),
        2,
        "the registered token and its successor: {family:?}"
    );
    assert!(
        family.iter().all(|token| token.revoked_at.is_some()),
        "the reuse on B revoked the whole family, successor included: {family:?}"
    );
    let after_reuse = ask(&client, b.base(), None, REFRESH, json!({ "t": successor })).await;
    after_reuse.assert_code("UNAUTHENTICATED");
    let after_reuse_on_a = ask(&client, a.base(), None, REFRESH, json!({ "t": successor })).await;
    after_reuse_on_a.assert_code("UNAUTHENTICATED");

    // (c) Failed logins on A throttle, then lock, the account on B.
    let victim = register(&client, b.base()).await;
    login(&client, a.base(), &victim.email, "not the password at all")
        .await
        .assert_code("UNAUTHENTICATED");
    let backing_off = login(&client, b.base(), &victim.email, PASSWORD).await;
    backing_off.assert_code("RATE_LIMITED");
    assert!(
        backing_off.errors()[0]["extensions"]["retryAfter"]
            .as_u64()
            .is_some_and(|s| s >= 1),
        "the back-off says when to retry: {backing_off:?}"
    );
    set_last_failure_into_the_past(&db, &victim.email).await;
    login(&client, a.base(), &victim.email, "still not the password")
        .await
        .assert_code("UNAUTHENTICATED");
    set_last_failure_into_the_past(&db, &victim.email).await;
    let locked = login(&client, b.base(), &victim.email, PASSWORD).await;
    locked.assert_code("RATE_LIMITED");
    assert!(
        locked.message().starts_with("Account locked"),
        "locked on B: {locked:?}"
    );
    assert!(
        locked.errors()[0]["extensions"]["retryAfter"].is_null(),
        "waiting does not help a locked account: {locked:?}"
    );
    let stored = user::Entity::find()
        .filter(user::Column::Email.eq(victim.email.as_str()))
        .one(&db)
        .await
        .expect("read the account")
        .expect("the account exists");
    assert!(stored.locked_at.is_some(), "the lock is stored: {stored:?}");
    assert_eq!(stored.failed_logins, 2);
}

// ---------------------------------------------------------------------------------------------------
// 4. Readiness when the database goes away
// ---------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readyz_turns_503_when_the_database_is_unreachable() {
    let Some(admin_url) = skip_without_postgres() else {
        return;
    };
    let (database, database_url) = PgDatabase::create(&admin_url).await;
    let server = Server::start(&database_url, &jwt_secret(), &[]).await;
    let client = http_client();
    let ready = client
        .get(server.url("/readyz"))
        .send()
        .await
        .expect("GET /readyz");
    assert_eq!(
        ready.status(),
        reqwest::StatusCode::OK,
        "ready while the database is there"
    );
    let account = register(&client, server.base()).await;

    // Only this test's database goes away.
    let admin = sea_orm::Database::connect(&admin_url)
        .await
        .expect("connect to TEST_DATABASE_URL");
    admin
        .execute_unprepared(&format!(
            "DROP DATABASE \"{}\" WITH (FORCE)",
            database.name()
        ))
        .await
        .expect("drop the server's database");

    let dropped = Instant::now();
    loop {
        let started = Instant::now();
        let status = client
            .get(server.url("/readyz"))
            .send()
            .await
            .expect("/readyz answers")
            .status();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "/readyz answered slowly"
        );
        if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        assert_eq!(status, reqwest::StatusCode::OK, "/readyz is 200 or 503");
        assert!(
            dropped.elapsed() < Duration::from_secs(10),
            "/readyz still 200 10 s after the database went away"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let reply = ask(
        &client,
        server.base(),
        Some(&account.access),
        "{ me { id email } }",
        json!({}),
    )
    .await;
    assert!(
        reply.elapsed < Duration::from_secs(10),
        "the request failed within the request timeout: {reply:?}"
    );
    reply.assert_clean_error();
    reply.assert_code("INTERNAL_SERVER_ERROR");
    assert_eq!(reply.message(), "Internal server error", "reply: {reply:?}");
    let request_id = &reply.errors()[0]["extensions"]["requestId"];
    assert!(
        request_id.as_str().is_some_and(|id| !id.is_empty()),
        "the error carries the request id: {reply:?}"
    );
    let body = reply.body.to_string();
    for leak in ["SELECT", "FROM", "does not exist", database.name()] {
        assert!(!body.contains(leak), "the reply shows {leak}: {body}");
    }
    assert!(
        reply.body["data"].is_null(),
        "no data without a database: {reply:?}"
    );
}
