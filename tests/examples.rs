//! The operations in examples/ run, in order, as the whole flow a client goes through, against the real
//! server — so every example is valid against the schema and does what the README says.

mod common;
use common::scenario;

use serde_json::{Value, json};

fn example(name: &str) -> String {
    let path = format!("{}/examples/{name}.graphql", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// Every .graphql file in examples/ (the flow below must use each of them).
fn all_examples() -> Vec<String> {
    let dir = format!("{}/examples", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {dir}: {e}"))
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".graphql").map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

scenario!(
    the_example_operations_run_the_whole_flow,
    |app| async move {
        let mut used = Vec::new();
        let mut run = |name: &'static str| {
            used.push(name.to_owned());
            example(name)
        };
        let email = common::unique_email("example");
        let password = "correct horse battery staple";

        let registered = app
            .gql(
                None,
                &run("01-register"),
                json!({"input": {"name": "Dr. Ada", "email": email, "password": password}}),
            )
            .await;
        assert_eq!(registered.data()["register"]["tokenType"], "Bearer");

        let login = app
            .gql(
                None,
                &run("02-login"),
                json!({"input": {"email": email, "password": password}}),
            )
            .await;
        let token = common::string(&login.data()["login"]["accessToken"]);
        let refresh = common::string(&login.data()["login"]["refreshToken"]);
        let auth = Some(token.as_str());

        let me = app.gql(auth, &run("03-me"), json!({})).await;
        assert_eq!(me.data()["me"]["email"], Value::String(email.clone()));

        let doctor = app
        .gql(
            auth,
            &run("04-create-doctor"),
            json!({"input": {"firstName": "Gregory", "lastName": "House", "specialization": "Diagnostics",
                             "email": common::unique_email("house")}}),
        )
        .await;
        let doctor_id = common::string(&doctor.data()["createDoctor"]["id"]);

        let patient = app
        .gql(
            auth,
            &run("05-create-patient"),
            json!({"input": {"firstName": "Jane", "lastName": "Doe", "dateOfBirth": "1991-04-30", "gender": "FEMALE"}}),
        )
        .await;
        let patient_id = common::string(&patient.data()["createPatient"]["id"]);

        let mapping = app
            .gql(
                auth,
                &run("06-assign-doctor"),
                json!({"patientId": patient_id, "doctorId": doctor_id}),
            )
            .await;
        let mapping_id = common::string(&mapping.data()["assignDoctor"]["id"]);

        let list = app
            .gql(
                auth,
                &run("07-list-patients"),
                json!({"first": 10, "orderBy": {"field": "LAST_NAME", "direction": "ASC"}}),
            )
            .await;
        let patients = &list.data()["patients"];
        assert_eq!(patients["totalCount"], 1);
        assert_eq!(
            patients["nodes"][0]["doctors"][0]["id"],
            Value::String(doctor_id.clone())
        );

        let doctors = app
            .gql(
                auth,
                &run("08-doctors-for-patient"),
                json!({"patientId": patient_id}),
            )
            .await;
        assert_eq!(
            doctors.data()["doctorsForPatient"][0]["id"],
            Value::String(doctor_id.clone())
        );
        assert_eq!(doctors.data()["mappings"]["totalCount"], 1);

        let updated = app
            .gql(
                auth,
                &run("09-update-patient"),
                json!({"id": patient_id, "input": {"phone": "+1-555-0100", "notes": null}}),
            )
            .await;
        assert_eq!(updated.data()["updatePatient"]["phone"], "+1-555-0100");

        let unassigned = app
            .gql(
                auth,
                &run("10-unassign-doctor"),
                json!({"mappingId": mapping_id}),
            )
            .await;
        assert_eq!(
            unassigned.data()["unassignDoctor"],
            Value::String(mapping_id.clone())
        );

        let deleted = app
            .gql(auth, &run("11-delete-patient"), json!({"id": patient_id}))
            .await;
        assert_eq!(
            deleted.data()["deletePatient"],
            Value::String(patient_id.clone())
        );

        let refreshed = app
            .gql(
                None,
                &run("12-refresh-token"),
                json!({"refreshToken": refresh}),
            )
            .await;
        let new_refresh = common::string(&refreshed.data()["refreshToken"]["refreshToken"]);
        assert_ne!(new_refresh, refresh);

        let logout = app
            .gql(
                None,
                &run("13-logout"),
                json!({"refreshToken": new_refresh}),
            )
            .await;
        assert_eq!(logout.data()["logout"], true);

        assert_eq!(
            used,
            all_examples(),
            "every example is part of the flow, in file-name order"
        );
    }
);
