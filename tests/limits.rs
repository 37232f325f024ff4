//! Query-shape and transport limits, tried against the running server: every limit refuses the abusive
//! request with a clear error (status, message naming the limit, nothing executed) and the same server
//! goes on serving an ordinary client right after.
mod common;

use std::time::{Duration, Instant};

use common::*;
use medgraph::config::Environment;
use reqwest::header::{
    ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_REQUEST_HEADERS,
    ACCESS_CONTROL_REQUEST_METHOD, ALLOW, CONTENT_TYPE, HeaderMap, ORIGIN,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Like `scenario!`, with the test configuration adjusted first: generates `<name>::sqlite` and
/// `<name>::postgres` (the latter skips when `TEST_DATABASE_URL` is not set).
macro_rules! limits_scenario {
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

const CREATE_PATIENT: &str =
    "mutation($input: CreatePatientInput!) { createPatient(input: $input) { id } }";

/// Ten fields deep (patients › nodes › doctors › patients › … › id).
const DEPTH_10: &str = "{ patients { nodes { doctors { patients { doctors { patients { doctors { patients { doctors { id } } } } } } } } } }";
/// Eleven fields deep: one level more than the default limit.
const DEPTH_11: &str = "{ patients { nodes { doctors { patients { doctors { patients { doctors { patients { doctors { patients { id } } } } } } } } } } }";
/// A mutation whose selection is ten fields deep.
const DEPTH_10_MUTATION: &str = "mutation($input: CreatePatientInput!) { createPatient(input: $input) { doctors { patients { doctors { patients { doctors { patients { doctors { patients { id } } } } } } } } } }";
/// A mutation whose selection is eleven fields deep.
const DEPTH_11_MUTATION: &str = "mutation($input: CreatePatientInput!) { createPatient(input: $input) { doctors { patients { doctors { patients { doctors { patients { doctors { patients { doctors { id } } } } } } } } } } }";

/// A whole HTTP answer whose body is JSON.
struct Raw {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Raw {
    async fn read(response: reqwest::Response) -> Raw {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("read the response body");
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("response is not JSON ({error}): {status} {text}"));
        Raw {
            status,
            headers,
            body,
        }
    }

    fn message(&self) -> String {
        self.body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// POSTs raw bytes to `/graphql` with the given Content-Type (none when `None`).
async fn post_raw(
    app: &TestApp,
    content_type: Option<&str>,
    token: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Raw {
    let mut request = app.client.post(app.url("/graphql")).body(body);
    if let Some(content_type) = content_type {
        request = request.header(CONTENT_TYPE, content_type);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    Raw::read(request.send().await.expect("send the request")).await
}

/// Asserts a request was refused before execution by the HTTP layer: `status`, an `errors` list whose
/// message contains `needle`, and no `data` key at all.
fn assert_refused(status: StatusCode, body: &Value, expected: StatusCode, needle: &str) {
    assert_eq!(status, expected, "body: {body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(needle),
        "expected a message containing {needle:?}, got {body}"
    );
    assert!(
        body.get("data").is_none(),
        "a refused request has no data key: {body}"
    );
}

/// Asserts a GraphQL validation rejection (checked before execution): HTTP 200, an error whose message
/// contains `needle` (case-insensitive), and no data.
fn assert_invalid(response: &GqlResponse, needle: &str) {
    assert_eq!(response.status, StatusCode::OK, "body: {}", response.body);
    let message = response.error_message();
    assert!(
        message.to_lowercase().contains(&needle.to_lowercase()),
        "expected a message containing {needle:?}, got {}",
        response.body
    );
    assert!(
        response.body["data"].is_null(),
        "nothing may execute: {}",
        response.body
    );
}

/// An ordinary client is still served: `me` answers and a small patients query works.
async fn assert_still_serves(app: &TestApp, user: &AuthTokens) {
    let response = app
        .gql(
            user.token(),
            "{ me { id } patients(first: 5) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.data()["me"]["id"], user.user_id.as_str());
    assert!(response.data()["patients"]["totalCount"].is_i64());
}

async fn patient_count(app: &TestApp, user: &AuthTokens) -> i64 {
    app.gql(user.token(), "{ patients { totalCount } }", json!({}))
        .await
        .data()["patients"]["totalCount"]
        .as_i64()
        .expect("totalCount is a number")
}

/// `{ a0: me { id } a1: me { id } … }` with `n` aliases.
fn aliased_me(n: usize) -> String {
    let fields: Vec<String> = (0..n).map(|i| format!("a{i}: me {{ id }}")).collect();
    format!("{{ {} }}", fields.join(" "))
}

// ---- depth ----

limits_scenario!(
    a_query_eleven_levels_deep_is_refused_and_ten_levels_are_served,
    // Complexity would refuse these nested lists first; only depth is under test here.
    |c| c.limits.max_complexity = 1 << 40,
    |app| async move {
        let user = app.signed_in_user().await;
        let patient = app
            .create_patient(&user.access, patient_input("Deep", "Query", 40))
            .await;
        let doctor = app
            .create_doctor(&user.access, doctor_input("Dee", "Per", "Cardiology"))
            .await;
        app.assign(&user.access, &patient, &doctor).await;

        let deep = app.gql(user.token(), DEPTH_11, json!({})).await;
        assert_invalid(&deep, "nested too deep");

        let ok = app.gql(user.token(), DEPTH_10, json!({})).await;
        let data = ok.data();
        assert_eq!(
            data["patients"]["nodes"][0]["doctors"][0]["patients"][0]["doctors"][0]["patients"][0]
                ["doctors"][0]["patients"][0]["doctors"][0]["id"],
            doctor.as_str(),
            "{data}"
        );

        // A too-deep mutation is refused before it runs: nothing is created.
        let before = patient_count(&app, &user).await;
        let refused = app
            .gql(
                user.token(),
                DEPTH_11_MUTATION,
                json!({ "input": patient_input("Too", "Deep", 30) }),
            )
            .await;
        assert_invalid(&refused, "nested too deep");
        assert_eq!(patient_count(&app, &user).await, before);
        let created = app
            .gql(
                user.token(),
                DEPTH_10_MUTATION,
                json!({ "input": patient_input("Deep", "Enough", 30) }),
            )
            .await;
        assert!(created.data()["createPatient"]["doctors"].is_array());
        assert_eq!(patient_count(&app, &user).await, before + 1);
        assert_still_serves(&app, &user).await;
    }
);

// ---- complexity ----

scenario!(
    a_list_nested_in_lists_is_too_complex_while_a_normal_list_is_served,
    |app| async move {
        let user = app.signed_in_user().await;
        let patient = app
            .create_patient(&user.access, patient_input("Com", "Plex", 50))
            .await;
        let doctor = app
            .create_doctor(&user.access, doctor_input("Co", "St", "Neurology"))
            .await;
        app.assign(&user.access, &patient, &doctor).await;

        // 100 × (1 + 10 × 10 × 3) = 30,100 > 5,000 by default.
        let costly = app
            .gql(
                user.token(),
                "{ patients(first: 100) { nodes { doctors { patients { id firstName lastName } } } } }",
                json!({}),
            )
            .await;
        assert_invalid(&costly, "too complex");

        let normal = app
            .gql(
                user.token(),
                "{ patients(first: 20) { totalCount nodes { id firstName lastName doctors { id lastName } } } }",
                json!({}),
            )
            .await;
        let data = normal.data();
        assert_eq!(data["patients"]["nodes"][0]["id"], patient.as_str());
        assert_eq!(
            data["patients"]["nodes"][0]["doctors"][0]["id"],
            doctor.as_str()
        );
        assert_still_serves(&app, &user).await;
    }
);

limits_scenario!(
    a_lowered_complexity_limit_refuses_a_small_nested_query_and_runs_nothing,
    |c| c.limits.max_complexity = 60,
    |app| async move {
        let user = app.signed_in_user().await;
        // 50 patients × (nodes + 3 fields) is well over 60.
        let costly = app
            .gql(
                user.token(),
                "{ patients(first: 50) { nodes { id firstName lastName } } }",
                json!({}),
            )
            .await;
        assert_invalid(&costly, "too complex");
        let small = app
            .gql(
                user.token(),
                "{ patients(first: 5) { nodes { id firstName lastName } } }",
                json!({}),
            )
            .await;
        assert!(small.data()["patients"]["nodes"].is_array());

        // A mutation over the limit is refused before it runs.
        let before = patient_count(&app, &user).await;
        let refused = app
            .gql(
                user.token(),
                "mutation($input: CreatePatientInput!) { createPatient(input: $input) { id doctors { patients { doctors { id lastName } } } } }",
                json!({ "input": patient_input("Too", "Costly", 20) }),
            )
            .await;
        assert_invalid(&refused, "too complex");
        assert_eq!(patient_count(&app, &user).await, before);
        let created = app
            .gql(
                user.token(),
                CREATE_PATIENT,
                json!({ "input": patient_input("Cheap", "Enough", 20) }),
            )
            .await;
        assert!(created.data()["createPatient"]["id"].is_string());
        assert_eq!(patient_count(&app, &user).await, before + 1);
        assert_still_serves(&app, &user).await;
    }
);

// ---- aliases ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_aliases_are_refused_fifteen_are_served_and_typename_aliases_are_free() {
    let app = TestApp::spawn(TestDb::Sqlite).await;
    let user = app.signed_in_user().await;

    let refused = app.gql(user.token(), &aliased_me(16), json!({})).await;
    assert_refused(
        refused.status,
        &refused.body,
        StatusCode::BAD_REQUEST,
        "Too many aliases: 16 (at most 15)",
    );

    let served = app.gql(user.token(), &aliased_me(15), json!({})).await;
    let data = served.data();
    for i in 0..15 {
        assert_eq!(data[format!("a{i}")]["id"], user.user_id.as_str(), "{data}");
    }

    let typenames: Vec<String> = (0..200).map(|i| format!("t{i}: __typename")).collect();
    let free = app
        .gql(
            user.token(),
            &format!("{{ {} me {{ id }} }}", typenames.join(" ")),
            json!({}),
        )
        .await;
    let data = free.data();
    assert_eq!(data["t0"], "Query");
    assert_eq!(data["t199"], "Query");
    assert_eq!(data["me"]["id"], user.user_id.as_str());
    assert_still_serves(&app, &user).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_aliases_in_a_body_under_a_mebibyte_are_refused_fast() {
    let query = aliased_me(10_000);
    assert!(query.len() < 1024 * 1024, "{} bytes", query.len());

    // With the default limits the token limit stops it before it is even parsed.
    let app = TestApp::spawn(TestDb::Sqlite).await;
    let user = app.signed_in_user().await;
    let started = Instant::now();
    let refused = app.gql(user.token(), &query, json!({})).await;
    let elapsed = started.elapsed();
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    let message = refused.error_message();
    assert!(
        message.contains("tokens") || message.contains("aliases"),
        "{}",
        refused.body
    );
    assert!(refused.body.get("data").is_none(), "{}", refused.body);
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    assert_still_serves(&app, &user).await;

    // With the token limit out of the way, the alias limit alone refuses it.
    let app = TestApp::spawn_with(TestDb::Sqlite, |c| c.limits.max_tokens = 1_000_000).await;
    let user = app.signed_in_user().await;
    let started = Instant::now();
    let refused = app.gql(user.token(), &query, json!({})).await;
    let elapsed = started.elapsed();
    assert_refused(
        refused.status,
        &refused.body,
        StatusCode::BAD_REQUEST,
        "Too many aliases: 10000 (at most 15)",
    );
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    assert_still_serves(&app, &user).await;
}

// ---- directives, tokens, recursion ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_directives_on_a_field_than_the_limit_are_refused() {
    let app = TestApp::spawn(TestDb::Sqlite).await;
    let user = app.signed_in_user().await;
    let directives = "@include(if: true) ".repeat(51);
    let refused = app
        .gql(
            user.token(),
            &format!("{{ me {directives}{{ id }} }}"),
            json!({}),
        )
        .await;
    assert_invalid(&refused, "directives");
    assert!(
        refused.error_message().contains("50"),
        "the message names the limit: {}",
        refused.body
    );

    let normal = app
        .gql(
            user.token(),
            "query($yes: Boolean!) { me @include(if: $yes) { id email @skip(if: true) } }",
            json!({ "yes": true }),
        )
        .await;
    assert_eq!(normal.data()["me"]["id"], user.user_id.as_str());
    assert!(normal.data()["me"].get("email").is_none());
    assert_still_serves(&app, &user).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_valid_query_over_the_token_limit_is_refused() {
    let app = TestApp::spawn(TestDb::Sqlite).await;
    let user = app.signed_in_user().await;
    // `{ me { id id … } }`: 5 tokens plus one per `id`.
    let query = |ids: usize| format!("{{ me {{ {}}} }}", "id ".repeat(ids));

    let refused = app.gql(user.token(), &query(1_000), json!({})).await;
    assert_refused(
        refused.status,
        &refused.body,
        StatusCode::BAD_REQUEST,
        "Query too large: more than 1000 tokens",
    );

    let served = app.gql(user.token(), &query(990), json!({})).await;
    assert_eq!(served.data()["me"]["id"], user.user_id.as_str());
    assert_still_serves(&app, &user).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragments_nested_past_a_low_recursion_limit_are_refused() {
    let app = TestApp::spawn_with(TestDb::Sqlite, |c| c.limits.max_recursion = 4).await;
    let user = app.signed_in_user().await;

    // Selection sets nested five deep through fragments: over the limit of 4.
    let too_deep = "{ ...A } \
        fragment A on Query { ...B } fragment B on Query { ...C } fragment C on Query { ...D } \
        fragment D on Query { ...E } fragment E on Query { me { id } }";
    let refused = app.gql(user.token(), too_deep, json!({})).await;
    assert_invalid(&refused, "recursion depth");
    assert!(
        refused.error_message().contains('4'),
        "the message names the limit: {}",
        refused.body
    );

    // Four deep is allowed.
    let allowed = "{ ...A } fragment A on Query { ...B } fragment B on Query { ...C } \
        fragment C on Query { me { id } }";
    let served = app.gql(user.token(), allowed, json!({})).await;
    assert_eq!(served.data()["me"]["id"], user.user_id.as_str());
    assert_still_serves(&app, &user).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_fragments_nested_past_the_default_recursion_limit_are_refused() {
    let app = TestApp::spawn(TestDb::Sqlite).await;
    let user = app.signed_in_user().await;
    let nested = |n: usize| {
        format!(
            "{{ {} me {{ id }} {} }}",
            "... on Query { ".repeat(n),
            "} ".repeat(n)
        )
    };
    // 32 inline fragments put `me`'s selection 33 deep; 31 put it at exactly 32.
    let refused = app.gql(user.token(), &nested(32), json!({})).await;
    assert_invalid(&refused, "recursion depth");
    assert!(refused.error_message().contains("32"), "{}", refused.body);
    let served = app.gql(user.token(), &nested(31), json!({})).await;
    assert_eq!(served.data()["me"]["id"], user.user_id.as_str());
    assert_still_serves(&app, &user).await;
}

// ---- batches and bodies ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_eleven_is_refused_and_a_batch_of_two_returns_an_array() {
    let app = TestApp::spawn(TestDb::Sqlite).await;
    let user = app.signed_in_user().await;
    let operation = json!({ "query": "{ me { id } }" });

    let eleven = Value::Array(vec![operation.clone(); 11]);
    let refused = Raw::read(
        app.client
            .post(app.url("/graphql"))
            .bearer_auth(&user.access)
            .json(&eleven)
            .send()
            .await
            .expect("send the batch"),
    )
    .await;
    assert_refused(
        refused.status,
        &refused.body,
        StatusCode::BAD_REQUEST,
        "Batch too large",
    );
    assert!(refused.message().contains("10"), "{}", refused.body);

    let two = json!([
        { "query": "{ me { id } }" },
        { "query": "{ patients { totalCount } }" },
    ]);
    let served = Raw::read(
        app.client
            .post(app.url("/graphql"))
            .bearer_auth(&user.access)
            .json(&two)
            .send()
            .await
            .expect("send the batch"),
    )
    .await;
    assert_eq!(served.status, StatusCode::OK, "{}", served.body);
    let results = served
        .body
        .as_array()
        .unwrap_or_else(|| panic!("a batch answers with an array: {}", served.body));
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["data"]["me"]["id"], user.user_id.as_str());
    assert_eq!(results[1]["data"]["patients"]["totalCount"], 0);
    assert_still_serves(&app, &user).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_gets_413_and_one_under_it_is_served() {
    let app = TestApp::spawn(TestDb::Sqlite).await;
    let user = app.signed_in_user().await;
    let limit = app.state.config.limits.max_body_bytes;
    let body_of = |pad: usize| {
        serde_json::to_vec(&json!({
            "query": "{ me { id } }",
            "variables": { "pad": "x".repeat(pad) },
        }))
        .expect("serialize")
    };

    let over = body_of(limit);
    assert!(over.len() > limit);
    let refused = post_raw(&app, Some("application/json"), user.token(), over).await;
    assert_refused(
        refused.status,
        &refused.body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "Request body too large",
    );
    assert!(
        refused.message().contains(&limit.to_string()),
        "the message names the limit: {}",
        refused.body
    );

    let under = body_of(limit - 1024);
    assert!(under.len() <= limit);
    let served = post_raw(&app, Some("application/json"), user.token(), under).await;
    assert_eq!(served.status, StatusCode::OK, "{}", served.body);
    assert_eq!(served.body["data"]["me"]["id"], user.user_id.as_str());
    assert_still_serves(&app, &user).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_over_the_limit_gets_413_not_a_reset() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn(TestDb::Sqlite).await;
    let limit = app.state.config.limits.max_body_bytes;
    let mut stream = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n",
        app.addr
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    // No Content-Length, so the server only finds out while reading; every byte is written first.
    let chunk = vec![b' '; 64 * 1024];
    let mut sent = 0;
    while sent <= 8 * limit {
        stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .expect("chunk size");
        stream.write_all(&chunk).await.expect("chunk: no reset");
        stream.write_all(b"\r\n").await.expect("chunk end");
        sent += chunk.len();
    }
    stream.write_all(b"0\r\n\r\n").await.expect("last chunk");
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .expect("the server answers and closes within 10 s")
        .expect("read the response");
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 413"), "{text:.300}");
    assert!(text.contains("Request body too large"), "{text:.300}");
    let user = app.signed_in_user().await;
    assert_still_serves(&app, &user).await;
}

// ---- page sizes ----

scenario!(
    page_sizes_outside_one_to_a_hundred_are_bad_user_input,
    |app| async move {
        let user = app.signed_in_user().await;
        app.create_patient(&user.access, patient_input("Page", "Size", 33))
            .await;
        for first in [101, 0, -1] {
            let patients = app
                .gql(
                    user.token(),
                    "query($first: Int) { patients(first: $first) { nodes { id } } }",
                    json!({ "first": first }),
                )
                .await;
            patients.assert_bad_input("first");
            let doctors = app
                .gql(
                    user.token(),
                    &format!("{{ doctors(first: {first}) {{ nodes {{ id }} }} }}"),
                    json!({}),
                )
                .await;
            doctors.assert_bad_input("first");
        }
        for first in [1, 100] {
            let patients = app
                .gql(
                    user.token(),
                    "query($first: Int) { patients(first: $first) { nodes { id } } }",
                    json!({ "first": first }),
                )
                .await;
            assert_eq!(
                patients.data()["patients"]["nodes"]
                    .as_array()
                    .map(Vec::len),
                Some(1)
            );
        }
        assert_still_serves(&app, &user).await;
    }
);

// ---- transport ----

scenario!(
    content_types_a_web_page_can_send_cross_site_get_415_and_create_nothing,
    |app| async move {
        let user = app.signed_in_user().await;
        let body = serde_json::to_string(&json!({
            "query": CREATE_PATIENT,
            "variables": { "input": patient_input("Cross", "Site", 30) },
        }))
        .expect("serialize");
        let multipart = format!(
            "--XBOUNDARYX\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{body}\r\n\
             --XBOUNDARYX\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{{}}\r\n--XBOUNDARYX--\r\n"
        );
        let cases: [(Option<&str>, String); 5] = [
            (Some("text/plain"), body.clone()),
            (Some("text/plain;charset=UTF-8"), body.clone()),
            (Some("application/x-www-form-urlencoded"), body.clone()),
            (Some("multipart/form-data; boundary=XBOUNDARYX"), multipart),
            (None, body.clone()),
        ];
        for (content_type, payload) in cases {
            let refused = post_raw(&app, content_type, user.token(), payload).await;
            assert_eq!(
                refused.status,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{content_type:?}: {}",
                refused.body
            );
            assert!(refused.body.get("data").is_none(), "{}", refused.body);
            assert!(
                refused.message().contains("Content-Type"),
                "{content_type:?}: {}",
                refused.body
            );
        }
        assert_eq!(patient_count(&app, &user).await, 0, "nothing was created");

        let created = post_raw(
            &app,
            Some("application/json; charset=utf-8"),
            user.token(),
            body,
        )
        .await;
        assert_eq!(created.status, StatusCode::OK, "{}", created.body);
        assert!(created.body["data"]["createPatient"]["id"].is_string());
        assert_eq!(patient_count(&app, &user).await, 1);
        assert_still_serves(&app, &user).await;
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_utf8_body_is_a_400() {
    let app = TestApp::spawn(TestDb::Sqlite).await;
    let user = app.signed_in_user().await;
    let mut body = br#"{"query":"{ me { id } } #"#.to_vec();
    body.extend_from_slice(&[0xff, 0xfe, 0xc3]);
    body.extend_from_slice(br#""}"#);
    let refused = post_raw(&app, Some("application/json"), user.token(), body).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(refused.body.get("data").is_none(), "{}", refused.body);
    assert!(!refused.message().is_empty(), "{}", refused.body);
    assert_still_serves(&app, &user).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_a_400_without_data() {
    let app = TestApp::spawn(TestDb::Sqlite).await;
    let user = app.signed_in_user().await;
    for body in [
        r#"{"query": "{ me { id } }""#,
        r#"{"query": }"#,
        "not json at all",
        "",
        r#"{"query": "{ me { id } }",}"#,
    ] {
        let refused = post_raw(&app, Some("application/json"), user.token(), body).await;
        assert_refused(
            refused.status,
            &refused.body,
            StatusCode::BAD_REQUEST,
            "JSON",
        );
    }
    assert_still_serves(&app, &user).await;
}

scenario!(
    a_mutation_over_get_gets_405_with_allow_and_creates_nothing,
    |app| async move {
        let user = app.signed_in_user().await;
        let mutation = r#"mutation { createPatient(input: { firstName: "Via", lastName: "Get", age: 30, gender: UNKNOWN }) { id } }"#;
        let response = app
            .client
            .get(app.url("/graphql"))
            .query(&[("query", mutation)])
            .bearer_auth(&user.access)
            .send()
            .await
            .expect("GET /graphql");
        let refused = Raw::read(response).await;
        assert_refused(
            refused.status,
            &refused.body,
            StatusCode::METHOD_NOT_ALLOWED,
            "POST",
        );
        let allow = refused
            .headers
            .get(ALLOW)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(allow.contains("POST"), "Allow: {allow:?}");
        assert_eq!(patient_count(&app, &user).await, 0, "nothing was created");

        // The same mutation over POST works; a query over GET works.
        let created = app.gql(user.token(), mutation, json!({})).await;
        assert!(created.data()["createPatient"]["id"].is_string());
        assert_eq!(patient_count(&app, &user).await, 1);
        let response = app
            .client
            .get(app.url("/graphql"))
            .query(&[("query", "{ me { id } }")])
            .bearer_auth(&user.access)
            .send()
            .await
            .expect("GET /graphql");
        let served = Raw::read(response).await;
        assert_eq!(served.body["data"]["me"]["id"], user.user_id.as_str());
    }
);

// ---- introspection ----

const SCHEMA_QUERY: &str = "{ __schema { types { name } } }";
/// `createdAtt`: one letter off `createdAt`, close enough for a suggestion.
const TYPO_QUERY: &str = "{ me { id createdAtt } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_and_suggestions_are_on_in_the_test_configuration() {
    let app = TestApp::spawn(TestDb::Sqlite).await;
    let user = app.signed_in_user().await;
    let schema = app.gql(user.token(), SCHEMA_QUERY, json!({})).await;
    let names: Vec<&str> = schema.data()["__schema"]["types"]
        .as_array()
        .expect("types")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"Patient"), "{names:?}");

    let typo = app.gql(user.token(), TYPO_QUERY, json!({})).await;
    assert!(
        typo.error_message().contains("Did you mean"),
        "{}",
        typo.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_off_hands_out_no_schema_and_no_suggestions() {
    let app = TestApp::spawn_with(TestDb::Sqlite, |c| c.introspection = false).await;
    let user = app.signed_in_user().await;
    for query in [
        SCHEMA_QUERY,
        "{ __type(name: \"Patient\") { name fields { name } } }",
    ] {
        let schema = app.gql(user.token(), query, json!({})).await;
        let text = schema.body.to_string();
        // No type or field of the schema is handed out.
        assert!(!text.contains("PatientConnection"), "{text}");
        assert!(!text.contains("firstName"), "{text}");
        assert!(
            schema.body["data"]["__schema"].is_null() && schema.body["data"]["__type"].is_null(),
            "{text}"
        );
    }

    let typo = app.gql(user.token(), TYPO_QUERY, json!({})).await;
    assert!(
        typo.error_message().contains("createdAtt"),
        "the typo is still reported: {}",
        typo.body
    );
    assert!(
        !typo.body.to_string().contains("Did you mean"),
        "{}",
        typo.body
    );
    assert!(typo.body["data"].is_null(), "{}", typo.body);
    assert_still_serves(&app, &user).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn introspection_off_answers_a_schema_query_with_an_error() {
    let app = TestApp::spawn_with(TestDb::Sqlite, |c| c.introspection = false).await;
    let user = app.signed_in_user().await;
    let schema = app.gql(user.token(), SCHEMA_QUERY, json!({})).await;
    assert!(
        !schema.errors().is_empty(),
        "a schema query is refused with an error: {}",
        schema.body
    );
    assert!(schema.body["data"]["__schema"].is_null(), "{}", schema.body);
}

// ---- headers ----

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn assert_security_headers(headers: &HeaderMap, what: &str) {
    assert_eq!(
        header(headers, "x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(header(headers, "x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(
        header(headers, "referrer-policy"),
        Some("no-referrer"),
        "{what}"
    );
    assert!(
        header(headers, "content-security-policy").is_some_and(|v| !v.is_empty()),
        "{what}"
    );
    assert_eq!(header(headers, "cache-control"), Some("no-store"), "{what}");
}

async fn api_responses(app: &TestApp) -> Vec<(&'static str, HeaderMap)> {
    let post = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("POST /graphql");
    let refused = app
        .client
        .post(app.url("/graphql"))
        .header(CONTENT_TYPE, "text/plain")
        .body("{}")
        .send()
        .await
        .expect("POST /graphql as text/plain");
    let health = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("GET /healthz");
    vec![
        ("POST /graphql", post.headers().clone()),
        ("refused POST /graphql", refused.headers().clone()),
        ("GET /healthz", health.headers().clone()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_headers_are_set_and_hsts_only_in_production() {
    let app = TestApp::spawn(TestDb::Sqlite).await;
    for (what, headers) in api_responses(&app).await {
        assert_security_headers(&headers, what);
        assert!(
            headers.get("strict-transport-security").is_none(),
            "no HSTS in development: {what}"
        );
    }

    let production =
        TestApp::spawn_with(TestDb::Sqlite, |c| c.environment = Environment::Production).await;
    for (what, headers) in api_responses(&production).await {
        assert_security_headers(&headers, what);
        let hsts = header(&headers, "strict-transport-security").unwrap_or_default();
        assert!(hsts.contains("max-age="), "HSTS in production: {what}");
    }
}

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(Method::OPTIONS, app.url("/graphql"))
        .header(ORIGIN, origin)
        .header(ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(
            ACCESS_CONTROL_REQUEST_HEADERS,
            "content-type, authorization",
        )
        .send()
        .await
        .expect("OPTIONS /graphql")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflight_is_allowed_only_for_a_listed_origin() {
    const LISTED: &str = "https://app.example.com";
    const OTHER: &str = "https://evil.example.net";
    let app = TestApp::spawn_with(TestDb::Sqlite, |c| {
        c.cors_allowed_origins = vec![LISTED.to_owned()];
    })
    .await;

    let allowed = preflight(&app, LISTED).await;
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(
        header(allowed.headers(), ACCESS_CONTROL_ALLOW_ORIGIN.as_str()),
        Some(LISTED)
    );
    let methods = header(allowed.headers(), ACCESS_CONTROL_ALLOW_METHODS.as_str())
        .unwrap_or_default()
        .to_owned();
    assert!(methods.contains("POST"), "{methods}");

    let other = preflight(&app, OTHER).await;
    assert!(
        other.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none(),
        "{:?}",
        other.headers()
    );

    // The actual request: the listed origin may read the answer, the other may not.
    for (origin, readable) in [(LISTED, true), (OTHER, false)] {
        let response = app
            .client
            .post(app.url("/graphql"))
            .header(ORIGIN, origin)
            .json(&json!({ "query": "{ __typename }" }))
            .send()
            .await
            .expect("POST with Origin");
        assert_eq!(
            header(response.headers(), ACCESS_CONTROL_ALLOW_ORIGIN.as_str()) == Some(origin),
            readable,
            "{origin}: {:?}",
            response.headers()
        );
    }

    // Without an allow-list no origin is allowed.
    let closed = TestApp::spawn(TestDb::Sqlite).await;
    let response = preflight(&closed, LISTED).await;
    assert!(
        response
            .headers()
            .get(ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none(),
        "{:?}",
        response.headers()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_request_id_is_generated_when_absent_and_echoed_when_sent() {
    let app = TestApp::spawn(TestDb::Sqlite).await;
    let query = json!({ "query": "{ __typename }" });

    let first = app
        .client
        .post(app.url("/graphql"))
        .json(&query)
        .send()
        .await
        .expect("POST /graphql");
    let second = app
        .client
        .post(app.url("/graphql"))
        .json(&query)
        .send()
        .await
        .expect("POST /graphql");
    let generated: Vec<String> = [&first, &second]
        .iter()
        .map(|r| {
            header(r.headers(), "x-request-id")
                .unwrap_or_else(|| panic!("no x-request-id: {:?}", r.headers()))
                .to_owned()
        })
        .collect();
    assert!(generated.iter().all(|id| !id.is_empty()), "{generated:?}");
    assert_ne!(generated[0], generated[1], "each request gets its own id");

    let echoed = app
        .client
        .post(app.url("/graphql"))
        .header("x-request-id", "limits-test-request-42")
        .json(&query)
        .send()
        .await
        .expect("POST /graphql");
    assert_eq!(
        header(echoed.headers(), "x-request-id"),
        Some("limits-test-request-42")
    );
    // Refused requests carry one too.
    let refused = app
        .client
        .post(app.url("/graphql"))
        .header(CONTENT_TYPE, "text/plain")
        .header("x-request-id", "limits-test-refused-7")
        .body("{}")
        .send()
        .await
        .expect("POST /graphql");
    assert_eq!(refused.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        header(refused.headers(), "x-request-id"),
        Some("limits-test-refused-7")
    );
}

/// Holds an exclusive lock on `patients` from a connection of the app's own pool until `release` fires:
/// every statement on that table then waits, which makes a slow request that is not flaky.
async fn lock_patients_table(app: &TestApp) -> tokio::sync::oneshot::Sender<()> {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let (locked_tx, locked_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let db = app.state.db.clone();
    tokio::spawn(async move {
        let txn = db.begin().await.expect("begin");
        txn.execute_unprepared("LOCK TABLE patients IN ACCESS EXCLUSIVE MODE")
            .await
            .expect("lock patients");
        let _ = locked_tx.send(());
        let _ = tokio::time::timeout(Duration::from_secs(20), release_rx).await;
        let _ = txn.rollback().await;
    });
    locked_rx.await.expect("the table is locked");
    release_tx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_the_request_timeout_gets_a_503_with_an_error_list() {
    if postgres_admin_url().is_none() {
        eprintln!("skipping: TEST_DATABASE_URL not set");
        return;
    }
    let app = TestApp::spawn_with(TestDb::Postgres, |c| {
        c.limits.request_timeout = Duration::from_millis(700);
    })
    .await;
    let user = app.signed_in_user().await;
    let release = lock_patients_table(&app).await;

    let started = Instant::now();
    let response = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&user.access)
        .json(&json!({ "query": "{ patients { totalCount } }" }))
        .send()
        .await
        .expect("send");
    let waited = started.elapsed();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(waited < Duration::from_secs(4), "answered after {waited:?}");
    let body: Value = response.json().await.expect("a JSON body");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("took longer")),
        "{body}"
    );
    // A request that does not touch the locked table is served meanwhile.
    let me = app.gql(user.token(), "{ me { id } }", json!({})).await;
    assert_eq!(me.data()["me"]["id"], user.user_id.as_str());

    let _ = release.send(());
    assert_still_serves(&app, &user).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_past_the_statement_timeout_fails_fast_without_internals() {
    if postgres_admin_url().is_none() {
        eprintln!("skipping: TEST_DATABASE_URL not set");
        return;
    }
    let app = TestApp::spawn_with(TestDb::Postgres, |c| {
        c.limits.statement_timeout = Duration::from_millis(300);
    })
    .await;
    let user = app.signed_in_user().await;
    let release = lock_patients_table(&app).await;

    let started = Instant::now();
    let response = app
        .gql(user.token(), "{ patients { totalCount } }", json!({}))
        .await;
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(4), "answered after {waited:?}");
    response.assert_code("INTERNAL_SERVER_ERROR");
    assert_eq!(response.error_message(), "Internal server error");
    assert!(
        !response.body.to_string().contains("statement timeout"),
        "{}",
        response.body
    );

    let _ = release.send(());
    assert_still_serves(&app, &user).await;
}
