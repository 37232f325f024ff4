//! Doctors: shared by every signed-in user; changed only by their creator or an ADMIN.
mod common;

use common::*;
use serde_json::{Value, json};

const FIELDS: &str =
    "id firstName lastName fullName specialization email phone createdAt updatedAt";

async fn create(app: &TestApp, token: &str, input: Value) -> GqlResponse {
    app.gql(
        Some(token),
        &format!(
            "mutation($input: CreateDoctorInput!) {{ createDoctor(input: $input) {{ {FIELDS} }} }}"
        ),
        json!({ "input": input }),
    )
    .await
}

async fn get(app: &TestApp, token: &str, id: &str) -> GqlResponse {
    app.gql(
        Some(token),
        &format!("query($id: ID!) {{ doctor(id: $id) {{ {FIELDS} }} }}"),
        json!({ "id": id }),
    )
    .await
}

async fn update(app: &TestApp, token: &str, id: &str, input: Value) -> GqlResponse {
    app.gql(
        Some(token),
        &format!("mutation($id: ID!, $input: UpdateDoctorInput!) {{ updateDoctor(id: $id, input: $input) {{ {FIELDS} }} }}"),
        json!({ "id": id, "input": input }),
    )
    .await
}

async fn delete(app: &TestApp, token: &str, id: &str) -> GqlResponse {
    app.gql(
        Some(token),
        "mutation($id: ID!) { deleteDoctor(id: $id) }",
        json!({ "id": id }),
    )
    .await
}

async fn listed_ids(app: &TestApp, token: &str) -> Vec<String> {
    let response = app
        .gql(
            Some(token),
            "{ doctors(first: 100) { nodes { id } } }",
            json!({}),
        )
        .await;
    ids(&response.data()["doctors"]["nodes"])
}

scenario!(
    any_signed_in_user_creates_and_reads_doctors,
    |app| async move {
        let creator = app.signed_in_user().await;
        let reader = app.signed_in_user().await;
        let input = json!({
            "firstName": "Meredith", "lastName": "Grey", "specialization": "General Surgery",
            "email": "meredith.grey@example.com", "phone": "+1 555 0199",
        });
        let doctor = create(&app, &creator.access, input).await.data()["createDoctor"].clone();
        assert_eq!(doctor["fullName"], "Meredith Grey");
        assert_eq!(doctor["specialization"], "General Surgery");
        assert_eq!(doctor["email"], "meredith.grey@example.com");
        assert_eq!(doctor["phone"], "+1 555 0199");
        let id = string(&doctor["id"]);

        assert_eq!(
            get(&app, &reader.access, &id).await.data()["doctor"],
            doctor
        );
        assert_eq!(listed_ids(&app, &reader.access).await, vec![id.clone()]);

        let own = app
            .create_doctor(
                &reader.access,
                doctor_input("Derek", "Shepherd", "Neurosurgery"),
            )
            .await;
        let mut everyone_sees = listed_ids(&app, &creator.access).await;
        everyone_sees.sort();
        let mut expected = vec![id, own];
        expected.sort();
        assert_eq!(everyone_sees, expected);
    }
);

scenario!(
    the_creator_updates_and_deletes_their_doctor,
    |app| async move {
        let creator = app.signed_in_user().await;
        let input = json!({
            "firstName": "John", "lastName": "Dorian", "specialization": "Internal Medicine",
            "email": unique_email("jd"), "phone": "555",
        });
        let before = create(&app, &creator.access, input).await.data()["createDoctor"].clone();
        let id = string(&before["id"]);

        let after = update(
            &app,
            &creator.access,
            &id,
            json!({ "specialization": "Chief of Medicine", "phone": null }),
        )
        .await;
        let after = after.data()["updateDoctor"].clone();
        assert_eq!(after["specialization"], "Chief of Medicine");
        assert!(after["phone"].is_null(), "{after}");
        for unchanged in ["firstName", "lastName", "email", "createdAt"] {
            assert_eq!(after[unchanged], before[unchanged], "{unchanged} changed");
        }
        assert_eq!(
            get(&app, &creator.access, &id).await.data()["doctor"],
            after
        );

        assert_eq!(
            delete(&app, &creator.access, &id).await.data()["deleteDoctor"],
            id.as_str()
        );
        assert!(get(&app, &creator.access, &id).await.data()["doctor"].is_null());
        assert!(listed_ids(&app, &creator.access).await.is_empty());
    }
);

scenario!(
    another_user_cannot_update_or_delete_a_doctor,
    |app| async move {
        let creator = app.signed_in_user().await;
        let other = app.signed_in_user().await;
        let id = app
            .create_doctor(
                &creator.access,
                doctor_input("Perry", "Cox", "Internal Medicine"),
            )
            .await;
        let before = get(&app, &creator.access, &id).await.data()["doctor"].clone();

        update(&app, &other.access, &id, json!({ "lastName": "Changed" }))
            .await
            .assert_code("FORBIDDEN");
        delete(&app, &other.access, &id)
            .await
            .assert_code("FORBIDDEN");
        assert_eq!(get(&app, &other.access, &id).await.data()["doctor"], before);
    }
);

scenario!(an_admin_updates_and_deletes_any_doctor, |app| async move {
    let creator = app.signed_in_user().await;
    let admin = app.signed_in_user().await;
    let admin = app.make_admin(&admin.email).await;
    let me = app.gql(admin.token(), "{ me { role } }", json!({})).await;
    assert_eq!(me.data()["me"]["role"], "ADMIN");

    let id = app
        .create_doctor(
            &creator.access,
            doctor_input("Bob", "Kelso", "Administration"),
        )
        .await;
    let updated = update(&app, &admin.access, &id, json!({ "firstName": "Robert" })).await;
    assert_eq!(updated.data()["updateDoctor"]["fullName"], "Robert Kelso");
    assert_eq!(
        delete(&app, &admin.access, &id).await.data()["deleteDoctor"],
        id.as_str()
    );
    assert!(get(&app, &creator.access, &id).await.data()["doctor"].is_null());
});

scenario!(
    a_missing_doctor_is_null_and_not_found_for_mutations,
    |app| async move {
        let user = app.signed_in_user().await;
        let missing = missing_id();
        assert!(get(&app, &user.access, &missing).await.data()["doctor"].is_null());
        update(
            &app,
            &user.access,
            &missing,
            json!({ "firstName": "Nobody" }),
        )
        .await
        .assert_code("NOT_FOUND");
        delete(&app, &user.access, &missing)
            .await
            .assert_code("NOT_FOUND");
        get(&app, &user.access, "not-a-uuid")
            .await
            .assert_code("BAD_USER_INPUT");
    }
);

scenario!(
    doctor_email_is_unique_case_insensitively,
    |app| async move {
        let first = app.signed_in_user().await;
        let second = app.signed_in_user().await;
        let mut input = doctor_input("Lisa", "Cuddy", "Endocrinology");
        input["email"] = json!("lisa.cuddy@example.com");
        let taken_id =
            string(&create(&app, &first.access, input).await.data()["createDoctor"]["id"]);

        let mut duplicate = doctor_input("Other", "Cuddy", "Endocrinology");
        duplicate["email"] = json!("Lisa.Cuddy@EXAMPLE.com");
        create(&app, &second.access, duplicate)
            .await
            .assert_code("CONFLICT");

        let other_id = app
            .create_doctor(&second.access, doctor_input("James", "Wilson", "Oncology"))
            .await;
        update(
            &app,
            &second.access,
            &other_id,
            json!({ "email": "LISA.CUDDY@example.com" }),
        )
        .await
        .assert_code("CONFLICT");

        // Re-saving a doctor's own email is not a conflict.
        let same = update(
            &app,
            &first.access,
            &taken_id,
            json!({ "email": "lisa.cuddy@example.com" }),
        )
        .await;
        assert_eq!(
            same.data()["updateDoctor"]["email"],
            "lisa.cuddy@example.com"
        );
        assert_eq!(listed_ids(&app, &first.access).await.len(), 2);
    }
);

scenario!(
    an_invalid_doctor_email_or_name_is_rejected,
    |app| async move {
        let user = app.signed_in_user().await;
        let mut input = doctor_input("Bad", "Email", "Cardiology");
        input["email"] = json!("not-an-email");
        create(&app, &user.access, input)
            .await
            .assert_bad_input("email");
        create(&app, &user.access, doctor_input("", "Name", "Cardiology"))
            .await
            .assert_bad_input("firstName");

        let id = app
            .create_doctor(&user.access, doctor_input("Good", "Email", "Cardiology"))
            .await;
        update(
            &app,
            &user.access,
            &id,
            json!({ "email": "still not an email" }),
        )
        .await
        .assert_bad_input("email");
        assert_eq!(listed_ids(&app, &user.access).await, vec![id]);
    }
);

scenario!(
    doctor_patients_lists_only_the_viewers_own_patients,
    |app| async move {
        let alice = app.signed_in_user().await;
        let bob = app.signed_in_user().await;
        let doctor = app
            .create_doctor(
                &alice.access,
                doctor_input("Shared", "Doctor", "Family Medicine"),
            )
            .await;
        let alices = app
            .create_patient(&alice.access, patient_input("Alice's", "Patient", 30))
            .await;
        let bobs = app
            .create_patient(&bob.access, patient_input("Bob's", "Patient", 40))
            .await;
        let unassigned = app
            .create_patient(&alice.access, patient_input("Not", "Assigned", 50))
            .await;
        app.assign(&alice.access, &alices, &doctor).await;
        app.assign(&bob.access, &bobs, &doctor).await;

        let query = "query($id: ID!) { doctor(id: $id) { patients { id } } }";
        let seen_by_alice = app.gql(alice.token(), query, json!({ "id": doctor })).await;
        assert_eq!(
            ids(&seen_by_alice.data()["doctor"]["patients"]),
            vec![alices]
        );
        let seen_by_bob = app.gql(bob.token(), query, json!({ "id": doctor })).await;
        assert_eq!(ids(&seen_by_bob.data()["doctor"]["patients"]), vec![bobs]);

        let listed = app
            .gql(
                bob.token(),
                "{ doctors { nodes { id patients { id } } } }",
                json!({}),
            )
            .await;
        let listed_patients: Vec<String> = listed.data()["doctors"]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .flat_map(|doctor| ids(&doctor["patients"]))
            .collect();
        assert!(!listed_patients.contains(&unassigned));
        assert_eq!(listed_patients.len(), 1);
    }
);

scenario!(doctor_operations_require_a_token, |app| async move {
    let user = app.signed_in_user().await;
    let id = app
        .create_doctor(&user.access, doctor_input("Needs", "Token", "Cardiology"))
        .await;
    app.gql(None, "{ doctors { totalCount } }", json!({}))
        .await
        .assert_code("UNAUTHENTICATED");
    app.gql(
        None,
        "query($id: ID!) { doctor(id: $id) { id } }",
        json!({ "id": id }),
    )
    .await
    .assert_code("UNAUTHENTICATED");
    app.gql(
        None,
        "mutation($input: CreateDoctorInput!) { createDoctor(input: $input) { id } }",
        json!({ "input": doctor_input("No", "Token", "Cardiology") }),
    )
    .await
    .assert_code("UNAUTHENTICATED");
    app.gql(
        None,
        "mutation($id: ID!) { updateDoctor(id: $id, input: { specialization: \"Changed\" }) { id } }",
        json!({ "id": id }),
    )
    .await
    .assert_code("UNAUTHENTICATED");
    app.gql(
        None,
        "mutation($id: ID!) { deleteDoctor(id: $id) }",
        json!({ "id": id }),
    )
    .await
    .assert_code("UNAUTHENTICATED");
    assert_eq!(listed_ids(&app, &user.access).await, vec![id]);
});
