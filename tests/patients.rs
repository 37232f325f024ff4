//! Patients: create, read, partial update, delete, validation, and isolation between users.
mod common;

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use common::*;
use serde_json::{Value, json};

const FIELDS: &str =
    "id firstName lastName fullName age dateOfBirth gender address phone notes createdAt updatedAt";

async fn create(app: &TestApp, token: &str, input: Value) -> GqlResponse {
    app.gql(
        Some(token),
        &format!("mutation($input: CreatePatientInput!) {{ createPatient(input: $input) {{ {FIELDS} }} }}"),
        json!({ "input": input }),
    )
    .await
}

async fn get(app: &TestApp, token: &str, id: &str) -> GqlResponse {
    app.gql(
        Some(token),
        &format!("query($id: ID!) {{ patient(id: $id) {{ {FIELDS} }} }}"),
        json!({ "id": id }),
    )
    .await
}

async fn update(app: &TestApp, token: &str, id: &str, input: Value) -> GqlResponse {
    app.gql(
        Some(token),
        &format!("mutation($id: ID!, $input: UpdatePatientInput!) {{ updatePatient(id: $id, input: $input) {{ {FIELDS} }} }}"),
        json!({ "id": id, "input": input }),
    )
    .await
}

async fn delete(app: &TestApp, token: &str, id: &str) -> GqlResponse {
    app.gql(
        Some(token),
        "mutation($id: ID!) { deletePatient(id: $id) }",
        json!({ "id": id }),
    )
    .await
}

async fn listed_ids(app: &TestApp, token: &str) -> Vec<String> {
    let response = app
        .gql(
            Some(token),
            "{ patients(first: 100) { totalCount nodes { id } } }",
            json!({}),
        )
        .await;
    ids(&response.data()["patients"]["nodes"])
}

fn age_on(today: NaiveDate, born: NaiveDate) -> i64 {
    let birthday_passed = (today.month(), today.day()) >= (born.month(), born.day());
    i64::from(today.year() - born.year()) - i64::from(!birthday_passed)
}

fn years_before(date: NaiveDate, years: u32) -> NaiveDate {
    date.checked_sub_months(Months::new(12 * years))
        .expect("a date in range")
}

fn utc_timestamp(value: &Value) -> DateTime<Utc> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("expected a DateTime, got {value}"));
    let parsed =
        DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("not RFC 3339 ({e}): {text}"));
    assert_eq!(
        parsed.offset().local_minus_utc(),
        0,
        "DateTime is not UTC: {text}"
    );
    parsed.with_timezone(&Utc)
}

scenario!(
    a_created_patient_has_every_field_and_reads_back,
    |app| async move {
        let user = app.signed_in_user().await;
        let response = create(
            &app,
            &user.access,
            json!({
                "firstName": "Maria",
                "lastName": "Garcia",
                "dateOfBirth": "1991-04-30",
                "gender": "FEMALE",
                "address": "1 Main St",
                "phone": "+1 555 0100",
                "notes": "Allergic to penicillin",
            }),
        )
        .await;
        let patient = response.data()["createPatient"].clone();
        assert_eq!(patient["firstName"], "Maria");
        assert_eq!(patient["lastName"], "Garcia");
        assert_eq!(patient["fullName"], "Maria Garcia");
        assert_eq!(patient["dateOfBirth"], "1991-04-30");
        let born = NaiveDate::from_ymd_opt(1991, 4, 30).expect("date");
        assert_eq!(patient["age"], age_on(Utc::now().date_naive(), born));
        assert_eq!(patient["gender"], "FEMALE");
        assert_eq!(patient["address"], "1 Main St");
        assert_eq!(patient["phone"], "+1 555 0100");
        assert_eq!(patient["notes"], "Allergic to penicillin");
        let created = utc_timestamp(&patient["createdAt"]);
        assert!(utc_timestamp(&patient["updatedAt"]) >= created);

        let id = string(&patient["id"]);
        let read = get(&app, &user.access, &id).await;
        assert_eq!(read.data()["patient"], patient);
        assert_eq!(listed_ids(&app, &user.access).await, vec![id]);
    }
);

scenario!(age_is_derived_from_the_date_of_birth, |app| async move {
    let user = app.signed_in_user().await;
    let today = Utc::now().date_naive();
    let birthday_today = years_before(today, 30);
    let birthday_tomorrow = birthday_today.succ_opt().expect("date");
    let birthday_yesterday = birthday_today.pred_opt().expect("date");
    for born in [birthday_today, birthday_tomorrow, birthday_yesterday] {
        let input = json!({
            "firstName": "Born", "lastName": "Then", "gender": "OTHER", "dateOfBirth": born.to_string(),
        });
        let response = create(&app, &user.access, input).await;
        let patient = &response.data()["createPatient"];
        assert_eq!(
            patient["age"],
            age_on(today, born),
            "born {born}, today {today}"
        );
        assert_eq!(patient["dateOfBirth"], born.to_string());
    }
});

scenario!(
    a_patient_created_with_only_an_age_keeps_that_age,
    |app| async move {
        let user = app.signed_in_user().await;
        let response = create(&app, &user.access, patient_input("Only", "Age", 42)).await;
        let patient = &response.data()["createPatient"];
        assert_eq!(patient["age"], 42);
        assert!(patient["dateOfBirth"].is_null(), "{patient}");
        assert!(
            patient["address"].is_null()
                && patient["phone"].is_null()
                && patient["notes"].is_null()
        );
    }
);

scenario!(
    a_patient_without_age_or_date_of_birth_is_rejected,
    |app| async move {
        let user = app.signed_in_user().await;
        let input = json!({ "firstName": "No", "lastName": "Age", "gender": "MALE" });
        create(&app, &user.access, input)
            .await
            .assert_bad_input("age");
        assert!(listed_ids(&app, &user.access).await.is_empty());
    }
);

scenario!(
    an_age_outside_zero_to_one_hundred_fifty_is_rejected,
    |app| async move {
        let user = app.signed_in_user().await;
        for age in [151, -1, 1000] {
            create(&app, &user.access, patient_input("Bad", "Age", age))
                .await
                .assert_bad_input("age");
        }
        for age in [0, 150] {
            let response = create(&app, &user.access, patient_input("Edge", "Age", age)).await;
            assert_eq!(response.data()["createPatient"]["age"], age);
        }
        assert_eq!(listed_ids(&app, &user.access).await.len(), 2);
    }
);

scenario!(
    a_date_of_birth_in_the_future_is_rejected,
    |app| async move {
        let user = app.signed_in_user().await;
        let tomorrow = Utc::now()
            .date_naive()
            .succ_opt()
            .expect("date")
            .succ_opt()
            .expect("date");
        let input = json!({ "firstName": "Not", "lastName": "Yet", "gender": "MALE", "dateOfBirth": tomorrow.to_string() });
        create(&app, &user.access, input)
            .await
            .assert_bad_input("dateOfBirth");
    }
);

scenario!(
    an_age_inconsistent_with_the_date_of_birth_is_rejected,
    |app| async move {
        let user = app.signed_in_user().await;
        let born = years_before(Utc::now().date_naive(), 30)
            .pred_opt()
            .expect("date");
        let input = json!({ "firstName": "Two", "lastName": "Ages", "gender": "MALE", "dateOfBirth": born.to_string(), "age": 20 });
        create(&app, &user.access, input)
            .await
            .assert_bad_input("age");

        let consistent = json!({ "firstName": "Two", "lastName": "Ages", "gender": "MALE", "dateOfBirth": born.to_string(), "age": 30 });
        let response = create(&app, &user.access, consistent).await;
        assert_eq!(response.data()["createPatient"]["age"], 30);
    }
);

scenario!(gender_must_be_one_of_the_enum_values, |app| async move {
    let user = app.signed_in_user().await;
    for gender in ["male", "Male", "M", ""] {
        let input = json!({ "firstName": "Enum", "lastName": "Only", "age": 30, "gender": gender });
        let response = app
            .gql(
                Some(&user.access),
                "mutation($input: CreatePatientInput!) { createPatient(input: $input) { id } }",
                json!({ "input": input }),
            )
            .await;
        assert!(
            !response.errors().is_empty(),
            "gender {gender:?} was accepted: {}",
            response.body
        );
        assert!(
            response.body["data"].is_null() || response.body["data"]["createPatient"].is_null()
        );
    }
    assert!(listed_ids(&app, &user.access).await.is_empty());
});

scenario!(empty_names_are_rejected, |app| async move {
    let user = app.signed_in_user().await;
    create(&app, &user.access, patient_input("", "Last", 30))
        .await
        .assert_bad_input("firstName");
    create(&app, &user.access, patient_input("First", "   ", 30))
        .await
        .assert_bad_input("lastName");
    assert!(listed_ids(&app, &user.access).await.is_empty());
});

scenario!(
    updating_a_patient_leaves_omitted_fields_untouched,
    |app| async move {
        let user = app.signed_in_user().await;
        let input = json!({
            "firstName": "Jan", "lastName": "Kowalski", "age": 50, "gender": "MALE",
            "address": "Old Town 5", "phone": "123", "notes": "none",
        });
        let before = create(&app, &user.access, input).await.data()["createPatient"].clone();
        let id = string(&before["id"]);

        let response = update(
            &app,
            &user.access,
            &id,
            json!({ "lastName": "Nowak", "age": 51 }),
        )
        .await;
        let after = response.data()["updatePatient"].clone();
        assert_eq!(after["lastName"], "Nowak");
        assert_eq!(after["fullName"], "Jan Nowak");
        assert_eq!(after["age"], 51);
        for unchanged in [
            "id",
            "firstName",
            "gender",
            "address",
            "phone",
            "notes",
            "createdAt",
        ] {
            assert_eq!(after[unchanged], before[unchanged], "{unchanged} changed");
        }
        assert!(utc_timestamp(&after["updatedAt"]) >= utc_timestamp(&before["updatedAt"]));
        assert_eq!(get(&app, &user.access, &id).await.data()["patient"], after);
    }
);

scenario!(an_explicit_null_clears_optional_fields, |app| async move {
    let user = app.signed_in_user().await;
    let input = json!({
        "firstName": "Clear", "lastName": "Me", "age": 40, "gender": "FEMALE",
        "address": "Somewhere", "phone": "555", "notes": "Some notes",
    });
    let id = string(&create(&app, &user.access, input).await.data()["createPatient"]["id"]);
    let response = update(
        &app,
        &user.access,
        &id,
        json!({ "address": null, "phone": null, "notes": null }),
    )
    .await;
    let patient = &response.data()["updatePatient"];
    assert!(
        patient["address"].is_null() && patient["phone"].is_null() && patient["notes"].is_null(),
        "{patient}"
    );
    assert_eq!(patient["firstName"], "Clear");
    assert_eq!(patient["age"], 40);
    let read = get(&app, &user.access, &id).await;
    assert!(read.data()["patient"]["address"].is_null());
});

scenario!(
    a_required_field_cannot_be_cleared_or_made_invalid,
    |app| async move {
        let user = app.signed_in_user().await;
        let id = app
            .create_patient(&user.access, patient_input("Keep", "Name", 30))
            .await;
        update(&app, &user.access, &id, json!({ "firstName": null }))
            .await
            .assert_bad_input("firstName");
        update(&app, &user.access, &id, json!({ "age": 151 }))
            .await
            .assert_bad_input("age");
        let tomorrow = Utc::now()
            .date_naive()
            .succ_opt()
            .expect("date")
            .succ_opt()
            .expect("date");
        update(
            &app,
            &user.access,
            &id,
            json!({ "dateOfBirth": tomorrow.to_string() }),
        )
        .await
        .assert_bad_input("dateOfBirth");
        let patient = get(&app, &user.access, &id).await.data()["patient"].clone();
        assert_eq!(patient["firstName"], "Keep");
        assert_eq!(patient["age"], 30);
    }
);

scenario!(
    deleting_a_patient_returns_its_id_and_removes_it,
    |app| async move {
        let user = app.signed_in_user().await;
        let id = app
            .create_patient(&user.access, patient_input("Gone", "Soon", 30))
            .await;
        let kept = app
            .create_patient(&user.access, patient_input("Stays", "Here", 30))
            .await;
        assert_eq!(
            delete(&app, &user.access, &id).await.data()["deletePatient"],
            id.as_str()
        );
        assert!(get(&app, &user.access, &id).await.data()["patient"].is_null());
        assert_eq!(listed_ids(&app, &user.access).await, vec![kept]);
        delete(&app, &user.access, &id)
            .await
            .assert_code("NOT_FOUND");
    }
);

scenario!(deleting_a_patient_removes_its_mappings, |app| async move {
    let user = app.signed_in_user().await;
    let patient = app
        .create_patient(&user.access, patient_input("Mapped", "Patient", 30))
        .await;
    let doctor = app
        .create_doctor(&user.access, doctor_input("Greg", "House", "Diagnostics"))
        .await;
    app.assign(&user.access, &patient, &doctor).await;
    delete(&app, &user.access, &patient).await.data();

    let mappings = app
        .gql(
            user.token(),
            "{ mappings { totalCount nodes { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(mappings.data()["mappings"]["totalCount"], 0);
    let doctor_view = app
        .gql(
            user.token(),
            "query($id: ID!) { doctor(id: $id) { patients { id } } }",
            json!({ "id": doctor }),
        )
        .await;
    assert_eq!(doctor_view.data()["doctor"]["patients"], json!([]));
});

scenario!(patients_of_another_user_are_not_found, |app| async move {
    let owner = app.signed_in_user().await;
    let other = app.signed_in_user().await;
    let id = app
        .create_patient(&owner.access, patient_input("Private", "Person", 30))
        .await;
    let before = get(&app, &owner.access, &id).await.data()["patient"].clone();

    let read = get(&app, &other.access, &id).await;
    assert!(read.data()["patient"].is_null(), "{}", read.body);
    update(&app, &other.access, &id, json!({ "firstName": "Hacked" }))
        .await
        .assert_code("NOT_FOUND");
    delete(&app, &other.access, &id)
        .await
        .assert_code("NOT_FOUND");
    assert!(listed_ids(&app, &other.access).await.is_empty());

    assert_eq!(
        get(&app, &owner.access, &id).await.data()["patient"],
        before
    );
    assert_eq!(listed_ids(&app, &owner.access).await, vec![id]);
});

scenario!(
    a_foreign_patient_behaves_exactly_like_a_missing_one,
    |app| async move {
        let owner = app.signed_in_user().await;
        let other = app.signed_in_user().await;
        let foreign = app
            .create_patient(&owner.access, patient_input("Private", "Person", 30))
            .await;
        let missing = missing_id();

        let foreign_update = update(&app, &other.access, &foreign, json!({ "age": 31 })).await;
        let missing_update = update(&app, &other.access, &missing, json!({ "age": 31 })).await;
        assert_eq!(foreign_update.error_code(), "NOT_FOUND");
        assert_eq!(
            foreign_update.error_message(),
            missing_update.error_message()
        );
        assert_eq!(foreign_update.error_code(), missing_update.error_code());

        assert!(get(&app, &other.access, &missing).await.data()["patient"].is_null());
        delete(&app, &other.access, &missing)
            .await
            .assert_code("NOT_FOUND");
    }
);

scenario!(a_malformed_patient_id_is_bad_user_input, |app| async move {
    let user = app.signed_in_user().await;
    get(&app, &user.access, "not-a-uuid")
        .await
        .assert_code("BAD_USER_INPUT");
    update(&app, &user.access, "not-a-uuid", json!({ "age": 3 }))
        .await
        .assert_code("BAD_USER_INPUT");
    delete(&app, &user.access, "not-a-uuid")
        .await
        .assert_code("BAD_USER_INPUT");
});

scenario!(patient_operations_require_a_token, |app| async move {
    let user = app.signed_in_user().await;
    let id = app
        .create_patient(&user.access, patient_input("Needs", "Token", 30))
        .await;
    app.gql(None, "{ patients { totalCount } }", json!({}))
        .await
        .assert_code("UNAUTHENTICATED");
    app.gql(
        None,
        "query($id: ID!) { patient(id: $id) { id } }",
        json!({ "id": id }),
    )
    .await
    .assert_code("UNAUTHENTICATED");
    app.gql(
        None,
        "mutation($input: CreatePatientInput!) { createPatient(input: $input) { id } }",
        json!({ "input": patient_input("No", "Token", 30) }),
    )
    .await
    .assert_code("UNAUTHENTICATED");
    app.gql(
        None,
        "mutation($id: ID!) { updatePatient(id: $id, input: { firstName: \"Changed\" }) { id } }",
        json!({ "id": id }),
    )
    .await
    .assert_code("UNAUTHENTICATED");
    app.gql(
        None,
        "mutation($id: ID!) { deletePatient(id: $id) }",
        json!({ "id": id }),
    )
    .await
    .assert_code("UNAUTHENTICATED");
    assert_eq!(listed_ids(&app, &user.access).await, vec![id.clone()]);
    let unchanged = app
        .gql(
            user.token(),
            "query($id: ID!) { patient(id: $id) { firstName } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(unchanged.data()["patient"]["firstName"], "Needs");
});

scenario!(
    concurrent_updates_without_a_version_all_apply,
    |app| async move {
        let user = app.signed_in_user().await;
        let id = app
            .create_patient(&user.access, patient_input("Race", "Condition", 40))
            .await;
        // Without expectedVersion an update is last-writer-wins: none may fail as "changed by someone else".
        let updates = (0..16).map(|i| {
            let app = &app;
            let token = user.access.clone();
            let id = id.clone();
            async move {
                app.gql(
                    Some(&token),
                    "mutation($id: ID!, $phone: String) { updatePatient(id: $id, input: { phone: $phone }) { version } }",
                    json!({ "id": id, "phone": format!("+1-555-{i:04}") }),
                )
                .await
            }
        });
        let responses = futures_util::future::join_all(updates).await;
        for response in &responses {
            assert!(response.errors().is_empty(), "{}", response.body);
        }
        let mut versions: Vec<i64> = responses
            .iter()
            .map(|r| {
                r.data()["updatePatient"]["version"]
                    .as_i64()
                    .expect("version")
            })
            .collect();
        versions.sort_unstable();
        assert_eq!(
            versions,
            (2..18).collect::<Vec<i64>>(),
            "each update saw the one before"
        );
        // Whichever way each update went (on PostgreSQL an unlocked try, read again when overtaken,
        // then the row lock), each left exactly one audit row, and an overtaken try none.
        let trail = app
            .gql(
                Some(&user.access),
                "query($id: ID!) { patient(id: $id) { auditTrail(first: 100) { nodes { action outcome } } } }",
                json!({ "id": id }),
            )
            .await;
        let nodes = trail.data()["patient"]["auditTrail"]["nodes"]
            .as_array()
            .expect("audit rows")
            .clone();
        let count = |action: &str, outcome: &str| {
            nodes
                .iter()
                .filter(|n| n["action"] == action && n["outcome"] == outcome)
                .count()
        };
        assert_eq!(count("UPDATE", "SUCCESS"), 16, "{nodes:?}");
        assert_eq!(count("UPDATE", "FAILURE"), 0, "{nodes:?}");
        assert_eq!(count("CREATE", "SUCCESS"), 1, "{nodes:?}");
    }
);
