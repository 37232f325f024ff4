//! Point reads (`me`, `patient(id)`) under concurrency. On PostgreSQL concurrent requests share their
//! statements (src/point_reads.rs), so one statement fetches the records of several callers: each
//! caller must still get exactly its own record, never someone else's, and see the changes just made.
mod common;

use common::*;
use serde_json::json;

const PATIENT: &str = "query($id: ID!) { patient(id: $id) { id firstName } }";

scenario!(
    concurrent_reads_of_several_users_each_get_only_their_own,
    |app| async move {
        let mut users = Vec::new();
        for i in 0..4 {
            let user = app.signed_in_user().await;
            let patient = app
                .create_patient(
                    &user.access,
                    patient_input(&format!("Own{i}"), "Reader", 30),
                )
                .await;
            users.push((user, patient));
        }
        // Every user reads their own patient, every other user's patient and their own profile, all at
        // once, so the statements of one batch mix callers.
        let mut reads = Vec::new();
        for (reader, (user, _)) in users.iter().enumerate() {
            for (owner, (_, patient)) in users.iter().enumerate() {
                for _ in 0..3 {
                    reads.push((reader, Some((owner, patient.clone())), user.access.clone()));
                }
            }
            for _ in 0..4 {
                reads.push((reader, None, user.access.clone()));
            }
        }
        let answers =
            futures_util::future::join_all(reads.iter().map(|(_, target, token)| async {
                match target {
                    Some((_, patient)) => {
                        app.gql(Some(token), PATIENT, json!({ "id": patient }))
                            .await
                    }
                    None => app.gql(Some(token), "{ me { id email } }", json!({})).await,
                }
            }))
            .await;
        for ((reader, target, _), answer) in reads.iter().zip(&answers) {
            let data = answer.data();
            match target {
                Some((owner, patient)) if owner == reader => {
                    assert_eq!(data["patient"]["id"], patient.as_str(), "{}", answer.body);
                    assert_eq!(data["patient"]["firstName"], format!("Own{owner}"));
                }
                Some(_) => assert!(
                    data["patient"].is_null(),
                    "user {reader} read someone else's patient: {}",
                    answer.body
                ),
                None => {
                    let user = &users[*reader].0;
                    assert_eq!(data["me"]["id"], user.user_id.as_str(), "{}", answer.body);
                    assert_eq!(data["me"]["email"], user.email.as_str());
                }
            }
        }
    }
);

scenario!(a_point_read_sees_the_change_just_made, |app| async move {
    let user = app.signed_in_user().await;
    let patient = app
        .create_patient(&user.access, patient_input("Before", "Change", 30))
        .await;
    // Other reads of the same patient keep statements in flight meanwhile.
    let background = futures_util::future::join_all(
        (0..24).map(|_| app.gql(Some(&user.access), PATIENT, json!({ "id": patient }))),
    );
    let changes = async {
        for i in 0..10 {
            let name = format!("After{i}");
            app.gql(
                    Some(&user.access),
                    "mutation($id: ID!, $name: String) { updatePatient(id: $id, input: { firstName: $name }) { id } }",
                    json!({ "id": patient, "name": name }),
                )
                .await
                .data();
            let read = app
                .gql(Some(&user.access), PATIENT, json!({ "id": patient }))
                .await;
            assert_eq!(
                read.data()["patient"]["firstName"],
                name.as_str(),
                "{}",
                read.body
            );
        }
    };
    let (reads, ()) = tokio::join!(background, changes);
    for read in reads {
        assert!(read.errors().is_empty(), "{}", read.body);
    }
});
