//! `Patient.doctors` and `Doctor.patients` are batched: a list costs the same number of SQL statements
//! whatever its page size.
mod common;

use common::*;
use serde_json::{Value, json};

/// Runs the query (computed, not answered by the response cache) and returns its data and the
/// number of SQL statements it caused.
async fn counted(app: &TestApp, token: &str, query: &str, variables: Value) -> (Value, u64) {
    let before = app.state.sql_statement_count();
    let response = app.gql_fresh(Some(token), query, variables).await;
    let after = app.state.sql_statement_count();
    (response.data().clone(), after - before)
}

scenario!(
    listing_patients_with_their_doctors_runs_a_constant_number_of_statements,
    |app| async move {
        let user = app.signed_in_user().await;
        let mut doctors = Vec::new();
        for i in 0..4 {
            doctors.push(
                app.create_doctor(
                    &user.access,
                    doctor_input("Doc", &format!("Number{i}"), "Cardiology"),
                )
                .await,
            );
        }
        for i in 0..20 {
            let patient = app
                .create_patient(
                    &user.access,
                    patient_input("Pat", &format!("Number{i:02}"), 30),
                )
                .await;
            app.assign(&user.access, &patient, &doctors[i % 4]).await;
            app.assign(&user.access, &patient, &doctors[(i + 1) % 4])
                .await;
        }

        let query = "query($first: Int) { patients(first: $first) { totalCount nodes { id doctors { id } } } }";
        let (twenty, statements_for_twenty) =
            counted(&app, &user.access, query, json!({ "first": 20 })).await;
        let (five, statements_for_five) =
            counted(&app, &user.access, query, json!({ "first": 5 })).await;
        // Batching must not depend on luck with timing: every repetition costs the same.
        for _ in 0..20 {
            let (_, again) = counted(&app, &user.access, query, json!({ "first": 20 })).await;
            assert_eq!(
                again, statements_for_twenty,
                "statement count varies between requests"
            );
        }

        let nodes = twenty["patients"]["nodes"].as_array().expect("nodes");
        assert_eq!(nodes.len(), 20);
        assert!(
            nodes
                .iter()
                .all(|patient| ids(&patient["doctors"]).len() == 2),
            "{twenty}"
        );
        assert_eq!(
            five["patients"]["nodes"].as_array().expect("nodes").len(),
            5
        );

        assert_eq!(
            statements_for_twenty, statements_for_five,
            "statement count depends on the page size"
        );
        assert!(
            statements_for_twenty <= 4,
            "{statements_for_twenty} statements for one page"
        );
        assert!(
            statements_for_twenty > 0,
            "the statement counter does not count"
        );
    }
);

scenario!(
    listing_doctors_with_their_patients_runs_a_constant_number_of_statements,
    |app| async move {
        let user = app.signed_in_user().await;
        let mut patients = Vec::new();
        for i in 0..4 {
            patients.push(
                app.create_patient(
                    &user.access,
                    patient_input("Pat", &format!("Number{i}"), 30),
                )
                .await,
            );
        }
        for i in 0..20 {
            let doctor = app
                .create_doctor(
                    &user.access,
                    doctor_input("Doc", &format!("Number{i:02}"), "Cardiology"),
                )
                .await;
            app.assign(&user.access, &patients[i % 4], &doctor).await;
            app.assign(&user.access, &patients[(i + 1) % 4], &doctor)
                .await;
        }
        // Another user's assignments to the same doctors must not show up (nor change the count).
        let other = app.signed_in_user().await;
        let foreign = app
            .create_patient(&other.access, patient_input("Foreign", "Patient", 30))
            .await;
        let listed = app
            .gql(
                other.token(),
                "{ doctors(first: 3) { nodes { id } } }",
                json!({}),
            )
            .await;
        for doctor in ids(&listed.data()["doctors"]["nodes"]) {
            app.assign(&other.access, &foreign, &doctor).await;
        }

        let query = "query($first: Int) { doctors(first: $first) { totalCount nodes { id patients { id } } } }";
        let (twenty, statements_for_twenty) =
            counted(&app, &user.access, query, json!({ "first": 20 })).await;
        let (five, statements_for_five) =
            counted(&app, &user.access, query, json!({ "first": 5 })).await;
        // Batching must not depend on luck with timing: every repetition costs the same.
        for _ in 0..20 {
            let (_, again) = counted(&app, &user.access, query, json!({ "first": 20 })).await;
            assert_eq!(
                again, statements_for_twenty,
                "statement count varies between requests"
            );
        }

        let nodes = twenty["doctors"]["nodes"].as_array().expect("nodes");
        assert_eq!(nodes.len(), 20);
        assert!(
            nodes
                .iter()
                .all(|doctor| ids(&doctor["patients"]).len() == 2),
            "{twenty}"
        );
        assert!(
            !nodes
                .iter()
                .any(|doctor| ids(&doctor["patients"]).contains(&foreign))
        );
        assert_eq!(five["doctors"]["nodes"].as_array().expect("nodes").len(), 5);

        assert_eq!(
            statements_for_twenty, statements_for_five,
            "statement count depends on the page size"
        );
        assert!(
            statements_for_twenty <= 4,
            "{statements_for_twenty} statements for one page"
        );
        assert!(
            statements_for_twenty > 0,
            "the statement counter does not count"
        );
    }
);

scenario!(
    listing_mappings_with_both_records_runs_a_constant_number_of_statements,
    |app| async move {
        let user = app.signed_in_user().await;
        let mut doctors = Vec::new();
        for i in 0..3 {
            doctors.push(
                app.create_doctor(
                    &user.access,
                    doctor_input("Map", &format!("Doc{i}"), "Cardiology"),
                )
                .await,
            );
        }
        for i in 0..20 {
            let patient = app
                .create_patient(
                    &user.access,
                    patient_input("Map", &format!("Patient{i:02}"), 40),
                )
                .await;
            app.assign(&user.access, &patient, &doctors[i % 3]).await;
        }

        // Two loaders (patient and doctor) start batches in the same pass: the case most open to races.
        let query = "query($first: Int) { mappings(first: $first) { totalCount \
                     nodes { id patient { id } doctor { id } } } }";
        let (twenty, statements) = counted(&app, &user.access, query, json!({ "first": 20 })).await;
        let nodes = twenty["mappings"]["nodes"].as_array().expect("nodes");
        assert_eq!(nodes.len(), 20);
        assert!(
            nodes
                .iter()
                .all(|m| m["patient"]["id"].is_string() && m["doctor"]["id"].is_string()),
            "{twenty}"
        );
        for _ in 0..20 {
            let (_, again) = counted(&app, &user.access, query, json!({ "first": 20 })).await;
            assert_eq!(again, statements, "statement count varies between requests");
        }
        let (_, for_five) = counted(&app, &user.access, query, json!({ "first": 5 })).await;
        assert_eq!(
            for_five, statements,
            "statement count depends on the page size"
        );
        assert!(statements <= 4, "{statements} statements for one page");
    }
);
