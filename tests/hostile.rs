//! Hostile input, tried for real against the running server: unicode and control characters, huge
//! strings and bodies, SQL fragments, wild numbers, invalid ids and cursors, forged tokens, deep, wide
//! and aliased queries. Each gets the right error, the server keeps answering, nothing leaks internals,
//! and the data is unchanged afterwards.
mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256, Sha512};

/// What no response body may ever show.
const LEAKS: &[&str] = &[
    "panicked",
    "sqlx",
    "constraint",
    "stack backtrace",
    "RUST_BACKTRACE",
    ".rs:",
];

const PATIENT_FIELDS: &str =
    "id firstName lastName age gender address phone notes version createdAt updatedAt";

const CREATE_PATIENT: &str = "mutation($input: CreatePatientInput!) { createPatient(input: $input) { id firstName lastName } }";

fn assert_no_leaks(text: &str) {
    assert!(!text.contains("SELECT"), "response shows SQL: {text:.2000}");
    let lower = text.to_lowercase();
    for leak in LEAKS {
        assert!(
            !lower.contains(&leak.to_lowercase()),
            "response shows {leak:?}: {text:.2000}"
        );
    }
}

/// A GraphQL request whose whole response body is checked for leaks.
async fn gql(app: &TestApp, token: Option<&str>, query: &str, variables: Value) -> GqlResponse {
    let response = app.gql(token, query, variables).await;
    assert_no_leaks(&response.body.to_string());
    assert_ne!(
        response.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        response.body
    );
    for error in response.errors() {
        assert_ne!(
            error["extensions"]["code"], "INTERNAL_SERVER_ERROR",
            "{}",
            response.body
        );
    }
    response
}

/// POSTs raw bytes as JSON; returns the status and the body text (checked for leaks).
async fn post_raw(app: &TestApp, token: Option<&str>, body: Vec<u8>) -> (StatusCode, String) {
    let mut request = app
        .client
        .post(app.url("/graphql"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("send the request");
    let status = response.status();
    let text = response.text().await.expect("read the body");
    assert_no_leaks(&text);
    (status, text)
}

/// The server still answers an ordinary query (nothing panicked, nothing hangs).
async fn assert_alive(app: &TestApp) {
    let response = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        app.gql(None, "{ __typename }", json!({})),
    )
    .await
    .expect("the server answers within 10 s");
    assert_eq!(response.data()["__typename"], "Query");
}

/// Everything the user can see of their patients, in a stable order.
async fn snapshot(app: &TestApp, token: &str) -> Vec<Value> {
    let response = app
        .gql(
            Some(token),
            &format!("{{ patients(first: 100) {{ totalCount nodes {{ {PATIENT_FIELDS} }} }} }}"),
            json!({}),
        )
        .await;
    let mut nodes = response.data()["patients"]["nodes"]
        .as_array()
        .expect("nodes")
        .clone();
    assert_eq!(
        response.data()["patients"]["totalCount"].as_u64(),
        Some(nodes.len() as u64)
    );
    nodes.sort_by_key(|n| string(&n["id"]));
    nodes
}

/// A user with two patients, a doctor and an assignment, so there is data to protect.
async fn user_with_data(app: &TestApp) -> (AuthTokens, Vec<String>, String) {
    let user = app.signed_in_user().await;
    let first = app
        .create_patient(&user.access, patient_input("Ada", "Lovelace", 36))
        .await;
    let second = app
        .create_patient(&user.access, patient_input("Alan", "Turing", 41))
        .await;
    let doctor = app
        .create_doctor(&user.access, doctor_input("James", "Wilson", "Oncology"))
        .await;
    app.assign(&user.access, &first, &doctor).await;
    (user, vec![first, second], doctor)
}

fn patient_with(field: &str, value: Value) -> Value {
    let mut input = patient_input("Valid", "Name", 30);
    input[field] = value;
    input
}

// ---------------------------------------------------------------- text

scenario!(
    unicode_names_are_accepted_and_returned_exactly,
    |app| async move {
        let user = app.signed_in_user().await;
        let names = [
            ("Zoë", "Ångström-Łukasz 李"),
            ("Zoë Ångström-Łukasz 李", "Øster"),
            ("مريم", "עברית"),
            ("Se\u{301}bastien", "Nguyễn"),
            ("🙂 Smiley", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢"),
            ("Ĳsbrand", "Straße"),
        ];
        let mut created = Vec::new();
        for (first, last) in names {
            let response = gql(
                &app,
                user.token(),
                CREATE_PATIENT,
                json!({ "input": patient_input(first, last, 30) }),
            )
            .await;
            let patient = &response.data()["createPatient"];
            assert_eq!(patient["firstName"], first);
            assert_eq!(patient["lastName"], last);
            created.push((string(&patient["id"]), first, last));
        }
        for (id, first, last) in &created {
            let response = gql(
                &app,
                user.token(),
                "query($id: ID!) { patient(id: $id) { firstName lastName fullName } }",
                json!({ "id": id }),
            )
            .await;
            let patient = &response.data()["patient"];
            assert_eq!(patient["firstName"], *first);
            assert_eq!(patient["lastName"], *last);
            assert_eq!(patient["fullName"], format!("{first} {last}"));
        }
        assert_eq!(snapshot(&app, &user.access).await.len(), names.len());

        // Unicode in an account name and a doctor's name too.
        let registered = app
            .register("Zoë Ångström-Łukasz 李", &unique_email("zoe"), PASSWORD)
            .await;
        let me = gql(&app, registered.token(), "{ me { name } }", json!({})).await;
        assert_eq!(me.data()["me"]["name"], "Zoë Ångström-Łukasz 李");
        let doctor = gql(
            &app,
            user.token(),
            "mutation($input: CreateDoctorInput!) { createDoctor(input: $input) { firstName lastName } }",
            json!({ "input": doctor_input("Łukasz", "李", "Kardiologie") }),
        )
        .await;
        assert_eq!(doctor.data()["createDoctor"]["firstName"], "Łukasz");
        assert_eq!(doctor.data()["createDoctor"]["lastName"], "李");
        assert_alive(&app).await;
    }
);

/// The scenario body, run on both databases by the `scenario!` below.
async fn a_unicode_name_is_found_by_a_case_insensitive_search_on(app: TestApp) {
    let user = app.signed_in_user().await;
    let id = app
        .create_patient(&user.access, patient_input("Zoë", "Ångström", 30))
        .await;
    app.create_patient(&user.access, patient_input("Other", "Person", 30))
        .await;
    for search in ["Ångström", "ångström", "ÅNGSTRÖM", "zoë", "ZOË"] {
        let response = gql(
            &app,
            user.token(),
            "query($s: String) { patients(filter: { search: $s }) { nodes { id } } }",
            json!({ "s": search }),
        )
        .await;
        assert_eq!(
            ids(&response.data()["patients"]["nodes"]),
            vec![id.clone()],
            "search {search:?}"
        );
    }
}

scenario!(
    a_unicode_name_is_found_by_a_case_insensitive_search,
    |app| a_unicode_name_is_found_by_a_case_insensitive_search_on(app)
);

scenario!(
    control_characters_in_names_are_bad_user_input,
    |app| async move {
        let (user, _, doctor) = user_with_data(&app).await;
        let before = snapshot(&app, &user.access).await;
        let patient = string(&before[0]["id"]);
        for bad in [
            "Nul\u{0}Byte",
            "Bell\u{7}",
            "\u{1b}[31mRed",
            "Del\u{7f}",
            "Line\nBreak",
            "C1\u{85}Next",
        ] {
            for field in ["firstName", "lastName"] {
                gql(
                    &app,
                    user.token(),
                    CREATE_PATIENT,
                    json!({ "input": patient_with(field, json!(bad)) }),
                )
                .await
                .assert_bad_input(field);
                gql(
                    &app,
                    user.token(),
                    "mutation($id: ID!, $input: UpdatePatientInput!) { updatePatient(id: $id, input: $input) { id } }",
                    json!({ "id": patient, "input": { field: bad } }),
                )
                .await
                .assert_bad_input(field);
            }
            app.try_register(bad, &unique_email("ctrl"), PASSWORD)
                .await
                .assert_bad_input("name");
            let mut input = doctor_input("Valid", "Doctor", "Cardiology");
            input["lastName"] = json!(bad);
            gql(
                &app,
                user.token(),
                "mutation($input: CreateDoctorInput!) { createDoctor(input: $input) { id } }",
                json!({ "input": input }),
            )
            .await
            .assert_bad_input("lastName");
            gql(
                &app,
                user.token(),
                "mutation($id: ID!, $input: UpdateDoctorInput!) { updateDoctor(id: $id, input: $input) { id } }",
                json!({ "id": doctor, "input": { "firstName": bad } }),
            )
            .await
            .assert_bad_input("firstName");
        }
        assert_eq!(snapshot(&app, &user.access).await, before);
        let doctors = gql(&app, user.token(), "{ doctors { totalCount } }", json!({})).await;
        assert_eq!(doctors.data()["doctors"]["totalCount"], 1);
        assert_alive(&app).await;
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_megabyte_string_is_refused_with_413() {
    let app = TestApp::spawn(TestDb::Sqlite).await;
    let (user, _, _) = user_with_data(&app).await;
    let before = snapshot(&app, &user.access).await;
    let huge = "A".repeat(10 * 1024 * 1024);
    let body = serde_json::to_vec(&json!({
        "query": CREATE_PATIENT,
        "variables": { "input": patient_input(&huge, "Huge", 30) },
    }))
    .expect("serialize");
    let (status, text) = post_raw(&app, user.token(), body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{text:.500}");
    let parsed: Value = serde_json::from_str(&text).expect("a JSON error body");
    assert!(parsed.get("data").is_none(), "{text:.500}");
    assert!(
        parsed["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("too large")),
        "{text:.500}"
    );
    assert_alive(&app).await;
    assert_eq!(snapshot(&app, &user.access).await, before);
}

scenario!(
    a_hundred_kilobyte_string_is_bad_user_input_not_a_server_error,
    |app| async move {
        let (user, patients, doctor) = user_with_data(&app).await;
        let before = snapshot(&app, &user.access).await;
        let big = "B".repeat(100 * 1024);
        for field in ["firstName", "lastName", "address", "phone", "notes"] {
            gql(
                &app,
                user.token(),
                CREATE_PATIENT,
                json!({ "input": patient_with(field, json!(big)) }),
            )
            .await
            .assert_bad_input(field);
        }
        gql(
            &app,
            user.token(),
            "mutation($id: ID!, $input: UpdatePatientInput!) { updatePatient(id: $id, input: $input) { id } }",
            json!({ "id": patients[0], "input": { "notes": big } }),
        )
        .await
        .assert_bad_input("notes");
        app.try_register(&big, &unique_email("big"), PASSWORD)
            .await
            .assert_bad_input("name");
        app.try_register("Big Email", &format!("{big}@example.com"), PASSWORD)
            .await
            .assert_bad_input("email");
        gql(
            &app,
            user.token(),
            "mutation($id: ID!, $input: UpdateDoctorInput!) { updateDoctor(id: $id, input: $input) { id } }",
            json!({ "id": doctor, "input": { "specialization": big } }),
        )
        .await
        .assert_bad_input("specialization");
        gql(
            &app,
            user.token(),
            "query($s: String) { patients(filter: { search: $s }) { totalCount } }",
            json!({ "s": big }),
        )
        .await
        .assert_bad_input("search");
        // A huge password is refused or hashed, never a server error (and is never stored).
        let response = app
            .try_register("Big Password", &unique_email("bigpw"), &big)
            .await;
        assert!(
            response
                .errors()
                .iter()
                .all(|e| e["extensions"]["code"] != "INTERNAL_SERVER_ERROR"),
            "{}",
            response.body
        );
        assert_no_leaks(&response.body.to_string());
        let login = app.try_login(&user.email, &big).await;
        login.assert_code("UNAUTHENTICATED");

        assert_eq!(snapshot(&app, &user.access).await, before);
        assert_alive(&app).await;
    }
);

// ---------------------------------------------------------------- SQL fragments

const SQL_FRAGMENTS: &[&str] = &[
    "Robert'); DROP TABLE patients;--",
    "' OR '1'='1",
    "\" OR \"\"=\"",
    "1; DELETE FROM users",
    "admin'--",
    "x' UNION ALL --",
    "%' OR 1=1 --",
    "\\'; TRUNCATE audit_events; --",
];

scenario!(
    sql_fragments_in_names_are_stored_literally,
    |app| async move {
        let user = app.signed_in_user().await;
        let bystander = app.signed_in_user().await;
        let bystander_patient = app
            .create_patient(&bystander.access, patient_input("Bystander", "Safe", 50))
            .await;
        let bystander_before = snapshot(&app, &bystander.access).await;

        let mut created = Vec::new();
        for fragment in SQL_FRAGMENTS {
            let response = gql(
                &app,
                user.token(),
                CREATE_PATIENT,
                json!({ "input": patient_input(fragment, fragment, 30) }),
            )
            .await;
            let patient = &response.data()["createPatient"];
            assert_eq!(patient["firstName"], *fragment);
            assert_eq!(patient["lastName"], *fragment);
            created.push((string(&patient["id"]), *fragment));
        }
        let after = snapshot(&app, &user.access).await;
        assert_eq!(after.len(), SQL_FRAGMENTS.len());
        for (id, fragment) in &created {
            let stored = after
                .iter()
                .find(|p| p["id"] == id.as_str())
                .expect("created patient listed");
            assert_eq!(stored["firstName"], *fragment);
            assert_eq!(stored["lastName"], *fragment);
        }
        // Every table is still there and nobody else's data moved.
        assert_eq!(snapshot(&app, &bystander.access).await, bystander_before);
        assert_eq!(bystander_before[0]["id"], bystander_patient.as_str());
        app.login(&user.email, PASSWORD).await;
        let registered = app
            .register(
                "Robert'); DROP TABLE users;--",
                &unique_email("bobby"),
                PASSWORD,
            )
            .await;
        let me = gql(&app, registered.token(), "{ me { name } }", json!({})).await;
        assert_eq!(me.data()["me"]["name"], "Robert'); DROP TABLE users;--");
        assert_alive(&app).await;
    }
);

scenario!(
    search_matches_sql_wildcards_and_fragments_only_literally,
    |app| async move {
        let user = app.signed_in_user().await;
        let plain = app
            .create_patient(&user.access, patient_input("Anna", "Plain", 30))
            .await;
        let underscore = app
            .create_patient(&user.access, patient_input("Bob", "A_B", 30))
            .await;
        let percent = app
            .create_patient(&user.access, patient_input("Carl", "Fifty%Off", 30))
            .await;
        let backslash = app
            .create_patient(&user.access, patient_input("Dora", "Back\\slash", 30))
            .await;
        let quote = app
            .create_patient(&user.access, patient_input("Eve", "O'Brien", 30))
            .await;
        let before = snapshot(&app, &user.access).await;
        let cases: Vec<(&str, Vec<&String>)> = vec![
            ("%", vec![&percent]),
            ("_", vec![&underscore]),
            ("%%", vec![]),
            ("__", vec![]),
            ("a_b", vec![&underscore]),
            ("y%o", vec![&percent]),
            ("\\", vec![&backslash]),
            ("'", vec![&quote]),
            ("o'brien", vec![&quote]),
            ("' OR 1=1 --", vec![]),
            ("' OR '1'='1", vec![]),
            ("%' OR 1=1 --", vec![]),
            ("anna", vec![&plain]),
        ];
        for (search, expected) in cases {
            let response = gql(
                &app,
                user.token(),
                "query($s: String) { patients(first: 100, filter: { search: $s }) { totalCount nodes { id } } }",
                json!({ "s": search }),
            )
            .await;
            let mut got = ids(&response.data()["patients"]["nodes"]);
            got.sort();
            let mut expected: Vec<String> = expected.into_iter().cloned().collect();
            expected.sort();
            assert_eq!(got, expected, "search {search:?}");
            assert_eq!(
                response.data()["patients"]["totalCount"].as_u64(),
                Some(expected.len() as u64),
                "search {search:?}"
            );
        }
        // The doctors search escapes wildcards too.
        app.create_doctor(&user.access, doctor_input("Plain", "Doctor", "Cardiology"))
            .await;
        let response = gql(
            &app,
            user.token(),
            "{ doctors(filter: { search: \"%\" }) { totalCount } }",
            json!({}),
        )
        .await;
        assert_eq!(response.data()["doctors"]["totalCount"], 0);
        assert_eq!(snapshot(&app, &user.access).await, before);
        assert_alive(&app).await;
    }
);

// ---------------------------------------------------------------- numbers

scenario!(
    negative_and_huge_numbers_are_rejected_without_a_server_error,
    |app| async move {
        let (user, patients, _) = user_with_data(&app).await;
        let before = snapshot(&app, &user.access).await;

        for age in [-1_i64, 151, 2_147_483_647, -2_147_483_648] {
            gql(
                &app,
                user.token(),
                CREATE_PATIENT,
                json!({ "input": patient_with("age", json!(age)) }),
            )
            .await
            .assert_bad_input("age");
            gql(
                &app,
                user.token(),
                "mutation($id: ID!, $input: UpdatePatientInput!) { updatePatient(id: $id, input: $input) { id } }",
                json!({ "id": patients[0], "input": { "age": age } }),
            )
            .await
            .assert_bad_input("age");
        }

        // Not an Int at all: refused by the GraphQL layer, with no data and no server error.
        for age in [
            json!(2_147_483_648_i64),
            json!(-2_147_483_649_i64),
            json!(1.5),
            json!("30"),
            json!(1e300),
        ] {
            let response = gql(
                &app,
                user.token(),
                CREATE_PATIENT,
                json!({ "input": patient_with("age", age.clone()) }),
            )
            .await;
            assert!(
                !response.errors().is_empty(),
                "age {age}: {}",
                response.body
            );
            assert!(
                response.body["data"].is_null(),
                "age {age}: {}",
                response.body
            );
        }
        for literal in [
            "2147483648",
            "-2147483649",
            "99999999999999999999999",
            "1.5",
        ] {
            let response = gql(
                &app,
                user.token(),
                &format!("{{ patients(first: {literal}) {{ totalCount }} }}"),
                json!({}),
            )
            .await;
            assert!(
                !response.errors().is_empty(),
                "first: {literal}: {}",
                response.body
            );
            assert!(
                response.body["data"].is_null(),
                "first: {literal}: {}",
                response.body
            );
        }
        let response = gql(
            &app,
            user.token(),
            "query($n: Int) { patients(first: $n) { totalCount } }",
            json!({ "n": 2_147_483_648_i64 }),
        )
        .await;
        assert!(!response.errors().is_empty(), "{}", response.body);

        for first in [-1, 0, 101, -2_147_483_648] {
            for list in ["patients", "doctors", "mappings"] {
                gql(
                    &app,
                    user.token(),
                    &format!("query($n: Int) {{ {list}(first: $n) {{ totalCount }} }}"),
                    json!({ "n": first }),
                )
                .await
                .assert_bad_input("first");
            }
        }

        // The largest Int as a page size: refused before execution (too complex) or as BAD_USER_INPUT.
        for list in ["patients", "doctors", "mappings"] {
            let response = gql(
                &app,
                user.token(),
                &format!("query($n: Int) {{ {list}(first: $n) {{ totalCount }} }}"),
                json!({ "n": 2_147_483_647 }),
            )
            .await;
            assert!(response.body["data"].is_null(), "{list}: {}", response.body);
            let message = response.error_message();
            assert!(
                response.error_code() == "BAD_USER_INPUT" || message.contains("too complex"),
                "{list}: {}",
                response.body
            );
        }

        // Extreme filter bounds are answered, not a server error.
        let response = gql(
            &app,
            user.token(),
            "{ patients(filter: { minAge: -2147483648, maxAge: 2147483647 }) { totalCount } }",
            json!({}),
        )
        .await;
        if response.errors().is_empty() {
            assert_eq!(response.data()["patients"]["totalCount"], before.len());
        } else {
            response.assert_code("BAD_USER_INPUT");
        }
        let response = gql(
            &app,
            user.token(),
            "{ patients(filter: { minAge: 2147483647, maxAge: -2147483648 }) { totalCount } }",
            json!({}),
        )
        .await;
        if response.errors().is_empty() {
            assert_eq!(response.data()["patients"]["totalCount"], 0);
        } else {
            response.assert_code("BAD_USER_INPUT");
        }

        // Absurd expected versions are conflicts.
        for version in [2_147_483_647, -2_147_483_648, 0] {
            gql(
                &app,
                user.token(),
                "mutation($id: ID!, $v: Int) { updatePatient(id: $id, input: { firstName: \"Changed\" }, expectedVersion: $v) { id } }",
                json!({ "id": patients[0], "v": version }),
            )
            .await
            .assert_code("CONFLICT");
        }

        assert_eq!(snapshot(&app, &user.access).await, before);
        assert_alive(&app).await;
    }
);

// ---------------------------------------------------------------- ids

const BAD_IDS: &[&str] = &[
    "not-a-uuid",
    "' OR 1=1 --",
    "",
    "42",
    "00000000-0000-0000-0000-00000000000g",
    "01a20162-55bf-7092-b757-ccff49558bd6'--",
];

scenario!(
    invalid_uuids_are_bad_user_input_for_every_id_argument,
    |app| async move {
        let (user, patients, doctor) = user_with_data(&app).await;
        let admin_account = app.signed_in_user().await;
        let admin = app.make_admin(&admin_account.email).await;
        let mapping = {
            let response = gql(
                &app,
                user.token(),
                "{ mappings { nodes { id } } }",
                json!({}),
            )
            .await;
            ids(&response.data()["mappings"]["nodes"])[0].clone()
        };
        let before = snapshot(&app, &user.access).await;
        let patient = patients[0].clone();

        // (query, variables with the bad id in place of BAD, field named in the error, as admin)
        let cases: Vec<(&str, Value, &str, bool)> = vec![
            (
                "query($v: ID!) { patient(id: $v) { id } }",
                json!({}),
                "id",
                false,
            ),
            (
                "mutation($v: ID!) { updatePatient(id: $v, input: { firstName: \"X\" }) { id } }",
                json!({}),
                "id",
                false,
            ),
            (
                "mutation($v: ID!) { deletePatient(id: $v) }",
                json!({}),
                "id",
                false,
            ),
            (
                "query($v: ID!) { doctor(id: $v) { id } }",
                json!({}),
                "id",
                false,
            ),
            (
                "mutation($v: ID!) { updateDoctor(id: $v, input: { firstName: \"X\" }) { id } }",
                json!({}),
                "id",
                false,
            ),
            (
                "mutation($v: ID!) { deleteDoctor(id: $v) }",
                json!({}),
                "id",
                false,
            ),
            (
                "mutation($v: ID!, $d: ID!) { assignDoctor(patientId: $v, doctorId: $d) { id } }",
                json!({ "d": doctor }),
                "patientId",
                false,
            ),
            (
                "mutation($v: ID!, $p: ID!) { assignDoctor(patientId: $p, doctorId: $v) { id } }",
                json!({ "p": patient }),
                "doctorId",
                false,
            ),
            (
                "mutation($v: ID!) { unassignDoctor(mappingId: $v) }",
                json!({}),
                "mappingId",
                false,
            ),
            (
                "query($v: ID) { mappings(patientId: $v) { totalCount } }",
                json!({}),
                "patientId",
                false,
            ),
            (
                "query($v: ID) { mappings(doctorId: $v) { totalCount } }",
                json!({}),
                "doctorId",
                false,
            ),
            (
                "query($v: ID!) { doctorsForPatient(patientId: $v) { id } }",
                json!({}),
                "patientId",
                false,
            ),
            (
                "query($v: ID) { auditEvents(filter: { userId: $v }) { totalCount } }",
                json!({}),
                "userId",
                true,
            ),
            (
                "query($v: ID) { auditEvents(filter: { entityType: PATIENT, entityId: $v }) { totalCount } }",
                json!({}),
                "entityId",
                true,
            ),
        ];
        for (query, extra, field, as_admin) in &cases {
            for bad in BAD_IDS {
                let mut variables = extra.clone();
                variables["v"] = json!(bad);
                let token = if *as_admin {
                    admin.token()
                } else {
                    user.token()
                };
                let response = gql(&app, token, query, variables).await;
                assert_eq!(
                    response.error_code(),
                    "BAD_USER_INPUT",
                    "{query} with {bad:?}: {}",
                    response.body
                );
                assert!(
                    !response.error_fields()[*field].is_null(),
                    "{query} with {bad:?} should name {field}: {}",
                    response.body
                );
            }
        }
        // A very long id, too.
        let long = "f".repeat(100_000);
        gql(
            &app,
            user.token(),
            "query($v: ID!) { patient(id: $v) { id } }",
            json!({ "v": long }),
        )
        .await
        .assert_bad_input("id");

        assert_eq!(snapshot(&app, &user.access).await, before);
        let mappings = gql(
            &app,
            user.token(),
            "{ mappings { nodes { id } } }",
            json!({}),
        )
        .await;
        assert_eq!(ids(&mappings.data()["mappings"]["nodes"]), vec![mapping]);
        let doctors = gql(&app, user.token(), "{ doctors { totalCount } }", json!({})).await;
        assert_eq!(doctors.data()["doctors"]["totalCount"], 1);
        assert_alive(&app).await;
    }
);

// ---------------------------------------------------------------- cursors

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn decode_cursor(cursor: &str) -> Value {
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(cursor)
            .expect("a cursor is base64url"),
    )
    .expect("a cursor is JSON")
}

/// Cursors that are not ones the server made: garbage, and real ones altered.
fn hostile_cursors(real: &str) -> Vec<String> {
    let decoded = decode_cursor(real);
    // The first character carries the top bits of the opening `{`: changing it breaks the JSON.
    let mut flipped = real.to_owned().into_bytes();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    let mut bad_id = decoded.clone();
    bad_id["i"] = json!("' OR 1=1 --");
    let mut other_ordering = decoded.clone();
    other_ordering["o"] = json!("SOMETHING_ELSE:ASC");
    let mut no_key = decoded.clone();
    if let Some(object) = no_key.as_object_mut() {
        object.remove("k");
    }
    let mut unknown_key_type = decoded.clone();
    unknown_key_type["k"] = json!({ "t": "Blob", "v": "x" });
    vec![
        "garbage!!".to_owned(),
        "' OR 1=1 --".to_owned(),
        String::new(),
        "%%%%".to_owned(),
        "A".repeat(10_000),
        b64(b"not a cursor"),
        b64(b"{}"),
        b64(b"null"),
        b64(b"[1,2,3]"),
        b64(&[0xff, 0xfe, 0x00, 0x80]),
        real[..real.len() / 2].to_owned(),
        String::from_utf8(flipped).expect("ascii"),
        format!("{real}!"),
        b64(bad_id.to_string().as_bytes()),
        b64(other_ordering.to_string().as_bytes()),
        b64(no_key.to_string().as_bytes()),
        b64(unknown_key_type.to_string().as_bytes()),
    ]
}

/// The lists, each as (query with $after, variables, path to the connection, as admin).
fn cursor_lists(patient: &str) -> Vec<(String, Value, Vec<&'static str>, bool)> {
    vec![
        (
            "query($after: String) { patients(first: 1, after: $after) { pageInfo { endCursor } nodes { id } } }".to_owned(),
            json!({}),
            vec!["patients"],
            false,
        ),
        (
            "query($after: String) { patients(first: 1, after: $after, orderBy: { field: LAST_NAME }) { pageInfo { endCursor } nodes { id } } }".to_owned(),
            json!({}),
            vec!["patients"],
            false,
        ),
        (
            "query($after: String) { doctors(first: 1, after: $after) { pageInfo { endCursor } nodes { id } } }".to_owned(),
            json!({}),
            vec!["doctors"],
            false,
        ),
        (
            "query($after: String) { mappings(first: 1, after: $after) { pageInfo { endCursor } nodes { id } } }".to_owned(),
            json!({}),
            vec!["mappings"],
            false,
        ),
        (
            "query($after: String) { auditEvents(first: 1, after: $after) { pageInfo { endCursor } nodes { id } } }".to_owned(),
            json!({}),
            vec!["auditEvents"],
            true,
        ),
        (
            "query($id: ID!, $after: String) { patient(id: $id) { auditTrail(first: 1, after: $after) { pageInfo { endCursor } nodes { id } } } }".to_owned(),
            json!({ "id": patient }),
            vec!["patient", "auditTrail"],
            false,
        ),
    ]
}

async fn data_with_two_of_everything(app: &TestApp) -> (AuthTokens, AuthTokens, String) {
    let (user, patients, doctor) = user_with_data(app).await;
    let second_doctor = app
        .create_doctor(&user.access, doctor_input("Lisa", "Cuddy", "Endocrinology"))
        .await;
    app.assign(&user.access, &patients[0], &second_doctor).await;
    app.assign(&user.access, &patients[1], &doctor).await;
    app.gql(
        user.token(),
        "mutation($id: ID!) { updatePatient(id: $id, input: { notes: \"seen\" }) { id } }",
        json!({ "id": patients[0] }),
    )
    .await
    .data();
    app.state.audit.flush().await;
    let admin_account = app.signed_in_user().await;
    let admin = app.make_admin(&admin_account.email).await;
    (user, admin, patients[0].clone())
}

async fn real_cursor(
    app: &TestApp,
    token: &str,
    query: &str,
    variables: &Value,
    path: &[&str],
) -> String {
    let mut variables = variables.clone();
    variables["after"] = Value::Null;
    let response = gql(app, Some(token), query, variables).await;
    let mut connection = response.data().clone();
    for key in path {
        connection = connection[*key].clone();
    }
    assert_eq!(
        connection["nodes"].as_array().map(Vec::len),
        Some(1),
        "{connection}"
    );
    string(&connection["pageInfo"]["endCursor"])
}

scenario!(
    garbage_and_tampered_cursors_are_bad_user_input,
    |app| async move {
        let (user, admin, patient) = data_with_two_of_everything(&app).await;
        let before = snapshot(&app, &user.access).await;
        for (query, variables, path, as_admin) in cursor_lists(&patient) {
            let token = if as_admin {
                &admin.access
            } else {
                &user.access
            };
            let real = real_cursor(&app, token, &query, &variables, &path).await;
            // The genuine cursor continues the list.
            let mut next = variables.clone();
            next["after"] = json!(real);
            gql(&app, Some(token), &query, next).await.data();
            for cursor in hostile_cursors(&real) {
                let mut variables = variables.clone();
                variables["after"] = json!(cursor);
                let response = gql(&app, Some(token), &query, variables).await;
                assert_eq!(
                    response.error_code(),
                    "BAD_USER_INPUT",
                    "{query} after {cursor:.100?}: {}",
                    response.body
                );
                assert!(
                    !response.error_fields()["after"].is_null(),
                    "{query} after {cursor:.100?}: {}",
                    response.body
                );
            }
        }
        assert_eq!(snapshot(&app, &user.access).await, before);
        assert_alive(&app).await;
    }
);

/// The scenario body, run on both databases by the `scenario!` below.
async fn a_cursor_whose_sort_key_has_the_wrong_type_is_bad_user_input_on(app: TestApp) {
    let (user, admin, patient) = data_with_two_of_everything(&app).await;
    let before = snapshot(&app, &user.access).await;
    let wrong_keys = [
        json!({ "t": "Text", "v": "' OR 1=1 --" }),
        json!({ "t": "Date", "v": "2020-01-01" }),
        json!({ "t": "Time", "v": "2020-01-01T00:00:00Z" }),
    ];
    for (query, variables, path, as_admin) in cursor_lists(&patient) {
        let token = if as_admin {
            &admin.access
        } else {
            &user.access
        };
        let real = real_cursor(&app, token, &query, &variables, &path).await;
        let decoded = decode_cursor(&real);
        for key in &wrong_keys {
            if key["t"] == decoded["k"]["t"] {
                continue;
            }
            let mut tampered = decoded.clone();
            tampered["k"] = key.clone();
            let cursor = b64(tampered.to_string().as_bytes());
            let mut variables = variables.clone();
            variables["after"] = json!(cursor);
            let response = gql(&app, Some(token), &query, variables).await;
            assert_eq!(
                response.error_code(),
                "BAD_USER_INPUT",
                "{query} with key {key} in place of {}: {}",
                decoded["k"],
                response.body
            );
        }
    }
    assert_eq!(snapshot(&app, &user.access).await, before);
    assert_alive(&app).await;
}

scenario!(
    a_cursor_whose_sort_key_has_the_wrong_type_is_bad_user_input,
    |app| a_cursor_whose_sort_key_has_the_wrong_type_is_bad_user_input_on(app)
);

// ---------------------------------------------------------------- tokens

const KNOWN_SECRET: &str = "hostile-tests-know-this-secret-0123456789abcdef";

fn known_secret() -> medgraph::config::JwtSecret {
    medgraph::config::Config::from_lookup(|name| {
        (name == "JWT_SECRET").then(|| KNOWN_SECRET.to_owned())
    })
    .expect("a configuration with a known JWT secret")
    .jwt_secret
}

fn hmac<D: Digest>(block_size: usize, key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = vec![0u8; block_size];
    if key.len() > block_size {
        let digest = D::digest(key);
        block[..digest.len()].copy_from_slice(&digest);
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner_pad: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    let outer_pad: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    let inner = D::new()
        .chain_update(&inner_pad)
        .chain_update(message)
        .finalize();
    D::new()
        .chain_update(&outer_pad)
        .chain_update(inner)
        .finalize()
        .to_vec()
}

fn jwt_part(value: &Value) -> String {
    b64(&serde_json::to_vec(value).expect("serialize"))
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("claims")
}

fn sign(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let input = format!("{}.{}", jwt_part(header), jwt_part(claims));
    let signature = match header["alg"].as_str() {
        Some("HS512") => hmac::<Sha512>(128, secret, input.as_bytes()),
        _ => hmac::<Sha256>(64, secret, input.as_bytes()),
    };
    format!("{input}.{}", b64(&signature))
}

fn hs256() -> Value {
    json!({ "alg": "HS256", "typ": "JWT" })
}

fn unix_now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs(),
    )
    .expect("fits")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_forged_and_misused_tokens_are_unauthenticated() {
    let app = TestApp::spawn_with(TestDb::Sqlite, |config| {
        config.jwt_secret = known_secret();
    })
    .await;
    let (user, _, _) = user_with_data(&app).await;
    let before = snapshot(&app, &user.access).await;
    let claims = claims_of(&user.access);
    let secret = KNOWN_SECRET.as_bytes();

    // Our signing is right: a token we make with the server's secret and sound claims is accepted.
    let mut fresh = claims.clone();
    fresh["iat"] = json!(unix_now());
    fresh["exp"] = json!(unix_now() + 600);
    let control = sign(&hs256(), &fresh, secret);
    let me = gql(&app, Some(&control), "{ me { id } }", json!({})).await;
    assert_eq!(me.data()["me"]["id"], user.user_id.as_str());

    let with = |change: &dyn Fn(&mut Value)| {
        let mut c = fresh.clone();
        change(&mut c);
        c
    };
    let (header, payload, signature) = {
        let mut parts = user.access.split('.');
        (
            parts.next().expect("header").to_owned(),
            parts.next().expect("payload").to_owned(),
            parts.next().expect("signature").to_owned(),
        )
    };
    let mut admin_claims = claims.clone();
    admin_claims["role"] = json!("ADMIN");

    let forged: Vec<(&str, String)> = vec![
        (
            "expired an hour ago",
            sign(
                &hs256(),
                &with(&|c| {
                    c["iat"] = json!(unix_now() - 7200);
                    c["exp"] = json!(unix_now() - 3600);
                }),
                secret,
            ),
        ),
        (
            "expired beyond the leeway",
            sign(
                &hs256(),
                &with(&|c| c["exp"] = json!(unix_now() - 120)),
                secret,
            ),
        ),
        (
            "signed with another secret",
            sign(
                &hs256(),
                &fresh,
                b"not the server's secret, but long enough anyway",
            ),
        ),
        (
            "alg none, no signature",
            format!(
                "{}.{}.",
                jwt_part(&json!({ "alg": "none", "typ": "JWT" })),
                jwt_part(&fresh)
            ),
        ),
        (
            "alg none, real signature",
            format!(
                "{}.{payload}.{signature}",
                jwt_part(&json!({ "alg": "none", "typ": "JWT" }))
            ),
        ),
        (
            "alg HS512 with the server's secret",
            sign(&json!({ "alg": "HS512", "typ": "JWT" }), &fresh, secret),
        ),
        (
            "alg HS512 header on an HS256 signature",
            format!(
                "{}.{payload}.{signature}",
                jwt_part(&json!({ "alg": "HS512", "typ": "JWT" }))
            ),
        ),
        (
            "alg RS256 header",
            format!(
                "{}.{payload}.{signature}",
                jwt_part(&json!({ "alg": "RS256", "typ": "JWT" }))
            ),
        ),
        (
            "truncated signature",
            format!("{header}.{payload}.{}", &signature[..signature.len() - 4]),
        ),
        ("no signature", format!("{header}.{payload}.")),
        ("two parts", format!("{header}.{payload}")),
        (
            "role changed to ADMIN",
            format!("{header}.{}.{signature}", jwt_part(&admin_claims)),
        ),
        (
            "a refresh token type",
            sign(&hs256(), &with(&|c| c["typ"] = json!("refresh")), secret),
        ),
        (
            "another audience",
            sign(
                &hs256(),
                &with(&|c| c["aud"] = json!("someone-else")),
                secret,
            ),
        ),
        (
            "another issuer",
            sign(&hs256(), &with(&|c| c["iss"] = json!("evil")), secret),
        ),
        (
            "no expiry",
            sign(
                &hs256(),
                &with(&|c| {
                    if let Some(object) = c.as_object_mut() {
                        object.remove("exp");
                    }
                }),
                secret,
            ),
        ),
        (
            "an unknown role",
            sign(&hs256(), &with(&|c| c["role"] = json!("SUPERUSER")), secret),
        ),
        (
            "a subject that is not an id",
            sign(
                &hs256(),
                &with(&|c| c["sub"] = json!("' OR 1=1 --")),
                secret,
            ),
        ),
        ("the refresh token", user.refresh.clone()),
        ("garbage", "garbage".to_owned()),
        ("ten kilobytes of garbage", "x.y.z".repeat(2_000)),
    ];
    for (what, token) in &forged {
        let response = gql(&app, Some(token), "{ me { id } }", json!({})).await;
        assert_eq!(
            response.error_code(),
            "UNAUTHENTICATED",
            "{what}: {}",
            response.body
        );
        let response = gql(
            &app,
            Some(token),
            CREATE_PATIENT,
            json!({ "input": patient_input("Forged", "Token", 30) }),
        )
        .await;
        assert_eq!(
            response.error_code(),
            "UNAUTHENTICATED",
            "{what}: {}",
            response.body
        );
        let response = gql(
            &app,
            Some(token),
            "{ auditEvents { totalCount } }",
            json!({}),
        )
        .await;
        assert_eq!(
            response.error_code(),
            "UNAUTHENTICATED",
            "{what}: {}",
            response.body
        );
    }

    // Other schemes and undecodable header values.
    for value in [
        format!("Basic {}", user.access),
        format!("Token {}", user.access),
        format!("Bearer {} extra", user.access),
    ] {
        let response = app
            .client
            .post(app.url("/graphql"))
            .header(reqwest::header::AUTHORIZATION, value.as_str())
            .json(&json!({ "query": "{ me { id } }" }))
            .send()
            .await
            .expect("send");
        let response = GqlResponse::read(response).await;
        assert_no_leaks(&response.body.to_string());
        response.assert_code("UNAUTHENTICATED");
    }
    let binary =
        reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe\xfd").expect("obs-text");
    let response = app
        .client
        .post(app.url("/graphql"))
        .header(reqwest::header::AUTHORIZATION, binary)
        .json(&json!({ "query": "{ me { id } }" }))
        .send()
        .await
        .expect("send");
    let response = GqlResponse::read(response).await;
    response.assert_code("UNAUTHENTICATED");

    assert_eq!(snapshot(&app, &user.access).await, before);
    assert_alive(&app).await;
}

// ---------------------------------------------------------------- query shape

/// `{ patients { nodes { doctors { patients { doctors … } } } } }` nested `levels` list levels deep.
fn nested(levels: usize, leaf: &str) -> String {
    let mut selection = leaf.to_owned();
    for level in (0..levels).rev() {
        let field = if level % 2 == 0 {
            "doctors"
        } else {
            "patients"
        };
        selection = format!("{field} {{ id {selection} }}");
    }
    selection
}

scenario!(
    deep_and_wide_queries_are_rejected_before_anything_runs,
    |app| async move {
        let (user, _, _) = user_with_data(&app).await;
        let before = snapshot(&app, &user.access).await;
        let input = json!({ "input": patient_input("Should", "NotExist", 30) });

        // Too deep. Every nesting of this schema passes through a list, so a deep selection of patient
        // data is also far too complex (either limit may say no); introspection nests without lists.
        let deep_data = format!("{{ patients {{ nodes {{ {} }} }} }}", nested(12, "id"));
        let deep_mutation = format!(
            "mutation($input: CreatePatientInput!) {{ createPatient(input: $input) {{ {} }} }}",
            nested(12, "id")
        );
        // Introspection-only documents may nest deeper than data (schema tooling's standard query is
        // about 14 deep; the server allows them medgraph::graphql::INTROSPECTION_MAX_DEPTH), but not without bound.
        let of_types = medgraph::graphql::INTROSPECTION_MAX_DEPTH;
        let deep_introspection = format!(
            "{{ __schema {{ types {{ fields {{ type {{ {}name{} }} }} }} }} }}",
            "ofType { ".repeat(of_types),
            " }".repeat(of_types)
        );
        // Too wide: 100 patients × 10 doctors × 10 patients × … is far over the complexity budget.
        let wide_query = "{ patients(first: 100) { nodes { id firstName lastName doctors { id patients { id firstName lastName notes } } } } }".to_owned();
        let wide_mutation = "mutation($input: CreatePatientInput!) { createPatient(input: $input) { id doctors { id patients { id doctors { id patients { id firstName lastName notes address phone } } } } } }".to_owned();
        // A fragment cycle.
        let cycle = "{ patients { nodes { ...P } } } fragment P on Patient { doctors { ...D } } fragment D on Doctor { patients { ...P } }".to_owned();

        for (what, query, hints) in [
            ("deep patient data", &deep_data, &["deep", "complex"][..]),
            ("deep mutation", &deep_mutation, &["deep", "complex"][..]),
            ("deep introspection", &deep_introspection, &["deep"][..]),
            ("wide query", &wide_query, &["complex"][..]),
            ("wide mutation", &wide_mutation, &["complex"][..]),
            ("fragment cycle", &cycle, &["fragment", "recursion"][..]),
        ] {
            let response = gql(&app, user.token(), query, input.clone()).await;
            assert!(!response.errors().is_empty(), "{what}: {}", response.body);
            assert!(response.body["data"].is_null(), "{what}: {}", response.body);
            let message = response.error_message().to_lowercase();
            assert!(
                hints.iter().any(|hint| message.contains(hint)),
                "{what}: {}",
                response.body
            );
        }
        // Still within the limits, the same shapes work.
        let fine = format!(
            "{{ patients(first: 5) {{ nodes {{ {} }} }} }}",
            nested(2, "id")
        );
        gql(&app, user.token(), &fine, json!({})).await.data();

        assert_eq!(snapshot(&app, &user.access).await, before);
        assert_alive(&app).await;
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_aliases_are_rejected_before_anything_runs() {
    let app = TestApp::spawn(TestDb::Sqlite).await;
    let (user, _, _) = user_with_data(&app).await;
    let before = snapshot(&app, &user.access).await;

    let many_reads: String = (0..10_000).map(|i| format!("a{i}: me {{ id }} ")).collect();
    let many_typenames: String = (0..10_000).map(|i| format!("t{i}: __typename ")).collect();
    // Ten thousand deletions of the user's own patient: had any run, the data would differ.
    let victim = string(&before[0]["id"]);
    let many_deletes: String = (0..10_000)
        .map(|i| format!("d{i}: deletePatient(id: \"{victim}\") "))
        .collect();
    let sixteen: String = (0..16).map(|i| format!("a{i}: me {{ id }} ")).collect();
    for (what, query) in [
        ("10,000 aliased reads", format!("{{ {many_reads} }}")),
        (
            "10,000 aliased __typename",
            format!("{{ {many_typenames} }}"),
        ),
        (
            "10,000 aliased deletes",
            format!("mutation {{ {many_deletes} }}"),
        ),
        ("16 aliases", format!("{{ {sixteen} }}")),
    ] {
        let body = serde_json::to_vec(&json!({ "query": query })).expect("serialize");
        let (status, text) = post_raw(&app, user.token(), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {text:.300}");
        let parsed: Value = serde_json::from_str(&text).expect("JSON error body");
        assert!(parsed.get("data").is_none(), "{what}: {text:.300}");
        let message = parsed["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("aliases") || message.contains("tokens"),
            "{what}: {message}"
        );
    }
    assert_eq!(snapshot(&app, &user.access).await, before);
    assert_alive(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_are_bad_requests_and_change_nothing() {
    let app = TestApp::spawn(TestDb::Sqlite).await;
    let (user, _, _) = user_with_data(&app).await;
    let before = snapshot(&app, &user.access).await;
    let create = serde_json::to_vec(&json!({
        "query": CREATE_PATIENT,
        "variables": { "input": patient_input("Should", "NotExist", 30) },
    }))
    .expect("serialize");
    let truncated = create[..create.len() / 2].to_vec();
    let mut invalid_utf8 = create.clone();
    let position = invalid_utf8
        .windows(6)
        .position(|w| w == b"Should")
        .expect("name in body");
    invalid_utf8[position] = 0xff;
    for (what, body) in [
        ("truncated JSON", truncated),
        ("invalid UTF-8", invalid_utf8),
        ("not JSON", b"query { me { id } }".to_vec()),
        ("empty", Vec::new()),
        ("a bare string", b"\"{ me { id } }\"".to_vec()),
        ("deeply nested arrays", "[".repeat(100_000).into_bytes()),
        ("NUL bytes", vec![0u8; 1024]),
    ] {
        let (status, text) = post_raw(&app, user.token(), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {text:.300}");
    }
    assert_eq!(snapshot(&app, &user.access).await, before);
    assert_alive(&app).await;
}
