//! The response cache: a repeated patient list is answered from memory only while the database's
//! stamps say nothing it shows has changed; every answer, kept or not, writes its READ rows.
mod common;

use common::*;
use medgraph::entities::{audit_event, patient};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, Statement, sea_query::Expr,
};
use serde_json::{Value, json};
use uuid::Uuid;

const LIST: &str = "query List($first: Int) { patients(first: $first) { totalCount \
    edges { cursor node { id fullName age notes version doctors { id fullName specialization } } } \
    pageInfo { hasNextPage endCursor } } }";

/// What a list must show after a step.
type Shows = fn(&Value) -> bool;

/// One request: its body, its `X-Cache` header (absent when the cache did not handle it), and the
/// request id its audit rows carry.
struct Answer {
    body: Value,
    cache: Option<String>,
    request_id: String,
}

async fn send(
    app: &TestApp,
    token: &str,
    query: &str,
    variables: Value,
    cache_control: Option<&str>,
) -> Answer {
    let request_id = format!("cache-{}", Uuid::now_v7().simple());
    let mut request = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(token)
        .header("x-request-id", &request_id)
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(value) = cache_control {
        request = request.header("cache-control", value);
    }
    let response = request.send().await.expect("send the GraphQL request");
    let cache = response
        .headers()
        .get("x-cache")
        .map(|v| v.to_str().expect("ASCII header").to_owned());
    let response = GqlResponse::read(response).await;
    let _ = response.data();
    Answer {
        body: response.body,
        cache,
        request_id,
    }
}

async fn list(app: &TestApp, token: &str) -> Answer {
    send(app, token, LIST, json!({ "first": 50 }), None).await
}

/// The list as the database has it now, computed afresh.
async fn fresh(app: &TestApp, token: &str) -> Value {
    let answer = send(app, token, LIST, json!({ "first": 50 }), Some("no-cache")).await;
    assert_eq!(answer.cache, None, "no-cache must bypass the cache");
    answer.body
}

/// The READ rows one request wrote: (patient id, user id).
async fn reads_of(app: &TestApp, request_id: &str) -> Vec<(Uuid, Option<Uuid>)> {
    app.state.audit.flush().await;
    let mut rows: Vec<(Uuid, Option<Uuid>)> = audit_event::Entity::find()
        .filter(audit_event::Column::RequestId.eq(request_id))
        .filter(audit_event::Column::Action.eq("READ"))
        .all(&app.state.db)
        .await
        .expect("query audit_events")
        .into_iter()
        .map(|row| (row.entity_id.expect("a READ names its record"), row.user_id))
        .collect();
    rows.sort();
    rows
}

/// Sends a mutation for each of these ids at once; each answer must be without errors.
async fn all_at_once(app: &TestApp, token: &str, mutation: &str, ids: &[String]) {
    let requests = ids
        .iter()
        .map(|id| app.gql(Some(token), mutation, json!({ "id": id })));
    for response in futures_util::future::join_all(requests).await {
        response.data();
    }
}

fn listed_ids(body: &Value) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = body["data"]["patients"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|edge| Uuid::parse_str(&string(&edge["node"]["id"])).expect("a UUID"))
        .collect();
    ids.sort();
    ids
}

scenario!(
    a_repeated_list_is_answered_from_the_cache_and_still_audited,
    |app| async move {
        let user = app.signed_in_user().await;
        let user_id = Uuid::parse_str(&user.user_id).expect("a UUID");
        let doctor = app
            .create_doctor(
                &user.access,
                doctor_input("Gregory", "House", "Diagnostics"),
            )
            .await;
        for i in 0..3 {
            let patient = app
                .create_patient(
                    &user.access,
                    patient_input("Pat", &format!("Number{i}"), 40),
                )
                .await;
            app.assign(&user.access, &patient, &doctor).await;
        }

        let first = list(&app, &user.access).await;
        assert_eq!(first.cache.as_deref(), Some("MISS"));
        let before = app.state.sql_statement_count();
        let second = list(&app, &user.access).await;
        let statements = app.state.sql_statement_count() - before;
        assert_eq!(second.cache.as_deref(), Some("HIT"));
        assert_eq!(second.body, first.body);
        assert_eq!(second.body["data"]["patients"]["totalCount"], 3);
        assert_eq!(
            statements, 1,
            "a hit reads the stamp and nothing else (the READ rows go through the audit writer)"
        );

        // The hit wrote the same READ rows as the computed answer, under its own request and caller.
        let expected: Vec<(Uuid, Option<Uuid>)> = listed_ids(&first.body)
            .into_iter()
            .map(|id| (id, Some(user_id)))
            .collect();
        assert_eq!(expected.len(), 3);
        assert_eq!(reads_of(&app, &first.request_id).await, expected);
        assert_eq!(reads_of(&app, &second.request_id).await, expected);

        // Another page size is another request.
        let other = send(&app, &user.access, LIST, json!({ "first": 2 }), None).await;
        assert_eq!(other.cache.as_deref(), Some("MISS"));
        assert_eq!(
            other.body["data"]["patients"]["edges"]
                .as_array()
                .expect("edges")
                .len(),
            2
        );
        assert_eq!(fresh(&app, &user.access).await, first.body);
    }
);

scenario!(
    every_change_to_what_a_list_shows_is_seen_by_the_next_list,
    |app| async move {
        let owner = app.signed_in_user().await;
        let colleague = app.signed_in_user().await;
        let doctor = app
            .create_doctor(
                &colleague.access,
                doctor_input("Lisa", "Cuddy", "Endocrinology"),
            )
            .await;
        let first_patient = app
            .create_patient(&owner.access, patient_input("Anna", "First", 30))
            .await;
        app.assign(&owner.access, &first_patient, &doctor).await;

        // Each step changes what the list shows; the next list must be computed again and agree with
        // a fresh one, and the one after that may come from the cache again.
        let mut previous = list(&app, &owner.access).await.body;
        assert_eq!(
            list(&app, &owner.access).await.cache.as_deref(),
            Some("HIT")
        );
        let steps: Vec<(&str, Shows)> = vec![
            ("update a patient", |b| {
                b.to_string().contains("Anna Renamed")
            }),
            ("create a patient", |b| {
                b["data"]["patients"]["totalCount"] == 2
            }),
            ("assign a doctor", |b| {
                b.to_string().matches("Lisa Cuddy").count() == 2
            }),
            ("unassign a doctor", |b| {
                b.to_string().matches("Lisa Cuddy").count() == 1
            }),
            ("another user updates the doctor", |b| {
                b.to_string().contains("Dean of Medicine")
            }),
            ("a script changes a patient", |b| {
                b.to_string().contains("changed by a script")
            }),
            ("another user deletes the doctor", |b| {
                !b.to_string().contains("Lisa Cuddy")
            }),
            ("delete a patient", |b| {
                b["data"]["patients"]["totalCount"] == 1
            }),
        ];
        let mut second_patient = String::new();
        let mut second_mapping = String::new();
        for (step, shows) in steps {
            match step {
                "update a patient" => {
                    app.gql(
                        Some(&owner.access),
                        "mutation($id: ID!) { updatePatient(id: $id, input: { lastName: \"Renamed\" }) { id } }",
                        json!({ "id": first_patient }),
                    )
                    .await
                    .data();
                }
                "create a patient" => {
                    second_patient = app
                        .create_patient(&owner.access, patient_input("Ben", "Second", 50))
                        .await;
                }
                "assign a doctor" => {
                    second_mapping = app.assign(&owner.access, &second_patient, &doctor).await;
                }
                "unassign a doctor" => {
                    app.gql(
                        Some(&owner.access),
                        "mutation($id: ID!) { unassignDoctor(mappingId: $id) }",
                        json!({ "id": second_mapping }),
                    )
                    .await
                    .data();
                }
                "another user updates the doctor" => {
                    app.gql(
                        Some(&colleague.access),
                        "mutation($id: ID!) { updateDoctor(id: $id, input: { specialization: \"Dean of Medicine\" }) { id } }",
                        json!({ "id": doctor }),
                    )
                    .await
                    .data();
                }
                "a script changes a patient" => {
                    patient::Entity::update_many()
                        .col_expr(patient::Column::Notes, Expr::value("changed by a script"))
                        .filter(
                            patient::Column::Id
                                .eq(Uuid::parse_str(&first_patient).expect("a UUID")),
                        )
                        .exec(&app.state.db)
                        .await
                        .expect("update by SQL");
                }
                "another user deletes the doctor" => {
                    app.gql(
                        Some(&colleague.access),
                        "mutation($id: ID!) { deleteDoctor(id: $id) }",
                        json!({ "id": doctor }),
                    )
                    .await
                    .data();
                }
                "delete a patient" => {
                    app.gql(
                        Some(&owner.access),
                        "mutation($id: ID!) { deletePatient(id: $id) }",
                        json!({ "id": first_patient }),
                    )
                    .await
                    .data();
                }
                other => unreachable!("{other}"),
            }
            let after = list(&app, &owner.access).await;
            assert_eq!(after.cache.as_deref(), Some("MISS"), "after: {step}");
            assert_ne!(after.body, previous, "after: {step}");
            assert!(shows(&after.body), "after {step}: {}", after.body);
            assert_eq!(
                after.body,
                fresh(&app, &owner.access).await,
                "after: {step}"
            );
            let again = list(&app, &owner.access).await;
            assert_eq!(again.cache.as_deref(), Some("HIT"), "after: {step}");
            assert_eq!(again.body, after.body, "after: {step}");
            previous = after.body;
        }
    }
);

// One user's writes arriving together go over several connections; on PostgreSQL each session
// moves its own row of the user's tallies. Whichever rows moved, the next list is computed again,
// and its count is every row's.
scenario!(
    concurrent_writes_on_several_connections_are_all_seen,
    |app| async move {
        let owner = app.signed_in_user().await;
        let doctor = app
            .create_doctor(&owner.access, doctor_input("James", "Wilson", "Oncology"))
            .await;
        let created = futures_util::future::join_all((0..12).map(|i| {
            app.create_patient(
                &owner.access,
                patient_input("Many", &format!("Writer{i}"), 30),
            )
        }))
        .await;
        let listed = list(&app, &owner.access).await;
        assert_eq!(listed.body["data"]["patients"]["totalCount"], 12);
        assert_eq!(
            list(&app, &owner.access).await.cache.as_deref(),
            Some("HIT")
        );

        let mappings = futures_util::future::join_all(
            created
                .iter()
                .map(|patient| app.assign(&owner.access, patient, &doctor)),
        )
        .await;
        let assigned = list(&app, &owner.access).await;
        assert_eq!(assigned.cache.as_deref(), Some("MISS"));
        assert_eq!(
            assigned.body.to_string().matches("James Wilson").count(),
            12
        );
        assert_eq!(assigned.body, fresh(&app, &owner.access).await);

        all_at_once(
            &app,
            &owner.access,
            "mutation($id: ID!) { unassignDoctor(mappingId: $id) }",
            &mappings[..6],
        )
        .await;
        all_at_once(
            &app,
            &owner.access,
            "mutation($id: ID!) { deletePatient(id: $id) }",
            &created[..4],
        )
        .await;
        let changed = list(&app, &owner.access).await;
        assert_eq!(changed.cache.as_deref(), Some("MISS"));
        assert_eq!(changed.body["data"]["patients"]["totalCount"], 8);
        assert_eq!(changed.body, fresh(&app, &owner.access).await);

        if app.state.db.get_database_backend() == DbBackend::Postgres {
            let rows_moved = app
                .state
                .db
                .query_one_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT COUNT(*) FROM user_tallies WHERE user_id = $1 AND version > 0",
                    [Uuid::parse_str(&owner.user_id).expect("a UUID").into()],
                ))
                .await
                .expect("read the tallies")
                .expect("a row")
                .try_get_by_index::<i64>(0)
                .expect("a count");
            assert!(rows_moved > 1, "the writes moved {rows_moved} of the rows");
        }
    }
);

scenario!(callers_never_share_answers, |app| async move {
    let alice = app.signed_in_user().await;
    let bob = app.signed_in_user().await;
    app.create_patient(&alice.access, patient_input("Alice", "Own", 20))
        .await;
    app.create_patient(&bob.access, patient_input("Bob", "Own", 20))
        .await;
    let for_alice = list(&app, &alice.access).await;
    assert_eq!(
        list(&app, &alice.access).await.cache.as_deref(),
        Some("HIT")
    );
    let for_bob = list(&app, &bob.access).await;
    assert_eq!(for_bob.cache.as_deref(), Some("MISS"));
    assert!(for_alice.body.to_string().contains("Alice Own"));
    assert!(!for_alice.body.to_string().contains("Bob Own"));
    assert!(for_bob.body.to_string().contains("Bob Own"));
    assert!(!for_bob.body.to_string().contains("Alice Own"));
    // A change of Bob's leaves Alice's answer standing.
    app.create_patient(&bob.access, patient_input("Bob", "Second", 20))
        .await;
    assert_eq!(
        list(&app, &alice.access).await.cache.as_deref(),
        Some("HIT")
    );
    assert_eq!(list(&app, &bob.access).await.cache.as_deref(), Some("MISS"));
});

scenario!(
    answers_the_stamps_do_not_cover_are_never_kept,
    |app| async move {
        let user = app.signed_in_user().await;
        app.create_patient(&user.access, patient_input("Trail", "Grows", 33))
            .await;
        // A patient's audit trail grows with every read of it: it must be computed every time.
        let query = "{ patients { nodes { id auditTrail { totalCount } } } }";
        let first = send(&app, &user.access, query, json!({}), None).await;
        app.state.audit.flush().await;
        let second = send(&app, &user.access, query, json!({}), None).await;
        assert_eq!(first.cache, None);
        assert_eq!(second.cache, None);
        let count = |body: &Value| {
            body["data"]["patients"]["nodes"][0]["auditTrail"]["totalCount"]
                .as_i64()
                .expect("a count")
        };
        assert!(count(&second.body) > count(&first.body), "{}", second.body);
        // Nor are `me` or answers with errors (a page size out of range), however often they come.
        for query in [
            "{ me { id } }",
            "{ patients(first: 0) { totalCount } }",
            "{ me { id } }",
            "{ patients(first: 0) { totalCount } }",
        ] {
            let response = app
                .client
                .post(app.url("/graphql"))
                .bearer_auth(&user.access)
                .json(&json!({ "query": query }))
                .send()
                .await
                .expect("send");
            assert!(response.headers().get("x-cache").is_none(), "{query}");
            let _ = response.text().await;
        }
    }
);

/// The cache keeps to its budget: the oldest answers go first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_stays_within_its_budget() {
    let app = TestApp::spawn_with(TestDb::Sqlite, |config| {
        config.response_cache_bytes = 16 * 1024;
    })
    .await;
    let user = app.signed_in_user().await;
    app.create_patient(&user.access, patient_input("Only", "One", 60))
        .await;
    let query = "query($first: Int) { patients(first: $first) { totalCount nodes { id } } }";
    for first in 1..=100 {
        let answer = send(&app, &user.access, query, json!({ "first": first }), None).await;
        assert_eq!(answer.cache.as_deref(), Some("MISS"));
    }
    let newest = send(&app, &user.access, query, json!({ "first": 100 }), None).await;
    assert_eq!(newest.cache.as_deref(), Some("HIT"));
    let oldest = send(&app, &user.access, query, json!({ "first": 1 }), None).await;
    assert_eq!(oldest.cache.as_deref(), Some("MISS"), "evicted");
}

/// `RESPONSE_CACHE_BYTES=0` turns it off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_of_zero_turns_the_cache_off() {
    let app = TestApp::spawn_with(TestDb::Sqlite, |config| {
        config.response_cache_bytes = 0;
    })
    .await;
    let user = app.signed_in_user().await;
    for _ in 0..2 {
        assert_eq!(list(&app, &user.access).await.cache, None);
    }
}
