//! The audit trail (HIPAA 45 CFR 164.312(b)) and optimistic concurrency: every change of a patient,
//! doctor or mapping leaves exactly one row written with it, refused changes leave none (only a FAILURE),
//! patient reads are recorded with the ids returned, sign-in events are recorded, the trail is readable by
//! admins (and by a patient's owner for that patient) and cannot be changed through the API.
mod common;

use std::sync::Arc;

use common::*;
use medgraph::entities::audit_event;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};
use uuid::Uuid;

const PATIENT_FIELDS: &str = "id firstName lastName version";

const AUDIT_EVENTS: &str = "query($first: Int, $after: String, $filter: AuditEventFilter) {
  auditEvents(first: $first, after: $after, filter: $filter) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor }
    nodes { id occurredAt userId action entityType entityId outcome clientIp requestId }
  }
}";

/// A request id of our own, to find this request's audit rows.
fn request_id(label: &str) -> String {
    format!("audit-{label}-{}", Uuid::now_v7().simple())
}

fn uuid(id: &str) -> Uuid {
    Uuid::parse_str(id).unwrap_or_else(|_| panic!("not a UUID: {id}"))
}

/// POSTs a GraphQL request with `x-request-id: rid`.
async fn gql_rid(
    app: &TestApp,
    token: Option<&str>,
    rid: &str,
    query: &str,
    variables: Value,
) -> GqlResponse {
    let mut request = app
        .client
        .post(app.url("/graphql"))
        .header("x-request-id", rid)
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    GqlResponse::read(request.send().await.expect("send the GraphQL request")).await
}

/// Every audit row of one request (buffered reads flushed first), oldest first.
async fn rows_of(app: &TestApp, rid: &str) -> Vec<audit_event::Model> {
    app.state.audit.flush().await;
    audit_event::Entity::find()
        .filter(audit_event::Column::RequestId.eq(rid))
        .order_by_asc(audit_event::Column::OccurredAt)
        .order_by_asc(audit_event::Column::Id)
        .all(&app.state.db)
        .await
        .expect("query audit_events")
}

/// Every audit row about one record.
async fn rows_about(app: &TestApp, entity_type: &str, id: &str) -> Vec<audit_event::Model> {
    app.state.audit.flush().await;
    audit_event::Entity::find()
        .filter(audit_event::Column::EntityType.eq(entity_type))
        .filter(audit_event::Column::EntityId.eq(uuid(id)))
        .all(&app.state.db)
        .await
        .expect("query audit_events")
}

async fn all_rows(app: &TestApp) -> Vec<audit_event::Model> {
    app.state.audit.flush().await;
    audit_event::Entity::find()
        .all(&app.state.db)
        .await
        .expect("query audit_events")
}

fn describe(rows: &[audit_event::Model]) -> String {
    rows.iter()
        .map(|r| {
            format!(
                "{} {} {:?} {:?} user={:?} rid={:?}",
                r.action, r.outcome, r.entity_type, r.entity_id, r.user_id, r.request_id
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Asserts that the request left exactly one non-READ row, a SUCCESS with these values.
fn assert_single_change(
    rows: &[audit_event::Model],
    action: &str,
    entity_type: &str,
    entity_id: &str,
    user_id: &str,
    rid: &str,
) {
    let changes: Vec<&audit_event::Model> = rows.iter().filter(|r| r.action != "READ").collect();
    assert_eq!(
        changes.len(),
        1,
        "expected exactly one {action} {entity_type} row, got: {}",
        describe(rows)
    );
    let row = changes[0];
    assert_eq!(row.action, action, "{}", describe(rows));
    assert_eq!(row.outcome, "SUCCESS", "{}", describe(rows));
    assert_eq!(row.entity_type.as_deref(), Some(entity_type));
    assert_eq!(row.entity_id, Some(uuid(entity_id)));
    assert_eq!(row.user_id, Some(uuid(user_id)));
    assert_eq!(row.request_id.as_deref(), Some(rid));
    assert!(
        row.client_ip.as_deref().is_some_and(|ip| ip == "127.0.0.1"),
        "client ip: {:?}",
        row.client_ip
    );
}

/// Asserts the request changed nothing: no SUCCESS row other than READs, and (when `failure` is given)
/// exactly one FAILURE row with that action about that record.
fn assert_refused(rows: &[audit_event::Model], failure: Option<(&str, &str, &str)>, user_id: &str) {
    assert!(
        rows.iter()
            .all(|r| r.outcome != "SUCCESS" || r.action == "READ"),
        "a refused change left a SUCCESS row: {}",
        describe(rows)
    );
    if let Some((action, entity_type, entity_id)) = failure {
        let failures: Vec<&audit_event::Model> =
            rows.iter().filter(|r| r.outcome == "FAILURE").collect();
        assert_eq!(
            failures.len(),
            1,
            "expected one FAILURE row: {}",
            describe(rows)
        );
        assert_eq!(failures[0].action, action, "{}", describe(rows));
        assert_eq!(failures[0].entity_type.as_deref(), Some(entity_type));
        assert_eq!(failures[0].entity_id, Some(uuid(entity_id)));
        assert_eq!(failures[0].user_id, Some(uuid(user_id)));
    }
}

async fn read_patient(app: &TestApp, token: &str, id: &str) -> Value {
    let response = app
        .gql(
            Some(token),
            &format!("query($id: ID!) {{ patient(id: $id) {{ {PATIENT_FIELDS} }} }}"),
            json!({ "id": id }),
        )
        .await;
    response.data()["patient"].clone()
}

async fn update_patient(
    app: &TestApp,
    token: &str,
    id: &str,
    first_name: &str,
    expected_version: Option<i64>,
) -> GqlResponse {
    app.gql(
        Some(token),
        &format!(
            "mutation($id: ID!, $input: UpdatePatientInput!, $v: Int) {{ updatePatient(id: $id, input: $input, expectedVersion: $v) {{ {PATIENT_FIELDS} }} }}"
        ),
        json!({ "id": id, "input": { "firstName": first_name }, "v": expected_version }),
    )
    .await
}

scenario!(
    a_patient_whose_audit_row_cannot_be_stored_is_not_created,
    |app| async move {
        let user = app.signed_in_user().await;
        // The database refuses CREATE rows from here on; the patient must go with its row.
        let refuse = match app.state.db.get_database_backend() {
            sea_orm::DbBackend::Postgres => vec![
                "CREATE FUNCTION refuse_audit_row() RETURNS trigger LANGUAGE plpgsql AS
                 $$ BEGIN RAISE EXCEPTION 'audit row refused'; END $$",
                "CREATE TRIGGER refuse_create_rows BEFORE INSERT ON audit_events FOR EACH ROW
                 WHEN (NEW.action = 'CREATE') EXECUTE FUNCTION refuse_audit_row()",
            ],
            _ => vec![
                "CREATE TRIGGER refuse_create_rows BEFORE INSERT ON audit_events
                 WHEN NEW.action = 'CREATE' BEGIN SELECT RAISE(ABORT, 'audit row refused'); END",
            ],
        };
        for sql in refuse {
            app.state
                .db
                .execute_unprepared(sql)
                .await
                .expect("install the trigger");
        }

        let refused = app
            .gql(
                user.token(),
                "mutation($input: CreatePatientInput!) { createPatient(input: $input) { id } }",
                json!({ "input": patient_input("Ada", "Lovelace", 36) }),
            )
            .await;
        refused.assert_code("INTERNAL_SERVER_ERROR");
        assert!(
            !refused.error_message().contains("refused"),
            "the database's message leaked: {}",
            refused.error_message()
        );
        let stored = medgraph::entities::patient::Entity::find()
            .all(&app.state.db)
            .await
            .expect("read the patients");
        assert!(
            stored.is_empty(),
            "created without its audit row: {stored:?}"
        );
        let listed = app
            .gql(user.token(), "{ patients { totalCount } }", json!({}))
            .await;
        assert_eq!(listed.data()["patients"]["totalCount"], 0);
    }
);

scenario!(
    creating_updating_and_deleting_a_patient_each_leave_one_success_row,
    |app| async move {
        let user = app.signed_in_user().await;

        let rid = request_id("create-patient");
        let created = gql_rid(
            &app,
            user.token(),
            &rid,
            "mutation($input: CreatePatientInput!) { createPatient(input: $input) { id version } }",
            json!({ "input": patient_input("Ada", "Lovelace", 36) }),
        )
        .await;
        let id = string(&created.data()["createPatient"]["id"]);
        assert_single_change(
            &rows_of(&app, &rid).await,
            "CREATE",
            "PATIENT",
            &id,
            &user.user_id,
            &rid,
        );

        let rid = request_id("update-patient");
        gql_rid(
            &app,
            user.token(),
            &rid,
            "mutation($id: ID!) { updatePatient(id: $id, input: { lastName: \"Byron\" }) { id } }",
            json!({ "id": id }),
        )
        .await
        .data();
        assert_single_change(
            &rows_of(&app, &rid).await,
            "UPDATE",
            "PATIENT",
            &id,
            &user.user_id,
            &rid,
        );

        let rid = request_id("delete-patient");
        let deleted = gql_rid(
            &app,
            user.token(),
            &rid,
            "mutation($id: ID!) { deletePatient(id: $id) }",
            json!({ "id": id }),
        )
        .await;
        assert_eq!(deleted.data()["deletePatient"], id.as_str());
        assert_single_change(
            &rows_of(&app, &rid).await,
            "DELETE",
            "PATIENT",
            &id,
            &user.user_id,
            &rid,
        );

        // The record's whole history: one CREATE, one UPDATE, one DELETE, nothing else.
        let mut history: Vec<String> = rows_about(&app, "PATIENT", &id)
            .await
            .into_iter()
            .map(|r| format!("{} {}", r.action, r.outcome))
            .collect();
        history.sort();
        assert_eq!(
            history,
            ["CREATE SUCCESS", "DELETE SUCCESS", "UPDATE SUCCESS"]
        );
    }
);

scenario!(
    creating_updating_and_deleting_a_doctor_each_leave_one_success_row,
    |app| async move {
        let user = app.signed_in_user().await;

        let rid = request_id("create-doctor");
        let created = gql_rid(
            &app,
            user.token(),
            &rid,
            "mutation($input: CreateDoctorInput!) { createDoctor(input: $input) { id } }",
            json!({ "input": doctor_input("Gregory", "House", "Diagnostics") }),
        )
        .await;
        let id = string(&created.data()["createDoctor"]["id"]);
        assert_single_change(
            &rows_of(&app, &rid).await,
            "CREATE",
            "DOCTOR",
            &id,
            &user.user_id,
            &rid,
        );

        let rid = request_id("update-doctor");
        gql_rid(
            &app,
            user.token(),
            &rid,
            "mutation($id: ID!) { updateDoctor(id: $id, input: { specialization: \"Nephrology\" }) { id } }",
            json!({ "id": id }),
        )
        .await
        .data();
        assert_single_change(
            &rows_of(&app, &rid).await,
            "UPDATE",
            "DOCTOR",
            &id,
            &user.user_id,
            &rid,
        );

        let rid = request_id("delete-doctor");
        gql_rid(
            &app,
            user.token(),
            &rid,
            "mutation($id: ID!) { deleteDoctor(id: $id) }",
            json!({ "id": id }),
        )
        .await
        .data();
        assert_single_change(
            &rows_of(&app, &rid).await,
            "DELETE",
            "DOCTOR",
            &id,
            &user.user_id,
            &rid,
        );
    }
);

scenario!(
    assigning_and_unassigning_a_doctor_each_leave_one_success_row,
    |app| async move {
        let user = app.signed_in_user().await;
        let patient = app
            .create_patient(&user.access, patient_input("Ada", "Lovelace", 36))
            .await;
        let doctor = app
            .create_doctor(&user.access, doctor_input("James", "Wilson", "Oncology"))
            .await;

        let rid = request_id("assign");
        let assigned = gql_rid(
            &app,
            user.token(),
            &rid,
            "mutation($p: ID!, $d: ID!) { assignDoctor(patientId: $p, doctorId: $d) { id } }",
            json!({ "p": patient, "d": doctor }),
        )
        .await;
        let mapping = string(&assigned.data()["assignDoctor"]["id"]);
        assert_single_change(
            &rows_of(&app, &rid).await,
            "CREATE",
            "MAPPING",
            &mapping,
            &user.user_id,
            &rid,
        );

        let rid = request_id("unassign");
        let removed = gql_rid(
            &app,
            user.token(),
            &rid,
            "mutation($m: ID!) { unassignDoctor(mappingId: $m) }",
            json!({ "m": mapping }),
        )
        .await;
        assert_eq!(removed.data()["unassignDoctor"], mapping.as_str());
        assert_single_change(
            &rows_of(&app, &rid).await,
            "DELETE",
            "MAPPING",
            &mapping,
            &user.user_id,
            &rid,
        );
    }
);

scenario!(
    changing_or_deleting_someone_elses_patient_is_recorded_as_a_failure_and_changes_nothing,
    |app| async move {
        let owner = app.signed_in_user().await;
        let intruder = app.signed_in_user().await;
        let patient = app
            .create_patient(&owner.access, patient_input("Ada", "Lovelace", 36))
            .await;
        let before = read_patient(&app, &owner.access, &patient).await;

        let rid = request_id("foreign-update");
        gql_rid(
            &app,
            intruder.token(),
            &rid,
            "mutation($id: ID!) { updatePatient(id: $id, input: { firstName: \"Mallory\" }) { id } }",
            json!({ "id": patient }),
        )
        .await
        .assert_code("NOT_FOUND");
        assert_refused(
            &rows_of(&app, &rid).await,
            Some(("UPDATE", "PATIENT", &patient)),
            &intruder.user_id,
        );

        let rid = request_id("foreign-delete");
        gql_rid(
            &app,
            intruder.token(),
            &rid,
            "mutation($id: ID!) { deletePatient(id: $id) }",
            json!({ "id": patient }),
        )
        .await
        .assert_code("NOT_FOUND");
        assert_refused(
            &rows_of(&app, &rid).await,
            Some(("DELETE", "PATIENT", &patient)),
            &intruder.user_id,
        );

        assert_eq!(read_patient(&app, &owner.access, &patient).await, before);
    }
);

scenario!(
    changing_another_users_doctor_is_forbidden_recorded_as_a_failure_and_changes_nothing,
    |app| async move {
        let creator = app.signed_in_user().await;
        let other = app.signed_in_user().await;
        let doctor = app
            .create_doctor(
                &creator.access,
                doctor_input("Lisa", "Cuddy", "Endocrinology"),
            )
            .await;
        let query =
            "query($id: ID!) { doctor(id: $id) { id firstName lastName specialization email } }";
        let before = app
            .gql(creator.token(), query, json!({ "id": doctor }))
            .await
            .data()["doctor"]
            .clone();

        let rid = request_id("foreign-doctor-update");
        gql_rid(
            &app,
            other.token(),
            &rid,
            "mutation($id: ID!) { updateDoctor(id: $id, input: { specialization: \"Quackery\" }) { id } }",
            json!({ "id": doctor }),
        )
        .await
        .assert_code("FORBIDDEN");
        assert_refused(
            &rows_of(&app, &rid).await,
            Some(("UPDATE", "DOCTOR", &doctor)),
            &other.user_id,
        );

        let rid = request_id("foreign-doctor-delete");
        gql_rid(
            &app,
            other.token(),
            &rid,
            "mutation($id: ID!) { deleteDoctor(id: $id) }",
            json!({ "id": doctor }),
        )
        .await
        .assert_code("FORBIDDEN");
        assert_refused(
            &rows_of(&app, &rid).await,
            Some(("DELETE", "DOCTOR", &doctor)),
            &other.user_id,
        );

        let after = app
            .gql(creator.token(), query, json!({ "id": doctor }))
            .await
            .data()["doctor"]
            .clone();
        assert_eq!(after, before);
    }
);

scenario!(
    a_stale_expected_version_is_a_conflict_recorded_as_a_failure,
    |app| async move {
        let user = app.signed_in_user().await;
        let patient = app
            .create_patient(&user.access, patient_input("Ada", "Lovelace", 36))
            .await;
        update_patient(&app, &user.access, &patient, "Augusta", Some(1))
            .await
            .data();
        let before = read_patient(&app, &user.access, &patient).await;
        assert_eq!(before["version"], 2);

        let rid = request_id("stale");
        gql_rid(
            &app,
            user.token(),
            &rid,
            "mutation($id: ID!) { updatePatient(id: $id, input: { firstName: \"Stale\" }, expectedVersion: 1) { id } }",
            json!({ "id": patient }),
        )
        .await
        .assert_code("CONFLICT");
        assert_refused(
            &rows_of(&app, &rid).await,
            Some(("UPDATE", "PATIENT", &patient)),
            &user.user_id,
        );
        assert_eq!(read_patient(&app, &user.access, &patient).await, before);
    }
);

scenario!(
    a_duplicate_assignment_is_a_conflict_and_leaves_no_success_row,
    |app| async move {
        let user = app.signed_in_user().await;
        let patient = app
            .create_patient(&user.access, patient_input("Ada", "Lovelace", 36))
            .await;
        let doctor = app
            .create_doctor(&user.access, doctor_input("James", "Wilson", "Oncology"))
            .await;
        let mapping = app.assign(&user.access, &patient, &doctor).await;

        let rid = request_id("duplicate-assign");
        gql_rid(
            &app,
            user.token(),
            &rid,
            "mutation($p: ID!, $d: ID!) { assignDoctor(patientId: $p, doctorId: $d) { id } }",
            json!({ "p": patient, "d": doctor }),
        )
        .await
        .assert_code("CONFLICT");
        assert_refused(&rows_of(&app, &rid).await, None, &user.user_id);

        let mappings = app
            .gql(
                user.token(),
                "{ mappings { totalCount nodes { id } } }",
                json!({}),
            )
            .await;
        assert_eq!(mappings.data()["mappings"]["totalCount"], 1);
        assert_eq!(ids(&mappings.data()["mappings"]["nodes"]), vec![mapping]);
        // Only the first assignment was ever recorded as created.
        let mapping_creations = all_rows(&app)
            .await
            .into_iter()
            .filter(|r| {
                r.entity_type.as_deref() == Some("MAPPING")
                    && r.action == "CREATE"
                    && r.outcome == "SUCCESS"
            })
            .count();
        assert_eq!(mapping_creations, 1);
    }
);

scenario!(reading_one_patient_records_one_read_row, |app| async move {
    let user = app.signed_in_user().await;
    let patient = app
        .create_patient(&user.access, patient_input("Ada", "Lovelace", 36))
        .await;
    let rid = request_id("read-one");
    let response = gql_rid(
        &app,
        user.token(),
        &rid,
        "query($id: ID!) { patient(id: $id) { id firstName } }",
        json!({ "id": patient }),
    )
    .await;
    assert_eq!(response.data()["patient"]["id"], patient.as_str());
    let rows = rows_of(&app, &rid).await;
    assert_eq!(rows.len(), 1, "{}", describe(&rows));
    assert_eq!(rows[0].action, "READ");
    assert_eq!(rows[0].outcome, "SUCCESS");
    assert_eq!(rows[0].entity_type.as_deref(), Some("PATIENT"));
    assert_eq!(rows[0].entity_id, Some(uuid(&patient)));
    assert_eq!(rows[0].user_id, Some(uuid(&user.user_id)));
});

scenario!(
    a_patients_page_records_a_read_for_exactly_the_patients_returned,
    |app| async move {
        let user = app.signed_in_user().await;
        let mut all = Vec::new();
        for n in 0..5 {
            all.push(
                app.create_patient(
                    &user.access,
                    patient_input("Pat", &format!("Number{n}"), 40),
                )
                .await,
            );
        }
        let rid = request_id("read-page");
        let response = gql_rid(
            &app,
            user.token(),
            &rid,
            "{ patients(first: 3) { nodes { id } } }",
            json!({}),
        )
        .await;
        let mut returned = ids(&response.data()["patients"]["nodes"]);
        assert_eq!(returned.len(), 3);
        let rows = rows_of(&app, &rid).await;
        assert!(
            rows.iter().all(|r| r.action == "READ"
                && r.entity_type.as_deref() == Some("PATIENT")
                && r.user_id == Some(uuid(&user.user_id))),
            "{}",
            describe(&rows)
        );
        let mut read: Vec<String> = rows
            .iter()
            .filter_map(|r| r.entity_id.map(|id| id.to_string()))
            .collect();
        read.sort();
        returned.sort();
        assert_eq!(
            read, returned,
            "READ rows must list exactly the ids returned"
        );
        let not_returned: Vec<&String> = all.iter().filter(|id| !returned.contains(id)).collect();
        assert_eq!(not_returned.len(), 2);
    }
);

scenario!(
    patients_read_through_a_doctor_or_a_mapping_are_recorded,
    |app| async move {
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
        app.assign(&user.access, &second, &doctor).await;

        let rid = request_id("doctor-patients");
        let response = gql_rid(
            &app,
            user.token(),
            &rid,
            "query($id: ID!) { doctor(id: $id) { patients { id } } }",
            json!({ "id": doctor }),
        )
        .await;
        let mut returned = ids(&response.data()["doctor"]["patients"]);
        returned.sort();
        let mut read: Vec<String> = rows_of(&app, &rid)
            .await
            .iter()
            .filter(|r| r.action == "READ" && r.entity_type.as_deref() == Some("PATIENT"))
            .filter_map(|r| r.entity_id.map(|id| id.to_string()))
            .collect();
        read.sort();
        let mut expected = vec![first.clone(), second.clone()];
        expected.sort();
        assert_eq!(returned, expected);
        assert_eq!(read, expected, "Doctor.patients reads are recorded");

        let rid = request_id("mapping-patient");
        let response = gql_rid(
            &app,
            user.token(),
            &rid,
            "{ mappings { nodes { patient { id } } } }",
            json!({}),
        )
        .await;
        let nodes = response.data()["mappings"]["nodes"]
            .as_array()
            .expect("nodes")
            .clone();
        let mut returned: Vec<String> = nodes.iter().map(|n| string(&n["patient"]["id"])).collect();
        returned.sort();
        assert_eq!(returned, expected);
        let mut read: Vec<String> = rows_of(&app, &rid)
            .await
            .iter()
            .filter(|r| r.action == "READ" && r.entity_type.as_deref() == Some("PATIENT"))
            .filter_map(|r| r.entity_id.map(|id| id.to_string()))
            .collect();
        read.sort();
        assert_eq!(read, expected, "Mapping.patient reads are recorded");
    }
);

scenario!(
    a_missing_or_foreign_patient_read_records_nothing,
    |app| async move {
        let owner = app.signed_in_user().await;
        let other = app.signed_in_user().await;
        let patient = app
            .create_patient(&owner.access, patient_input("Ada", "Lovelace", 36))
            .await;
        for (label, id) in [("foreign", patient.clone()), ("missing", missing_id())] {
            let rid = request_id(label);
            let response = gql_rid(
                &app,
                other.token(),
                &rid,
                "query($id: ID!) { patient(id: $id) { id firstName } }",
                json!({ "id": id }),
            )
            .await;
            assert!(response.data()["patient"].is_null(), "{}", response.body);
            let rows = rows_of(&app, &rid).await;
            assert!(rows.is_empty(), "{label}: {}", describe(&rows));
        }
        // The patient was never read by anyone but its creator's create.
        let reads = rows_about(&app, "PATIENT", &patient)
            .await
            .into_iter()
            .filter(|r| r.action == "READ")
            .count();
        assert_eq!(reads, 0);
    }
);

const REFRESH: &str =
    "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken } }";

scenario!(sign_in_and_token_events_are_recorded, |app| async move {
    let email = unique_email("audited");
    let rid = request_id("register");
    let registered = gql_rid(
        &app,
        None,
        &rid,
        &format!(
            "mutation($input: RegisterInput!) {{ register(input: $input) {{ {AUTH_PAYLOAD} }} }}"
        ),
        json!({ "input": { "name": "Audited User", "email": email, "password": PASSWORD } }),
    )
    .await;
    let payload = registered.data()["register"].clone();
    let user_id = string(&payload["user"]["id"]);
    let first_refresh = string(&payload["refreshToken"]);
    let rows = rows_of(&app, &rid).await;
    let mut actions: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.action.clone(), r.outcome.clone()))
        .collect();
    actions.sort();
    assert_eq!(
        actions,
        [
            ("CREATE".to_owned(), "SUCCESS".to_owned()),
            ("LOGIN".to_owned(), "SUCCESS".to_owned())
        ],
        "{}",
        describe(&rows)
    );
    for row in &rows {
        assert_eq!(row.entity_type.as_deref(), Some("USER"));
        assert_eq!(row.entity_id, Some(uuid(&user_id)));
        assert_eq!(row.user_id, Some(uuid(&user_id)));
    }

    let login =
        format!("mutation($input: LoginInput!) {{ login(input: $input) {{ {AUTH_PAYLOAD} }} }}");
    let rid = request_id("wrong-password");
    gql_rid(
        &app,
        None,
        &rid,
        &login,
        json!({ "input": { "email": email, "password": "definitely not the password" } }),
    )
    .await
    .assert_code("UNAUTHENTICATED");
    let rows = rows_of(&app, &rid).await;
    assert_eq!(rows.len(), 1, "{}", describe(&rows));
    assert_eq!(rows[0].action, "LOGIN_FAILED");
    assert_eq!(rows[0].outcome, "FAILURE");
    assert_eq!(rows[0].user_id, Some(uuid(&user_id)));

    let rid = request_id("unknown-email");
    gql_rid(
        &app,
        None,
        &rid,
        &login,
        json!({ "input": { "email": unique_email("nobody"), "password": PASSWORD } }),
    )
    .await
    .assert_code("UNAUTHENTICATED");
    let rows = rows_of(&app, &rid).await;
    assert_eq!(rows.len(), 1, "{}", describe(&rows));
    assert_eq!(rows[0].action, "LOGIN_FAILED");
    assert_eq!(rows[0].outcome, "FAILURE");

    let rid = request_id("login");
    gql_rid(
        &app,
        None,
        &rid,
        &login,
        json!({ "input": { "email": email, "password": PASSWORD } }),
    )
    .await
    .data();
    let rows = rows_of(&app, &rid).await;
    assert_eq!(rows.len(), 1, "{}", describe(&rows));
    assert_eq!(rows[0].action, "LOGIN");
    assert_eq!(rows[0].outcome, "SUCCESS");
    assert_eq!(rows[0].user_id, Some(uuid(&user_id)));

    let rid = request_id("refresh");
    let refreshed = gql_rid(&app, None, &rid, REFRESH, json!({ "t": first_refresh })).await;
    let second_refresh = string(&refreshed.data()["refreshToken"]["refreshToken"]);
    let rows = rows_of(&app, &rid).await;
    assert_eq!(rows.len(), 1, "{}", describe(&rows));
    assert_eq!(rows[0].action, "TOKEN_REFRESH");
    assert_eq!(rows[0].outcome, "SUCCESS");
    assert_eq!(rows[0].user_id, Some(uuid(&user_id)));

    let rid = request_id("reuse");
    gql_rid(&app, None, &rid, REFRESH, json!({ "t": first_refresh }))
        .await
        .assert_code("UNAUTHENTICATED");
    let rows = rows_of(&app, &rid).await;
    assert_eq!(rows.len(), 1, "{}", describe(&rows));
    assert_eq!(rows[0].action, "TOKEN_REUSE");
    assert_eq!(rows[0].outcome, "FAILURE");
    assert_eq!(rows[0].user_id, Some(uuid(&user_id)));
    // The reuse revoked the family, so the second token is gone too: sign in again to log out.
    gql_rid(
        &app,
        None,
        &request_id("after-reuse"),
        REFRESH,
        json!({ "t": second_refresh }),
    )
    .await
    .assert_code("UNAUTHENTICATED");

    let session = app.login(&email, PASSWORD).await;
    let rid = request_id("logout");
    let logout = gql_rid(
        &app,
        None,
        &rid,
        "mutation($t: String!) { logout(refreshToken: $t) }",
        json!({ "t": session.refresh }),
    )
    .await;
    assert_eq!(logout.data()["logout"], true);
    let rows = rows_of(&app, &rid).await;
    assert_eq!(rows.len(), 1, "{}", describe(&rows));
    assert_eq!(rows[0].action, "LOGOUT");
    assert_eq!(rows[0].outcome, "SUCCESS");
    assert_eq!(rows[0].user_id, Some(uuid(&user_id)));
});

scenario!(the_audit_log_is_forbidden_to_non_admins, |app| async move {
    let user = app.signed_in_user().await;
    app.gql(user.token(), AUDIT_EVENTS, json!({}))
        .await
        .assert_code("FORBIDDEN");
    app.gql(None, AUDIT_EVENTS, json!({}))
        .await
        .assert_code("UNAUTHENTICATED");
});

/// Every event matching `filter`, walking pages of `page_size` with the end cursors.
async fn walk_audit_events(
    app: &TestApp,
    token: &str,
    filter: Value,
    page_size: i64,
) -> (Vec<Value>, i64) {
    let mut after: Option<String> = None;
    let mut events = Vec::new();
    let mut total = None;
    for _ in 0..200 {
        let response = app
            .gql(
                Some(token),
                AUDIT_EVENTS,
                json!({ "first": page_size, "after": after, "filter": filter }),
            )
            .await;
        let page = response.data()["auditEvents"].clone();
        let nodes = page["nodes"].as_array().expect("nodes").clone();
        assert!(nodes.len() as i64 <= page_size);
        assert_eq!(page["pageInfo"]["hasPreviousPage"], after.is_some());
        total.get_or_insert(page["totalCount"].as_i64().expect("totalCount"));
        events.extend(nodes);
        if page["pageInfo"]["hasNextPage"] != true {
            return (events, total.unwrap_or_default());
        }
        after = Some(string(&page["pageInfo"]["endCursor"]));
    }
    panic!("auditEvents paging did not end");
}

scenario!(
    an_admin_reads_filters_and_pages_the_audit_log,
    |app| async move {
        let user = app.signed_in_user().await;
        let admin_account = app.signed_in_user().await;
        let admin = app.make_admin(&admin_account.email).await;
        let patient = app
            .create_patient(&user.access, patient_input("Ada", "Lovelace", 36))
            .await;
        let other_patient = app
            .create_patient(&user.access, patient_input("Alan", "Turing", 41))
            .await;
        update_patient(&app, &user.access, &patient, "Augusta", None)
            .await
            .data();
        read_patient(&app, &user.access, &patient).await;
        app.state.audit.flush().await;

        // Unfiltered: the admin sees everything, newest first.
        let everything = all_rows(&app).await;
        let (events, total) = walk_audit_events(&app, &admin.access, Value::Null, 7).await;
        assert_eq!(everything.len(), 9, "{}", describe(&everything));
        assert_eq!(total as usize, everything.len());
        assert_eq!(events.len(), everything.len(), "pages cover every event");
        let mut seen: Vec<String> = events.iter().map(|e| string(&e["id"])).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), events.len(), "no event appears on two pages");
        let mut newest_first = everything.clone();
        newest_first.sort_by_key(|r| std::cmp::Reverse((r.occurred_at, r.id)));
        let expected_order: Vec<String> = newest_first.iter().map(|r| r.id.to_string()).collect();
        let got_order: Vec<String> = events.iter().map(|e| string(&e["id"])).collect();
        assert_eq!(got_order, expected_order, "newest first, ties by id");

        // By action.
        let (creates, total) =
            walk_audit_events(&app, &admin.access, json!({ "action": "CREATE" }), 100).await;
        assert!(creates.iter().all(|e| e["action"] == "CREATE"));
        let expected = everything.iter().filter(|r| r.action == "CREATE").count();
        assert_eq!(creates.len(), expected);
        assert_eq!(total as usize, expected);
        assert!(
            creates
                .iter()
                .any(|e| e["entityId"] == patient.as_str() && e["entityType"] == "PATIENT")
        );

        // By record.
        let (about, _) = walk_audit_events(
            &app,
            &admin.access,
            json!({ "entityType": "PATIENT", "entityId": patient }),
            100,
        )
        .await;
        assert!(
            about
                .iter()
                .all(|e| e["entityType"] == "PATIENT" && e["entityId"] == patient.as_str()),
            "{about:?}"
        );
        let mut actions: Vec<String> = about.iter().map(|e| string(&e["action"])).collect();
        actions.sort();
        assert_eq!(actions, ["CREATE", "READ", "UPDATE"]);
        assert!(
            about
                .iter()
                .all(|e| e["userId"] == user.user_id.as_str() && e["outcome"] == "SUCCESS")
        );
        assert!(
            about
                .iter()
                .all(|e| e["entityId"] != other_patient.as_str())
        );

        // By account.
        let (mine, _) =
            walk_audit_events(&app, &admin.access, json!({ "userId": user.user_id }), 100).await;
        let expected = everything
            .iter()
            .filter(|r| r.user_id == Some(uuid(&user.user_id)))
            .count();
        assert_eq!(mine.len(), expected);
        assert!(mine.iter().all(|e| e["userId"] == user.user_id.as_str()));

        // An entityId needs its entityType.
        app.gql(
            admin.token(),
            AUDIT_EVENTS,
            json!({ "filter": { "entityId": patient } }),
        )
        .await
        .assert_bad_input("entityType");
    }
);

scenario!(
    a_patients_owner_sees_that_patients_trail_only,
    |app| async move {
        let owner = app.signed_in_user().await;
        let other = app.signed_in_user().await;
        let patient = app
            .create_patient(&owner.access, patient_input("Ada", "Lovelace", 36))
            .await;
        let other_patient = app
            .create_patient(&owner.access, patient_input("Alan", "Turing", 41))
            .await;
        update_patient(&app, &owner.access, &patient, "Augusta", None)
            .await
            .data();
        update_patient(&app, &owner.access, &other_patient, "Alonzo", None)
            .await
            .data();
        app.state.audit.flush().await;

        let query = "query($id: ID!) { patient(id: $id) { auditTrail(first: 100) { totalCount nodes { action entityType entityId userId outcome } } } }";
        let response = app
            .gql(owner.token(), query, json!({ "id": patient }))
            .await;
        let trail = response.data()["patient"]["auditTrail"].clone();
        let nodes = trail["nodes"].as_array().expect("nodes").clone();
        assert!(
            nodes
                .iter()
                .all(|e| e["entityType"] == "PATIENT" && e["entityId"] == patient.as_str()),
            "{trail}"
        );
        let actions: Vec<String> = nodes.iter().map(|e| string(&e["action"])).collect();
        assert!(actions.contains(&"CREATE".to_owned()), "{trail}");
        assert!(actions.contains(&"UPDATE".to_owned()), "{trail}");
        assert!(
            trail["totalCount"].as_i64().expect("totalCount") >= 2,
            "{trail}"
        );

        // Another user cannot reach the patient, so not its trail either.
        let response = app
            .gql(other.token(), query, json!({ "id": patient }))
            .await;
        assert!(response.data()["patient"].is_null(), "{}", response.body);
    }
);

scenario!(
    no_mutation_can_change_or_delete_audit_rows,
    |app| async move {
        let user = app.signed_in_user().await;
        let response = app
            .gql(
                user.token(),
                "{ __schema { mutationType { fields { name } } } }",
                json!({}),
            )
            .await;
        let fields = response.data()["__schema"]["mutationType"]["fields"]
            .as_array()
            .expect("mutation fields")
            .clone();
        assert!(!fields.is_empty());
        for field in &fields {
            let name = string(&field["name"]).to_lowercase();
            assert!(
                !name.contains("audit"),
                "mutation {name} touches the audit trail"
            );
        }

        // The committed schema says the same.
        let sdl = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
            .expect("read schema.graphql");
        let mutation = sdl
            .split("type Mutation {")
            .nth(1)
            .and_then(|rest| rest.split("\n}").next())
            .expect("schema.graphql has a Mutation type");
        let names: Vec<&str> = mutation
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('"'))
            .filter_map(|line| line.split('(').next())
            .filter_map(|head| head.split(':').next())
            .map(str::trim)
            .filter(|name| {
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
            .collect();
        assert!(names.contains(&"createPatient"), "{names:?}");
        assert!(
            names
                .iter()
                .all(|name| !name.to_lowercase().contains("audit")),
            "{names:?}"
        );
    }
);

scenario!(
    patient_versions_start_at_one_and_increase_with_each_update,
    |app| async move {
        let user = app.signed_in_user().await;
        let created = app
            .gql(
                user.token(),
                "mutation($input: CreatePatientInput!) { createPatient(input: $input) { id version } }",
                json!({ "input": patient_input("Ada", "Lovelace", 36) }),
            )
            .await;
        assert_eq!(created.data()["createPatient"]["version"], 1);
        let id = string(&created.data()["createPatient"]["id"]);

        let updated = update_patient(&app, &user.access, &id, "Augusta", Some(1)).await;
        assert_eq!(updated.data()["updatePatient"]["version"], 2);
        let updated = update_patient(&app, &user.access, &id, "Ada", None).await;
        assert_eq!(updated.data()["updatePatient"]["version"], 3);
        let updated = update_patient(&app, &user.access, &id, "Countess", Some(3)).await;
        assert_eq!(updated.data()["updatePatient"]["version"], 4);
        assert_eq!(updated.data()["updatePatient"]["firstName"], "Countess");

        for stale in [1, 3, 5, -1] {
            update_patient(&app, &user.access, &id, "Overwritten", Some(stale))
                .await
                .assert_code("CONFLICT");
        }
        let now = read_patient(&app, &user.access, &id).await;
        assert_eq!(now["version"], 4);
        assert_eq!(now["firstName"], "Countess");
    }
);

scenario!(
    of_two_concurrent_updates_with_the_same_expected_version_exactly_one_wins,
    |app| async move {
        let user = app.signed_in_user().await;
        let app = Arc::new(app);
        for round in 0..5 {
            let id = app
                .create_patient(
                    &user.access,
                    patient_input("Ada", &format!("Round{round}"), 36),
                )
                .await;
            let barrier = Arc::new(tokio::sync::Barrier::new(2));
            let mut tasks = tokio::task::JoinSet::new();
            for contender in ["Left", "Right"] {
                let app = Arc::clone(&app);
                let barrier = Arc::clone(&barrier);
                let token = user.access.clone();
                let id = id.clone();
                tasks.spawn(async move {
                    barrier.wait().await;
                    let response = update_patient(&app, &token, &id, contender, Some(1)).await;
                    (contender, response)
                });
            }
            let results = tasks.join_all().await;
            let winners: Vec<&str> = results
                .iter()
                .filter(|(_, r)| r.errors().is_empty())
                .map(|(name, _)| *name)
                .collect();
            assert_eq!(winners.len(), 1, "round {round}: {results:?}");
            for (_, response) in results.iter().filter(|(_, r)| !r.errors().is_empty()) {
                response.assert_code("CONFLICT");
            }
            let now = read_patient(&app, &user.access, &id).await;
            assert_eq!(now["version"], 2, "round {round}");
            assert_eq!(now["firstName"], winners[0], "round {round}");

            // One UPDATE SUCCESS and one UPDATE FAILURE were recorded.
            let mut updates: Vec<String> = rows_about(&app, "PATIENT", &id)
                .await
                .into_iter()
                .filter(|r| r.action == "UPDATE")
                .map(|r| r.outcome)
                .collect();
            updates.sort();
            assert_eq!(updates, ["FAILURE", "SUCCESS"], "round {round}");
        }
    }
);

scenario!(
    an_unusable_request_id_is_replaced_and_the_change_keeps_its_audit_row,
    |app| async move {
        let user = app.signed_in_user().await;
        // Longer than the audit column, and with characters that do not belong in a log line.
        for sent in ["r".repeat(200), "bad id\twith spaces".to_owned()] {
            let response = app
                .client
                .post(app.url("/graphql"))
                .bearer_auth(&user.access)
                .header("x-request-id", &sent)
                .json(&json!({
                    "query": "mutation($input: CreatePatientInput!) { createPatient(input: $input) { id } }",
                    "variables": { "input": patient_input("Long", "Header", 40) },
                }))
                .send()
                .await
                .expect("send");
            let echoed = response
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .expect("a request id in the response");
            assert_ne!(echoed, sent);
            assert!(
                echoed.len() <= medgraph::app::MAX_REQUEST_ID_LEN,
                "{echoed}"
            );
            let created = GqlResponse::read(response).await;
            let id = string(&created.data()["createPatient"]["id"]);
            assert_single_change(
                &rows_of(&app, &echoed).await,
                "CREATE",
                "PATIENT",
                &id,
                &user.user_id,
                &echoed,
            );
        }
    }
);

// More rows than the writer takes in one round (1,000), from concurrent lists, written several
// statements at a time on PostgreSQL: each list's rows are all there, once.
scenario!(
    a_backlog_of_reads_is_stored_whole_and_once,
    |app| async move {
        let user = app.signed_in_user().await;
        let mut ids = Vec::new();
        for n in 0..20 {
            ids.push(
                app.create_patient(&user.access, patient_input("Backlog", &format!("P{n}"), 40))
                    .await,
            );
        }
        let app = Arc::new(app);
        let lists = 75;
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..lists {
            let app = Arc::clone(&app);
            let token = user.access.clone();
            tasks.spawn(async move {
                let rid = request_id(&format!("backlog-{n}"));
                let list = app
                    .client
                    .post(app.url("/graphql"))
                    .header("x-request-id", &rid)
                    .header("cache-control", "no-cache")
                    .bearer_auth(&token)
                    .json(&json!({ "query": "{ patients(first: 20) { nodes { id } } }" }))
                    .send()
                    .await
                    .expect("send the list");
                let list = GqlResponse::read(list).await;
                assert_eq!(
                    list.data()["patients"]["nodes"].as_array().map(Vec::len),
                    Some(20)
                );
                rid
            });
        }
        let rids = tasks.join_all().await;
        let mut expected: Vec<Uuid> = ids.iter().map(|id| uuid(id)).collect();
        expected.sort();
        for rid in &rids {
            let rows = rows_of(&app, rid).await;
            let mut read: Vec<Uuid> = rows
                .iter()
                .filter(|r| r.action == "READ" && r.entity_type.as_deref() == Some("PATIENT"))
                .filter_map(|r| r.entity_id)
                .collect();
            read.sort();
            assert_eq!(read, expected, "{rid}: {}", describe(&rows));
        }
        let reads = all_rows(&app)
            .await
            .into_iter()
            .filter(|r| r.action == "READ")
            .count();
        assert_eq!(reads, lists * 20);
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffered_reads_wait_out_a_database_that_refuses_them_for_seconds() {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    if postgres_admin_url().is_none() {
        eprintln!("skipping: TEST_DATABASE_URL not set");
        return;
    }
    // Each blocked insert is cancelled after 300 ms; the table stays locked for 8 s, well past the
    // 5 retries (about 5 s) after which the writer once dropped the rows.
    let app = TestApp::spawn_with(TestDb::Postgres, |c| {
        c.limits.statement_timeout = std::time::Duration::from_millis(300);
    })
    .await;
    let user = app.signed_in_user().await;
    let id = app
        .create_patient(&user.access, patient_input("Read", "During", 30))
        .await;

    let db = app.state.db.clone();
    let (locked_tx, locked_rx) = tokio::sync::oneshot::channel();
    let holder = tokio::spawn(async move {
        let txn = db.begin().await.expect("begin");
        txn.execute_unprepared("LOCK TABLE audit_events IN ACCESS EXCLUSIVE MODE")
            .await
            .expect("lock audit_events");
        let _ = locked_tx.send(());
        tokio::time::sleep(std::time::Duration::from_secs(8)).await;
        txn.rollback().await.expect("release");
    });
    locked_rx.await.expect("locked");

    let rid = request_id("read-during-outage");
    let read = gql_rid(
        &app,
        user.token(),
        &rid,
        "query($id: ID!) { patient(id: $id) { id } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(read.data()["patient"]["id"], id.as_str());
    holder.await.expect("lock holder");

    let rows = rows_of(&app, &rid).await;
    assert_eq!(
        rows.iter()
            .filter(|r| r.action == "READ" && r.entity_id == Some(uuid(&id)))
            .count(),
        1,
        "the read is in the trail once the database takes it: {}",
        describe(&rows)
    );
}
