//! Assigning doctors to patients: only the patient's owner assigns, lists and unassigns; a pair is assigned once.
mod common;

use common::*;
use serde_json::json;

const UNASSIGN: &str = "mutation($id: ID!) { unassignDoctor(mappingId: $id) }";
const MAPPINGS: &str = "query($p: ID, $d: ID) { mappings(patientId: $p, doctorId: $d) { totalCount nodes { id patient { id } doctor { id } } } }";
const DOCTORS_FOR_PATIENT: &str = "query($p: ID!) { doctorsForPatient(patientId: $p) { id } }";
const ASSIGN: &str =
    "mutation($p: ID!, $d: ID!) { assignDoctor(patientId: $p, doctorId: $d) { id } }";

/// The mapping ids `mappings` returns for this viewer and filter.
async fn mapping_ids(
    app: &TestApp,
    token: &str,
    patient: Option<&str>,
    doctor: Option<&str>,
) -> Vec<String> {
    let response = app
        .gql(Some(token), MAPPINGS, json!({ "p": patient, "d": doctor }))
        .await;
    let connection = &response.data()["mappings"];
    let found = ids(&connection["nodes"]);
    assert_eq!(connection["totalCount"], found.len(), "{}", response.body);
    let mut found = found;
    found.sort();
    found
}

fn sorted(mut list: Vec<String>) -> Vec<String> {
    list.sort();
    list
}

scenario!(
    the_owner_assigns_a_doctor_to_their_patient,
    |app| async move {
        let user = app.signed_in_user().await;
        let patient = app
            .create_patient(&user.access, patient_input("Pat", "Ient", 30))
            .await;
        let doctor = app
            .create_doctor(&user.access, doctor_input("Doc", "Tor", "Cardiology"))
            .await;

        let response = app
        .gql(
            user.token(),
            "mutation($p: ID!, $d: ID!) { assignDoctor(patientId: $p, doctorId: $d) { id assignedAt patient { id fullName } doctor { id fullName } } }",
            json!({ "p": patient, "d": doctor }),
        )
        .await;
        let mapping = &response.data()["assignDoctor"];
        assert_eq!(mapping["patient"]["id"], patient.as_str());
        assert_eq!(mapping["patient"]["fullName"], "Pat Ient");
        assert_eq!(mapping["doctor"]["id"], doctor.as_str());
        assert_eq!(mapping["doctor"]["fullName"], "Doc Tor");
        let assigned_at = mapping["assignedAt"].as_str().expect("assignedAt");
        chrono::DateTime::parse_from_rfc3339(assigned_at).expect("assignedAt is RFC 3339");
        let mapping_id = string(&mapping["id"]);

        let doctors = app
            .gql(user.token(), DOCTORS_FOR_PATIENT, json!({ "p": patient }))
            .await;
        assert_eq!(
            ids(&doctors.data()["doctorsForPatient"]),
            vec![doctor.clone()]
        );
        let patient_view = app
            .gql(
                user.token(),
                "query($id: ID!) { patient(id: $id) { doctors { id } } }",
                json!({ "id": patient }),
            )
            .await;
        assert_eq!(
            ids(&patient_view.data()["patient"]["doctors"]),
            vec![doctor]
        );
        assert_eq!(
            mapping_ids(&app, &user.access, None, None).await,
            vec![mapping_id]
        );
    }
);

scenario!(
    assigning_the_same_pair_twice_is_a_conflict,
    |app| async move {
        let user = app.signed_in_user().await;
        let patient = app
            .create_patient(&user.access, patient_input("Pat", "Ient", 30))
            .await;
        let doctor = app
            .create_doctor(&user.access, doctor_input("Doc", "Tor", "Cardiology"))
            .await;
        app.assign(&user.access, &patient, &doctor).await;
        app.try_assign(&user.access, &patient, &doctor)
            .await
            .assert_code("CONFLICT");
        assert_eq!(mapping_ids(&app, &user.access, None, None).await.len(), 1);
    }
);

scenario!(
    concurrent_duplicate_assignments_have_exactly_one_winner,
    |app| async move {
        let user = app.signed_in_user().await;
        let patient = app
            .create_patient(&user.access, patient_input("Race", "Condition", 30))
            .await;
        let doctor = app
            .create_doctor(&user.access, doctor_input("Doc", "Tor", "Cardiology"))
            .await;

        let responses = app
            .gql_concurrently(
                8,
                user.token(),
                ASSIGN,
                json!({ "p": patient, "d": doctor }),
            )
            .await;
        let winners = responses.iter().filter(|r| r.errors().is_empty()).count();
        assert_eq!(
            winners,
            1,
            "{:#?}",
            responses.iter().map(|r| &r.body).collect::<Vec<_>>()
        );
        for loser in responses.iter().filter(|r| !r.errors().is_empty()) {
            loser.assert_code("CONFLICT");
        }
        assert_eq!(mapping_ids(&app, &user.access, None, None).await.len(), 1);
    }
);

scenario!(
    assigning_to_another_users_patient_is_not_found,
    |app| async move {
        let owner = app.signed_in_user().await;
        let other = app.signed_in_user().await;
        let patient = app
            .create_patient(&owner.access, patient_input("Pat", "Ient", 30))
            .await;
        let doctor = app
            .create_doctor(&other.access, doctor_input("Doc", "Tor", "Cardiology"))
            .await;
        app.try_assign(&other.access, &patient, &doctor)
            .await
            .assert_code("NOT_FOUND");
        app.try_assign(&other.access, &missing_id(), &doctor)
            .await
            .assert_code("NOT_FOUND");
        assert!(
            mapping_ids(&app, &owner.access, None, None)
                .await
                .is_empty()
        );
        assert!(
            mapping_ids(&app, &other.access, None, None)
                .await
                .is_empty()
        );
    }
);

scenario!(assigning_a_missing_doctor_is_not_found, |app| async move {
    let user = app.signed_in_user().await;
    let patient = app
        .create_patient(&user.access, patient_input("Pat", "Ient", 30))
        .await;
    app.try_assign(&user.access, &patient, &missing_id())
        .await
        .assert_code("NOT_FOUND");
    app.try_assign(&user.access, &patient, "not-a-uuid")
        .await
        .assert_code("BAD_USER_INPUT");
    assert!(mapping_ids(&app, &user.access, None, None).await.is_empty());
});

scenario!(
    unassigning_returns_the_mapping_id_and_removes_it,
    |app| async move {
        let user = app.signed_in_user().await;
        let patient = app
            .create_patient(&user.access, patient_input("Pat", "Ient", 30))
            .await;
        let doctor = app
            .create_doctor(&user.access, doctor_input("Doc", "Tor", "Cardiology"))
            .await;
        let mapping = app.assign(&user.access, &patient, &doctor).await;

        let response = app
            .gql(user.token(), UNASSIGN, json!({ "id": mapping }))
            .await;
        assert_eq!(response.data()["unassignDoctor"], mapping.as_str());
        assert!(mapping_ids(&app, &user.access, None, None).await.is_empty());
        let doctors = app
            .gql(user.token(), DOCTORS_FOR_PATIENT, json!({ "p": patient }))
            .await;
        assert_eq!(doctors.data()["doctorsForPatient"], json!([]));
        app.gql(user.token(), UNASSIGN, json!({ "id": mapping }))
            .await
            .assert_code("NOT_FOUND");

        // The pair can be assigned again.
        app.assign(&user.access, &patient, &doctor).await;
    }
);

scenario!(another_user_cannot_unassign_a_mapping, |app| async move {
    let owner = app.signed_in_user().await;
    let other = app.signed_in_user().await;
    let patient = app
        .create_patient(&owner.access, patient_input("Pat", "Ient", 30))
        .await;
    let doctor = app
        .create_doctor(&other.access, doctor_input("Doc", "Tor", "Cardiology"))
        .await;
    let mapping = app.assign(&owner.access, &patient, &doctor).await;

    app.gql(other.token(), UNASSIGN, json!({ "id": mapping }))
        .await
        .assert_code("NOT_FOUND");
    app.gql(other.token(), UNASSIGN, json!({ "id": missing_id() }))
        .await
        .assert_code("NOT_FOUND");
    assert_eq!(
        mapping_ids(&app, &owner.access, None, None).await,
        vec![mapping]
    );
});

scenario!(
    mappings_lists_only_the_viewers_own_and_filters_by_patient_or_doctor,
    |app| async move {
        let alice = app.signed_in_user().await;
        let bob = app.signed_in_user().await;
        let p1 = app
            .create_patient(&alice.access, patient_input("One", "Patient", 30))
            .await;
        let p2 = app
            .create_patient(&alice.access, patient_input("Two", "Patient", 30))
            .await;
        let bobs = app
            .create_patient(&bob.access, patient_input("Bob's", "Patient", 30))
            .await;
        let d1 = app
            .create_doctor(&alice.access, doctor_input("One", "Doctor", "Cardiology"))
            .await;
        let d2 = app
            .create_doctor(&bob.access, doctor_input("Two", "Doctor", "Oncology"))
            .await;
        let p1d1 = app.assign(&alice.access, &p1, &d1).await;
        let p1d2 = app.assign(&alice.access, &p1, &d2).await;
        let p2d1 = app.assign(&alice.access, &p2, &d1).await;
        let bob_d1 = app.assign(&bob.access, &bobs, &d1).await;

        let all = sorted(vec![p1d1.clone(), p1d2.clone(), p2d1.clone()]);
        assert_eq!(mapping_ids(&app, &alice.access, None, None).await, all);
        assert_eq!(
            mapping_ids(&app, &alice.access, Some(&p1), None).await,
            sorted(vec![p1d1.clone(), p1d2.clone()])
        );
        assert_eq!(
            mapping_ids(&app, &alice.access, None, Some(&d1)).await,
            sorted(vec![p1d1.clone(), p2d1])
        );
        assert_eq!(
            mapping_ids(&app, &alice.access, Some(&p1), Some(&d2)).await,
            vec![p1d2]
        );
        assert_eq!(
            mapping_ids(&app, &bob.access, None, None).await,
            vec![bob_d1.clone()]
        );
        assert_eq!(
            mapping_ids(&app, &bob.access, None, Some(&d1)).await,
            vec![bob_d1]
        );
        // Filtering by someone else's patient shows nothing of theirs.
        assert!(
            mapping_ids(&app, &bob.access, Some(&p1), None)
                .await
                .is_empty()
        );

        let doctors = app
            .gql(alice.token(), DOCTORS_FOR_PATIENT, json!({ "p": p1 }))
            .await;
        assert_eq!(
            sorted(ids(&doctors.data()["doctorsForPatient"])),
            sorted(vec![d1, d2])
        );
    }
);

scenario!(
    doctors_for_a_foreign_or_missing_patient_is_not_found,
    |app| async move {
        let owner = app.signed_in_user().await;
        let other = app.signed_in_user().await;
        let patient = app
            .create_patient(&owner.access, patient_input("Pat", "Ient", 30))
            .await;
        let doctor = app
            .create_doctor(&owner.access, doctor_input("Doc", "Tor", "Cardiology"))
            .await;
        app.assign(&owner.access, &patient, &doctor).await;
        app.gql(other.token(), DOCTORS_FOR_PATIENT, json!({ "p": patient }))
            .await
            .assert_code("NOT_FOUND");
        app.gql(
            owner.token(),
            DOCTORS_FOR_PATIENT,
            json!({ "p": missing_id() }),
        )
        .await
        .assert_code("NOT_FOUND");
    }
);

scenario!(deleting_a_doctor_removes_its_mappings, |app| async move {
    let user = app.signed_in_user().await;
    let patient = app
        .create_patient(&user.access, patient_input("Pat", "Ient", 30))
        .await;
    let gone = app
        .create_doctor(&user.access, doctor_input("Gone", "Doctor", "Cardiology"))
        .await;
    let kept = app
        .create_doctor(&user.access, doctor_input("Kept", "Doctor", "Oncology"))
        .await;
    app.assign(&user.access, &patient, &gone).await;
    let kept_mapping = app.assign(&user.access, &patient, &kept).await;

    app.gql(
        user.token(),
        "mutation($id: ID!) { deleteDoctor(id: $id) }",
        json!({ "id": gone }),
    )
    .await
    .data();
    assert_eq!(
        mapping_ids(&app, &user.access, None, None).await,
        vec![kept_mapping]
    );
    let doctors = app
        .gql(user.token(), DOCTORS_FOR_PATIENT, json!({ "p": patient }))
        .await;
    assert_eq!(ids(&doctors.data()["doctorsForPatient"]), vec![kept]);
});

scenario!(mapping_operations_require_a_token, |app| async move {
    let user = app.signed_in_user().await;
    let patient = app
        .create_patient(&user.access, patient_input("Pat", "Ient", 30))
        .await;
    let doctor = app
        .create_doctor(&user.access, doctor_input("Doc", "Tor", "Cardiology"))
        .await;
    let mapping = app.assign(&user.access, &patient, &doctor).await;
    app.gql(None, ASSIGN, json!({ "p": patient, "d": doctor }))
        .await
        .assert_code("UNAUTHENTICATED");
    app.gql(None, UNASSIGN, json!({ "id": mapping }))
        .await
        .assert_code("UNAUTHENTICATED");
    app.gql(None, MAPPINGS, json!({}))
        .await
        .assert_code("UNAUTHENTICATED");
    app.gql(None, DOCTORS_FOR_PATIENT, json!({ "p": patient }))
        .await
        .assert_code("UNAUTHENTICATED");
    assert_eq!(
        mapping_ids(&app, &user.access, None, None).await,
        vec![mapping]
    );
});
