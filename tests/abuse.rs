//! Brute-force protection, tried against the running server: the per-IP rate limit of the authentication
//! operations (counted per GraphQL operation, so aliases and batches cannot multiply attempts), the
//! per-account back-off and lockout, the bound on concurrent password hashing, and which client address
//! is believed behind a proxy. Every refusal is RATE_LIMITED, and ordinary requests keep being served.
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use medgraph::config::Config;
use medgraph::domain::Role;
use medgraph::entities::{audit_event, user};
use medgraph::services::accounts::{self, Registration};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

/// Like `scenario!`, with the test configuration adjusted first: generates `<name>::sqlite` and
/// `<name>::postgres` (the latter skips when `TEST_DATABASE_URL` is not set).
macro_rules! abuse_scenario {
    ($name:ident, $adjust:expr, |$app:ident| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $app = TestApp::spawn_with(TestDb::Sqlite, $adjust).await;
                $body.await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if postgres_admin_url().is_none() {
                    eprintln!("skipping: TEST_DATABASE_URL not set");
                    return;
                }
                let $app = TestApp::spawn_with(TestDb::Postgres, $adjust).await;
                $body.await;
            }
        }
    };
}

const LOGIN: &str = "mutation($input: LoginInput!) { login(input: $input) { accessToken refreshToken user { id } } }";
const REFRESH: &str =
    "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken } }";
const REGISTER: &str =
    "mutation($input: RegisterInput!) { register(input: $input) { accessToken user { id } } }";
const WRONG_PASSWORD: &str = "definitely not the right passphrase";

/// The per-IP limit of authentication operations: `per_minute` with a burst of `burst`.
fn auth_limit(c: &mut Config, per_minute: u32, burst: u32) {
    c.abuse.auth_per_minute = per_minute;
    c.abuse.auth_burst = burst;
}

/// Creates an account with [`PASSWORD`] directly through the service, so no rate-limit budget is spent.
async fn create_account(app: &TestApp) -> String {
    let email = unique_email("abuse");
    accounts::create_user(
        &app.state.db,
        &app.state.auth,
        Registration {
            name: "Abuse Test".to_owned(),
            email: email.clone(),
            password: PASSWORD.to_owned(),
        },
        Role::User,
    )
    .await
    .expect("create the account");
    email
}

fn login_variables(email: &str, password: &str) -> Value {
    json!({ "input": { "email": email, "password": password } })
}

/// POSTs a GraphQL request, optionally as forwarded by a proxy for `forwarded_for`.
async fn gql_from(
    app: &TestApp,
    forwarded_for: Option<&str>,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> GqlResponse {
    let mut request = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    GqlResponse::read(request.send().await.expect("send the GraphQL request")).await
}

async fn login_from(
    app: &TestApp,
    forwarded_for: Option<&str>,
    email: &str,
    password: &str,
) -> GqlResponse {
    gql_from(
        app,
        forwarded_for,
        None,
        LOGIN,
        login_variables(email, password),
    )
    .await
}

async fn try_login(app: &TestApp, email: &str, password: &str) -> GqlResponse {
    login_from(app, None, email, password).await
}

/// The access token of a successful login.
fn access_token(response: &GqlResponse) -> String {
    string(&response.data()["login"]["accessToken"])
}

/// Asserts RATE_LIMITED with a whole-second `retryAfter` of at least 1; returns it.
fn assert_rate_limited(response: &GqlResponse) -> u64 {
    response.assert_code("RATE_LIMITED");
    let retry_after = response.errors()[0]["extensions"]["retryAfter"]
        .as_u64()
        .unwrap_or_else(|| panic!("RATE_LIMITED carries retryAfter: {}", response.body));
    assert!(retry_after >= 1, "{}", response.body);
    retry_after
}

/// `me` answers for this token.
async fn assert_me_works(app: &TestApp, token: &str) {
    let me = app.gql(Some(token), "{ me { id email } }", json!({})).await;
    assert!(me.data()["me"]["id"].is_string(), "{}", me.body);
}

async fn account(app: &TestApp, email: &str) -> user::Model {
    accounts::find_by_email(&app.state.db, email)
        .await
        .expect("read the account")
        .expect("the account exists")
}

/// Moves the account's last failed login an hour into the past, so its back-off has run out.
async fn age_last_failure(app: &TestApp, email: &str) {
    let an_hour_ago = chrono::Utc::now() - chrono::Duration::hours(1);
    let result = user::Entity::update_many()
        .col_expr(user::Column::LastFailedLoginAt, Expr::value(an_hour_ago))
        .filter(user::Column::Email.eq(email))
        .exec(&app.state.db)
        .await
        .expect("age the last failed login");
    assert_eq!(result.rows_affected, 1);
}

// ---- per-IP rate limit ----

abuse_scenario!(
    the_sixth_login_from_one_address_is_rate_limited_while_me_still_works,
    |c| auth_limit(c, 5, 5),
    |app| async move {
        let email = create_account(&app).await;
        let mut tokens = Vec::new();
        for attempt in 1..=5 {
            let response = try_login(&app, &email, PASSWORD).await;
            assert!(
                response.errors().is_empty(),
                "attempt {attempt}: {}",
                response.body
            );
            tokens.push(access_token(&response));
        }

        let sixth = try_login(&app, &email, PASSWORD).await;
        let retry_after = assert_rate_limited(&sixth);
        assert!(retry_after <= 60, "{}", sixth.body);
        assert!(sixth.body["data"].is_null(), "{}", sixth.body);
        // Wrong passwords are refused the same way, before any check of the password.
        assert_rate_limited(&try_login(&app, &email, WRONG_PASSWORD).await);
        assert_eq!(
            account(&app, &email).await.failed_logins,
            0,
            "a rate-limited attempt is not a failed login"
        );

        // Other operations are not limited.
        for token in &tokens {
            assert_me_works(&app, token).await;
        }
        let patient = app
            .create_patient(&tokens[0], patient_input("Still", "Served", 41))
            .await;
        assert!(!patient.is_empty());
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_aliased_logins_in_one_document_are_cut_off_at_the_budget() {
    let app = TestApp::spawn_with(TestDb::Sqlite, |c| auth_limit(c, 5, 5)).await;
    let email = create_account(&app).await;
    let fields: Vec<String> = ["a", "b", "c", "d", "e", "f"]
        .iter()
        .map(|alias| format!("{alias}: login(input: $input) {{ accessToken }}"))
        .collect();
    let document = format!("mutation($input: LoginInput!) {{ {} }}", fields.join(" "));
    let response = app
        .gql(None, &document, login_variables(&email, PASSWORD))
        .await;
    let errors = response.errors();
    assert_eq!(
        errors.len(),
        1,
        "only the sixth login is refused: {}",
        response.body
    );
    assert_eq!(
        errors[0]["extensions"]["code"], "RATE_LIMITED",
        "{}",
        response.body
    );
    assert_eq!(errors[0]["path"], json!(["f"]), "{}", response.body);
    assert!(errors[0]["extensions"]["retryAfter"].as_u64() >= Some(1));

    // The five aliased logins that ran spent the whole budget.
    assert_rate_limited(&try_login(&app, &email, PASSWORD).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliases_and_batches_each_spend_one_attempt_per_operation() {
    let app = TestApp::spawn_with(TestDb::Sqlite, |c| auth_limit(c, 5, 5)).await;
    let email = create_account(&app).await;

    // Two aliased logins in one document: two attempts.
    let two = app
        .gql(
            None,
            "mutation($input: LoginInput!) { a: login(input: $input) { accessToken } b: login(input: $input) { accessToken } }",
            login_variables(&email, PASSWORD),
        )
        .await;
    assert!(two.data()["a"]["accessToken"].is_string());
    assert!(two.data()["b"]["accessToken"].is_string());

    // A batch of three logins in one HTTP request: three attempts.
    let operation = json!({ "query": LOGIN, "variables": login_variables(&email, PASSWORD) });
    let batch = app
        .client
        .post(app.url("/graphql"))
        .json(&json!([operation, operation, operation]))
        .send()
        .await
        .expect("send the batch");
    assert_eq!(batch.status(), reqwest::StatusCode::OK);
    let results: Value = batch.json().await.expect("JSON batch answer");
    let results = results.as_array().expect("a batch answers with an array");
    assert_eq!(results.len(), 3);
    for result in results {
        assert!(
            result["data"]["login"]["accessToken"].is_string(),
            "{result}"
        );
    }

    // 2 + 3 = 5: the budget is spent.
    assert_rate_limited(&try_login(&app, &email, PASSWORD).await);

    // A batch cannot get past it either: every operation in it is refused.
    let batch = app
        .client
        .post(app.url("/graphql"))
        .json(&json!([operation, operation]))
        .send()
        .await
        .expect("send the batch");
    let results: Value = batch.json().await.expect("JSON batch answer");
    for result in results.as_array().expect("an array") {
        assert_eq!(
            result["errors"][0]["extensions"]["code"], "RATE_LIMITED",
            "{result}"
        );
    }
}

abuse_scenario!(
    register_and_refresh_token_are_rate_limited_too,
    |c| auth_limit(c, 4, 4),
    |app| async move {
        let email = create_account(&app).await;
        // 1: login, 2–3: refreshToken twice, 4: register.
        let login = try_login(&app, &email, PASSWORD).await;
        let mut refresh = string(&login.data()["login"]["refreshToken"]);
        for _ in 0..2 {
            let rotated = app.gql(None, REFRESH, json!({ "t": refresh })).await;
            refresh = string(&rotated.data()["refreshToken"]["refreshToken"]);
        }
        let first_email = unique_email("limited-register");
        let registered = app
            .gql(
                None,
                REGISTER,
                json!({ "input": { "name": "First", "email": first_email, "password": PASSWORD } }),
            )
            .await;
        assert!(registered.data()["register"]["accessToken"].is_string());
        let token = string(&registered.data()["register"]["accessToken"]);

        // The budget is spent: refreshToken and register are refused too.
        let refused_refresh = app.gql(None, REFRESH, json!({ "t": refresh })).await;
        assert_rate_limited(&refused_refresh);
        let second_email = unique_email("limited-register");
        let refused_register = app
            .gql(
                None,
                REGISTER,
                json!({ "input": { "name": "Second", "email": second_email, "password": PASSWORD } }),
            )
            .await;
        assert_rate_limited(&refused_register);
        assert!(
            accounts::find_by_email(&app.state.db, &second_email)
                .await
                .expect("look the email up")
                .is_none(),
            "a refused registration creates no account"
        );
        assert_rate_limited(&try_login(&app, &email, PASSWORD).await);
        assert_me_works(&app, &token).await;
    }
);

// ---- per-account back-off and lockout ----

abuse_scenario!(
    after_repeated_wrong_passwords_an_account_backs_off_and_others_are_unaffected,
    |c| c.abuse.backoff_after = 2,
    |app| async move {
        let victim = create_account(&app).await;
        let bystander = create_account(&app).await;

        for _ in 0..2 {
            try_login(&app, &victim, WRONG_PASSWORD)
                .await
                .assert_code("UNAUTHENTICATED");
        }
        // The next immediate attempt waits, even with the right password.
        let refused = try_login(&app, &victim, PASSWORD).await;
        let retry_after = assert_rate_limited(&refused);
        assert!(
            retry_after <= 2,
            "the first back-off is 1 s: {}",
            refused.body
        );
        assert!(
            refused.error_message().contains("failed logins"),
            "{}",
            refused.body
        );
        assert_eq!(account(&app, &victim).await.failed_logins, 2);

        // Another account logs in at once.
        let other = try_login(&app, &bystander, PASSWORD).await;
        assert_me_works(&app, &access_token(&other)).await;

        // Once the back-off has passed, the right password works and clears the count.
        tokio::time::sleep(Duration::from_millis(retry_after * 1000 + 200)).await;
        let after = try_login(&app, &victim, PASSWORD).await;
        assert_me_works(&app, &access_token(&after)).await;
        let stored = account(&app, &victim).await;
        assert_eq!(stored.failed_logins, 0);
        assert!(stored.last_failed_login_at.is_none());
    }
);

abuse_scenario!(
    an_account_locks_at_the_limit_until_an_administrator_unlocks_it,
    |c| {
        c.abuse.backoff_after = 1;
        c.abuse.lockout_after = 3;
    },
    |app| async move {
        let victim = create_account(&app).await;
        let bystander = create_account(&app).await;

        try_login(&app, &victim, WRONG_PASSWORD)
            .await
            .assert_code("UNAUTHENTICATED");
        // Within the back-off: refused without counting as a failure.
        assert_rate_limited(&try_login(&app, &victim, WRONG_PASSWORD).await);
        assert_eq!(account(&app, &victim).await.failed_logins, 1);
        for failures in 2..=3 {
            age_last_failure(&app, &victim).await;
            try_login(&app, &victim, WRONG_PASSWORD)
                .await
                .assert_code("UNAUTHENTICATED");
            assert_eq!(account(&app, &victim).await.failed_logins, failures);
        }
        let locked = account(&app, &victim).await;
        assert!(
            locked.locked_at.is_some(),
            "locked at {} failures",
            locked.failed_logins
        );

        // Locked: even the right password, long after the last failure, is refused, with no retryAfter.
        age_last_failure(&app, &victim).await;
        let refused = try_login(&app, &victim, PASSWORD).await;
        refused.assert_code("RATE_LIMITED");
        assert!(
            refused
                .error_message()
                .starts_with("Account locked after too many failed logins"),
            "{}",
            refused.body
        );
        assert!(
            refused.errors()[0]["extensions"]
                .get("retryAfter")
                .is_none(),
            "a lock has no retryAfter: {}",
            refused.body
        );
        assert!(refused.body["data"].is_null(), "{}", refused.body);

        let other = try_login(&app, &bystander, PASSWORD).await;
        assert_me_works(&app, &access_token(&other)).await;

        accounts::unlock(&app.state.db, &victim)
            .await
            .expect("unlock the account");
        let unlocked = account(&app, &victim).await;
        assert!(unlocked.locked_at.is_none());
        assert_eq!(unlocked.failed_logins, 0);
        let after = try_login(&app, &victim, PASSWORD).await;
        assert_me_works(&app, &access_token(&after)).await;
    }
);

// ---- password hashing bound ----

abuse_scenario!(
    concurrent_registrations_beyond_the_hashers_are_rate_limited_and_reads_still_answer,
    |c| c.abuse.hash_wait = Duration::ZERO,
    |app| async move {
        let reader = app.signed_in_user().await;
        let n = 12;
        let barrier = Arc::new(tokio::sync::Barrier::new(n + 1));
        let mut registrations = tokio::task::JoinSet::new();
        for i in 0..n {
            let request = app.client.post(app.url("/graphql")).json(&json!({
                "query": REGISTER,
                "variables": { "input": {
                    "name": format!("Storm {i}"),
                    "email": unique_email("storm"),
                    "password": PASSWORD,
                } },
            }));
            let barrier = Arc::clone(&barrier);
            registrations.spawn(async move {
                barrier.wait().await;
                GqlResponse::read(request.send().await.expect("send register")).await
            });
        }
        let me = app
            .client
            .post(app.url("/graphql"))
            .bearer_auth(&reader.access)
            .json(&json!({ "query": "{ me { id } }" }));
        let reader_barrier = Arc::clone(&barrier);
        let read = tokio::spawn(async move {
            reader_barrier.wait().await;
            GqlResponse::read(me.send().await.expect("send me")).await
        });
        let responses = registrations.join_all().await;
        let read = read.await.expect("the read task");
        assert_eq!(read.data()["me"]["id"], reader.user_id.as_str());

        let mut limited = 0;
        let mut created = 0;
        for response in &responses {
            if response.errors().is_empty() {
                assert!(response.data()["register"]["accessToken"].is_string());
                created += 1;
            } else {
                assert_rate_limited(response);
                limited += 1;
            }
        }
        assert!(
            limited >= 1,
            "{n} concurrent registrations with no wait for a hasher: none refused"
        );
        assert!(created >= 1, "at least one registration gets a hasher");
        assert_eq!(limited + created, n);

        // Afterwards, registration works again.
        let after = app.signed_in_user().await;
        assert_me_works(&app, &after.access).await;
    }
);

// ---- client address behind a proxy ----

abuse_scenario!(
    behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget,
    |c| {
        auth_limit(c, 2, 2);
        c.trusted_proxies = vec!["127.0.0.1/32".parse().expect("CIDR")];
    },
    |app| async move {
        let email = create_account(&app).await;
        let alice = Some("198.51.100.1");
        let bob = Some("198.51.100.2");
        for _ in 0..2 {
            let ok = login_from(&app, alice, &email, PASSWORD).await;
            assert!(ok.errors().is_empty(), "{}", ok.body);
        }
        assert_rate_limited(&login_from(&app, alice, &email, PASSWORD).await);
        // Prepending addresses does not escape the budget: the rightmost untrusted one counts.
        assert_rate_limited(
            &login_from(&app, Some("203.0.113.9, 198.51.100.1"), &email, PASSWORD).await,
        );

        let other = login_from(&app, bob, &email, PASSWORD).await;
        assert!(other.errors().is_empty(), "{}", other.body);
        // The proxy's own address (no X-Forwarded-For) has a budget of its own too.
        let direct = login_from(&app, None, &email, PASSWORD).await;
        assert!(direct.errors().is_empty(), "{}", direct.body);
    }
);

abuse_scenario!(
    without_trusted_proxies_x_forwarded_for_is_ignored,
    |c| auth_limit(c, 2, 2),
    |app| async move {
        let email = create_account(&app).await;
        let first = login_from(&app, Some("198.51.100.1"), &email, PASSWORD).await;
        assert!(first.errors().is_empty(), "{}", first.body);
        let second = login_from(&app, Some("198.51.100.2"), &email, PASSWORD).await;
        assert!(second.errors().is_empty(), "{}", second.body);
        // A third forged address shares the same (socket) budget.
        assert_rate_limited(&login_from(&app, Some("198.51.100.3"), &email, PASSWORD).await);
        assert_rate_limited(&login_from(&app, None, &email, PASSWORD).await);
    }
);

/// The audit rows of `user_id`, oldest first, as (action, client_ip).
const CHANGE_PASSWORD: &str =
    "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }";

abuse_scenario!(
    guessing_the_current_password_in_change_password_backs_off_like_a_login,
    |c| c.abuse.backoff_after = 2,
    |app| async move {
        let email = create_account(&app).await;
        let session = try_login(&app, &email, PASSWORD).await;
        let token = access_token(&session);
        let user_id = string(&session.data()["login"]["user"]["id"]);
        let change = |current: &'static str| {
            app.gql(
                Some(&token),
                CHANGE_PASSWORD,
                json!({ "c": current, "n": "an entirely new passphrase for tests" }),
            )
        };
        for _ in 0..2 {
            change(WRONG_PASSWORD)
                .await
                .assert_bad_input("currentPassword");
        }
        assert_eq!(account(&app, &email).await.failed_logins, 2);
        // Even the right password now waits, as a login would.
        assert_rate_limited(&change(PASSWORD).await);
        try_login(&app, &email, PASSWORD)
            .await
            .assert_code("RATE_LIMITED");

        age_last_failure(&app, &email).await;
        let changed = change(PASSWORD).await;
        assert_eq!(changed.data()["changePassword"], true, "{}", changed.body);
        let stored = account(&app, &email).await;
        assert_eq!(
            stored.failed_logins, 0,
            "a successful change clears the count"
        );

        let actions: Vec<String> = audit_rows(&app, &user_id)
            .await
            .into_iter()
            .map(|(action, _)| action)
            .collect();
        // Two wrong passwords, then the refused change and the refused login (each a failed attempt).
        assert_eq!(
            actions.iter().filter(|a| *a == "LOGIN_FAILED").count(),
            4,
            "{actions:?}"
        );
        assert_eq!(
            actions.last().map(String::as_str),
            Some("UPDATE"),
            "{actions:?}"
        );
    }
);

async fn audit_rows(app: &TestApp, user_id: &str) -> Vec<(String, Option<String>)> {
    app.state.audit.flush().await;
    let user_id = uuid::Uuid::parse_str(user_id).expect("a user id");
    let mut rows = audit_event::Entity::find()
        .filter(audit_event::Column::UserId.eq(user_id))
        .all(&app.state.db)
        .await
        .expect("read the audit rows");
    rows.sort_by_key(|row| (row.occurred_at, row.id));
    rows.into_iter()
        .map(|row| (row.action, row.client_ip))
        .collect()
}

fn ips_of(rows: &[(String, Option<String>)], action: &str) -> Vec<String> {
    rows.iter()
        .filter(|(a, _)| a == action)
        .map(|(_, ip)| ip.clone().unwrap_or_default())
        .collect()
}

abuse_scenario!(
    audit_rows_record_the_forwarded_client_address_only_behind_a_trusted_proxy,
    |c| c.trusted_proxies = vec!["127.0.0.1/32".parse().expect("CIDR")],
    |app| async move {
        let email = create_account(&app).await;
        let login = login_from(&app, Some("198.51.100.7"), &email, PASSWORD).await;
        let token = access_token(&login);
        let user_id = string(&login.data()["login"]["user"]["id"]);
        try_login(&app, &email, WRONG_PASSWORD)
            .await
            .assert_code("UNAUTHENTICATED");
        let patient = app
            .create_patient(&token, patient_input("Audit", "Address", 52))
            .await;
        let read = gql_from(
            &app,
            Some("203.0.113.20, 198.51.100.8"),
            Some(&token),
            "query($id: ID!) { patient(id: $id) { id } }",
            json!({ "id": patient }),
        )
        .await;
        assert_eq!(read.data()["patient"]["id"], patient.as_str());

        let rows = audit_rows(&app, &user_id).await;
        assert_eq!(ips_of(&rows, "LOGIN"), vec!["198.51.100.7"], "{rows:?}");
        assert_eq!(ips_of(&rows, "LOGIN_FAILED"), vec!["127.0.0.1"], "{rows:?}");
        assert_eq!(ips_of(&rows, "CREATE"), vec!["127.0.0.1"], "{rows:?}");
        assert_eq!(ips_of(&rows, "READ"), vec!["198.51.100.8"], "{rows:?}");
    }
);

scenario!(
    audit_rows_record_the_socket_address_when_no_proxy_is_trusted,
    |app| async move {
        let email = create_account(&app).await;
        let login = login_from(&app, Some("198.51.100.7"), &email, PASSWORD).await;
        let token = access_token(&login);
        let user_id = string(&login.data()["login"]["user"]["id"]);
        let patient = app
            .create_patient(&token, patient_input("Forged", "Address", 52))
            .await;
        let read = gql_from(
            &app,
            Some("198.51.100.8"),
            Some(&token),
            "query($id: ID!) { patient(id: $id) { id } }",
            json!({ "id": patient }),
        )
        .await;
        assert_eq!(read.data()["patient"]["id"], patient.as_str());

        let rows = audit_rows(&app, &user_id).await;
        assert_eq!(ips_of(&rows, "LOGIN"), vec!["127.0.0.1"], "{rows:?}");
        assert_eq!(ips_of(&rows, "READ"), vec!["127.0.0.1"], "{rows:?}");
    }
);
