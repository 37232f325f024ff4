//! No secret ever reaches the logs: the real binary runs a full account flow with every log target at
//! TRACE (JSON lines on stderr), and afterwards none of the passwords, tokens, the JWT secret or the
//! stored password hashes appear anywhere in what it wrote.
#[allow(unused_macros, unused_imports)]
mod common;

use std::time::Duration;

use common::process::{Server, SqliteFile};
use common::{PgDatabase, patient_input, postgres_admin_url, unique_email};
use medgraph::entities::user;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

const OLD_PASSWORD: &str = "violet kestrel orbit quill 7193";
const NEW_PASSWORD: &str = "amber lantern tundra spoke 5820";
const WRONG_PASSWORD: &str = "cobalt meadow ripple frost 3047";

/// POSTs a GraphQL request; returns the JSON body.
async fn gql(
    client: &reqwest::Client,
    server: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> Value {
    let mut request = client
        .post(format!("{server}/graphql"))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request
        .send()
        .await
        .expect("send the GraphQL request")
        .json()
        .await
        .expect("a JSON reply")
}

fn data<'a>(reply: &'a Value, field: &str) -> &'a Value {
    assert!(reply["errors"].is_null(), "unexpected errors: {reply}");
    &reply["data"][field]
}

fn string(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("expected a string, got {value}"))
        .to_owned()
}

const AUTH: &str = "accessToken refreshToken user { id }";

async fn stored_hash(database_url: &str, email: &str) -> String {
    let db = sea_orm::Database::connect(database_url)
        .await
        .expect("connect to the server's database");
    user::Entity::find()
        .filter(user::Column::Email.eq(email))
        .one(&db)
        .await
        .expect("read the account")
        .expect("the account exists")
        .password_hash
}

async fn no_secret_in_the_logs_of_a_full_flow(database_url: &str) {
    let jwt_secret = format!("log-secrets-jwt-{}", uuid::Uuid::now_v7().simple());
    let server = Server::start(database_url, &jwt_secret, &[("RUST_LOG", "trace")]).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(12))
        .build()
        .expect("HTTP client");
    let base = server.base().to_owned();
    let email = unique_email("secretive");
    // (what, value) of everything that must never be logged.
    let mut secrets: Vec<(String, String)> = vec![
        ("the old password".into(), OLD_PASSWORD.into()),
        ("the new password".into(), NEW_PASSWORD.into()),
        ("the wrong password".into(), WRONG_PASSWORD.into()),
        ("the JWT secret".into(), jwt_secret.clone()),
    ];
    let mut note_tokens = |step: &str, payload: &Value| {
        for kind in ["accessToken", "refreshToken"] {
            let token = string(&payload[kind]);
            if kind == "accessToken" {
                // The signature alone would let nobody forge a token, but it must not be logged either.
                let signature = token.rsplit('.').next().unwrap_or_default().to_owned();
                secrets.push((format!("the {kind} signature from {step}"), signature));
            }
            secrets.push((format!("the {kind} from {step}"), token));
        }
    };

    let registered = gql(
        &client,
        &base,
        None,
        &format!("mutation($input: RegisterInput!) {{ register(input: $input) {{ {AUTH} }} }}"),
        json!({ "input": { "name": "Secretive Sam", "email": email, "password": OLD_PASSWORD } }),
    )
    .await;
    note_tokens("register", data(&registered, "register"));
    let first_hash = stored_hash(database_url, &email).await;

    let login = format!("mutation($input: LoginInput!) {{ login(input: $input) {{ {AUTH} }} }}");
    let logged_in = gql(
        &client,
        &base,
        None,
        &login,
        json!({ "input": { "email": email, "password": OLD_PASSWORD } }),
    )
    .await;
    let session = data(&logged_in, "login").clone();
    note_tokens("login", &session);

    let refreshed = gql(
        &client,
        &base,
        None,
        &format!("mutation($t: String!) {{ refreshToken(refreshToken: $t) {{ {AUTH} }} }}"),
        json!({ "t": string(&session["refreshToken"]) }),
    )
    .await;
    let session = data(&refreshed, "refreshToken").clone();
    note_tokens("refreshToken", &session);
    let access = string(&session["accessToken"]);

    let created = gql(
        &client,
        &base,
        Some(&access),
        "mutation($input: CreatePatientInput!) { createPatient(input: $input) { id } }",
        json!({ "input": patient_input("Pat", "Private", 52) }),
    )
    .await;
    string(&data(&created, "createPatient")["id"]);

    let changed = gql(
        &client,
        &base,
        Some(&access),
        "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }",
        json!({ "c": OLD_PASSWORD, "n": NEW_PASSWORD }),
    )
    .await;
    assert_eq!(data(&changed, "changePassword"), &json!(true));
    let second_hash = stored_hash(database_url, &email).await;
    assert_ne!(first_hash, second_hash, "the password hash changed");

    let refused = gql(
        &client,
        &base,
        None,
        &login,
        json!({ "input": { "email": email, "password": WRONG_PASSWORD } }),
    )
    .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "reply: {refused}"
    );

    let logged_in = gql(
        &client,
        &base,
        None,
        &login,
        json!({ "input": { "email": email, "password": NEW_PASSWORD } }),
    )
    .await;
    let session = data(&logged_in, "login").clone();
    note_tokens("the second login", &session);

    let logged_out = gql(
        &client,
        &base,
        None,
        "mutation($t: String!) { logout(refreshToken: $t) }",
        json!({ "t": string(&session["refreshToken"]) }),
    )
    .await;
    assert_eq!(data(&logged_out, "logout"), &json!(true));

    for (step, hash) in [
        ("after register", &first_hash),
        ("after changePassword", &second_hash),
    ] {
        secrets.push((format!("the stored password hash {step}"), hash.clone()));
        // The digest part of the PHC string ($argon2id$v=19$m=…$salt$digest) on its own.
        let digest = hash.rsplit('$').next().unwrap_or_default().to_owned();
        secrets.push((format!("the password digest {step}"), digest));
    }

    let logs = server.stop().await;
    // The capture is real: JSON lines, from the server, covering the requests.
    let lines: Vec<&str> = logs
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    assert!(
        lines.len() > 20,
        "expected a TRACE log of the flow, got {} lines:\n{logs}",
        lines.len()
    );
    let json_lines = lines
        .iter()
        .filter(|line| serde_json::from_str::<Value>(line).is_ok())
        .count();
    assert_eq!(json_lines, lines.len(), "every log line is JSON");
    assert!(
        logs.contains("medgraph listening"),
        "the startup line is captured"
    );
    assert!(logs.contains("/graphql"), "the requests are in the log");
    assert!(logs.contains("TRACE"), "TRACE events are captured");

    for (what, secret) in &secrets {
        assert!(
            secret.len() >= 16,
            "{what} is long enough to search for: {secret:?}"
        );
        if let Some(line) = logs.lines().find(|line| line.contains(secret.as_str())) {
            panic!("{what} appears in the logs:\n{line}");
        }
    }
    eprintln!(
        "{} log lines ({} bytes) checked for {} secrets",
        lines.len(),
        logs.len(),
        secrets.len()
    );
}

mod no_secret_appears_in_the_trace_logs_of_a_full_account_flow {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let file = SqliteFile::new();
        no_secret_in_the_logs_of_a_full_flow(&file.url()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let Some(admin_url) = postgres_admin_url() else {
            eprintln!("skipping: TEST_DATABASE_URL not set");
            return;
        };
        let (_database, database_url) = PgDatabase::create(&admin_url).await;
        no_secret_in_the_logs_of_a_full_flow(&database_url).await;
    }
}
