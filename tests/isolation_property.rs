//! Property: whatever three users do, in whatever order, none of them ever sees or changes another's
//! patients or mappings. Random sequences of API calls run against one real server per case, next to a
//! model of who owns what; after every step each user's view is compared with the model.
// This file uses the harness but not its `scenario!` macro (one server per generated case instead).
#[allow(unused_macros, unused_imports)]
mod common;

use common::*;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value, json};

const USERS: usize = 3;

#[derive(Clone, Debug)]
enum Op {
    CreatePatient {
        user: usize,
    },
    UpdatePatient {
        user: usize,
        target: Index,
    },
    DeletePatient {
        user: usize,
        target: Index,
    },
    CreateDoctor {
        user: usize,
    },
    Assign {
        user: usize,
        patient: Index,
        doctor: Index,
    },
    Unassign {
        user: usize,
        mapping: Index,
    },
    ReadPatient {
        user: usize,
        target: Index,
    },
    ListPatients {
        user: usize,
    },
    ListMappings {
        user: usize,
    },
    DoctorsForPatient {
        user: usize,
        target: Index,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let user = 0..USERS;
    prop_oneof![
        4 => user.clone().prop_map(|user| Op::CreatePatient { user }),
        3 => (user.clone(), any::<Index>()).prop_map(|(user, target)| Op::UpdatePatient { user, target }),
        2 => (user.clone(), any::<Index>()).prop_map(|(user, target)| Op::DeletePatient { user, target }),
        2 => user.clone().prop_map(|user| Op::CreateDoctor { user }),
        4 => (user.clone(), any::<Index>(), any::<Index>())
            .prop_map(|(user, patient, doctor)| Op::Assign { user, patient, doctor }),
        2 => (user.clone(), any::<Index>()).prop_map(|(user, mapping)| Op::Unassign { user, mapping }),
        3 => (user.clone(), any::<Index>()).prop_map(|(user, target)| Op::ReadPatient { user, target }),
        1 => user.clone().prop_map(|user| Op::ListPatients { user }),
        1 => user.clone().prop_map(|user| Op::ListMappings { user }),
        2 => (user, any::<Index>()).prop_map(|(user, target)| Op::DoctorsForPatient { user, target }),
    ]
}

struct PatientRecord {
    id: String,
    owner: usize,
    alive: bool,
    first_name: String,
    version: i64,
}

struct MappingRecord {
    id: String,
    /// Index into `Model::patients`.
    patient: usize,
    /// Index into `Model::doctors`.
    doctor: usize,
    alive: bool,
}

/// Who owns what, as the API should see it.
#[derive(Default)]
struct Model {
    patients: Vec<PatientRecord>,
    doctors: Vec<String>,
    mappings: Vec<MappingRecord>,
}

impl Model {
    fn owns(&self, user: usize, patient: usize) -> bool {
        let record = &self.patients[patient];
        record.alive && record.owner == user
    }

    fn own_patients(&self, user: usize) -> Vec<String> {
        sorted(
            self.patients
                .iter()
                .filter(|p| p.alive && p.owner == user)
                .map(|p| p.id.clone()),
        )
    }

    fn own_mappings(&self, user: usize) -> Vec<String> {
        sorted(
            self.mappings
                .iter()
                .filter(|m| m.alive && self.owns(user, m.patient))
                .map(|m| m.id.clone()),
        )
    }

    fn doctors_of(&self, patient: usize) -> Vec<String> {
        sorted(
            self.mappings
                .iter()
                .filter(|m| m.alive && m.patient == patient)
                .map(|m| self.doctors[m.doctor].clone()),
        )
    }

    /// The user's own patients assigned to this doctor.
    fn patients_of_doctor_for(&self, doctor: usize, user: usize) -> Vec<String> {
        sorted(
            self.mappings
                .iter()
                .filter(|m| m.alive && m.doctor == doctor && self.owns(user, m.patient))
                .map(|m| self.patients[m.patient].id.clone()),
        )
    }

    /// A known patient (of any user, alive or not), or None when there is none yet.
    fn pick_patient(&self, index: &Index) -> Option<usize> {
        (!self.patients.is_empty()).then(|| index.index(self.patients.len()))
    }

    fn pick_doctor(&self, index: &Index) -> Option<usize> {
        (!self.doctors.is_empty()).then(|| index.index(self.doctors.len()))
    }

    fn pick_mapping(&self, index: &Index) -> Option<usize> {
        (!self.mappings.is_empty()).then(|| index.index(self.mappings.len()))
    }
}

fn sorted(ids: impl Iterator<Item = String>) -> Vec<String> {
    let mut ids: Vec<String> = ids.collect();
    ids.sort();
    ids
}

fn sorted_ids(list: &Value) -> Vec<String> {
    let mut list = ids(list);
    list.sort();
    list
}

const VIEW: &str = "{
  patients(first: 100) { totalCount nodes { id firstName version } }
  mappings(first: 100) { totalCount nodes { id patient { id } doctor { id } } }
  doctors(first: 100) { nodes { id patients { id } } }
}";

const READ_PATIENT: &str = "query($id: ID!) { patient(id: $id) { id firstName version } }";

/// Reads the owner's view of one patient: its first name and version, or None when it is gone.
async fn owner_view(app: &TestApp, owner: &AuthTokens, id: &str) -> Option<(String, i64)> {
    let response = app
        .gql(owner.token(), READ_PATIENT, json!({ "id": id }))
        .await;
    let patient = &response.data()["patient"];
    if patient.is_null() {
        return None;
    }
    Some((
        string(&patient["firstName"]),
        patient["version"].as_i64().expect("version"),
    ))
}

/// After every step: each user sees exactly their own patients, mappings, and (through the doctors
/// directory) their own patients of each doctor — never anyone else's.
async fn check_views(app: &TestApp, users: &[AuthTokens], model: &Model, context: &str) {
    for (user, tokens) in users.iter().enumerate() {
        let response = app.gql(tokens.token(), VIEW, json!({})).await;
        let data = response.data();

        let patients = &data["patients"];
        assert_eq!(
            sorted_ids(&patients["nodes"]),
            model.own_patients(user),
            "{context}: user {user}'s patients"
        );
        assert_eq!(
            patients["totalCount"].as_u64(),
            Some(model.own_patients(user).len() as u64),
            "{context}: user {user}'s patient count"
        );
        for node in patients["nodes"].as_array().expect("nodes") {
            let record = model
                .patients
                .iter()
                .find(|p| p.id == string(&node["id"]))
                .expect("a listed patient is known");
            assert_eq!(node["firstName"], record.first_name.as_str(), "{context}");
            assert_eq!(node["version"].as_i64(), Some(record.version), "{context}");
        }

        let mappings = &data["mappings"];
        assert_eq!(
            sorted_ids(&mappings["nodes"]),
            model.own_mappings(user),
            "{context}: user {user}'s mappings"
        );
        for node in mappings["nodes"].as_array().expect("nodes") {
            let patient = string(&node["patient"]["id"]);
            assert!(
                model.own_patients(user).contains(&patient),
                "{context}: user {user} sees mapping {node} of a patient that is not theirs"
            );
        }

        let doctors = data["doctors"]["nodes"].as_array().expect("doctors");
        assert_eq!(
            doctors.len(),
            model.doctors.len(),
            "{context}: the directory is shared"
        );
        for node in doctors {
            let doctor_id = string(&node["id"]);
            let doctor = model
                .doctors
                .iter()
                .position(|d| *d == doctor_id)
                .expect("a listed doctor is known");
            assert_eq!(
                sorted_ids(&node["patients"]),
                model.patients_of_doctor_for(doctor, user),
                "{context}: user {user}'s patients of doctor {doctor}"
            );
        }
    }
}

async fn run(ops: Vec<Op>) {
    let app = TestApp::spawn(TestDb::Sqlite).await;
    let mut users = Vec::new();
    for n in 0..USERS {
        users.push(
            app.register(&format!("User {n}"), &unique_email("prop"), PASSWORD)
                .await,
        );
    }
    let mut model = Model::default();

    for (step, op) in ops.iter().enumerate() {
        let context = format!("step {step}: {op:?}");
        match op {
            Op::CreatePatient { user } => {
                let first_name = format!("P{step}");
                let id = app
                    .create_patient(&users[*user].access, patient_input(&first_name, "Prop", 40))
                    .await;
                model.patients.push(PatientRecord {
                    id,
                    owner: *user,
                    alive: true,
                    first_name,
                    version: 1,
                });
            }
            Op::UpdatePatient { user, target } => {
                let first_name = format!("U{step}");
                let Some(target) = model.pick_patient(target) else {
                    app.gql(
                        users[*user].token(),
                        "mutation($id: ID!) { updatePatient(id: $id, input: { firstName: \"Nobody\" }) { id } }",
                        json!({ "id": missing_id() }),
                    )
                    .await
                    .assert_code("NOT_FOUND");
                    continue;
                };
                let record = &model.patients[target];
                let owner = record.owner;
                let before = owner_view(&app, &users[owner], &record.id).await;
                let response = app
                    .gql(
                        users[*user].token(),
                        "mutation($id: ID!, $name: String!) { updatePatient(id: $id, input: { firstName: $name }) { id firstName version } }",
                        json!({ "id": record.id, "name": first_name }),
                    )
                    .await;
                if model.owns(*user, target) {
                    let updated = &response.data()["updatePatient"];
                    let record = &mut model.patients[target];
                    record.version += 1;
                    record.first_name = first_name;
                    assert_eq!(
                        updated["version"].as_i64(),
                        Some(record.version),
                        "{context}"
                    );
                    assert_eq!(
                        updated["firstName"],
                        record.first_name.as_str(),
                        "{context}"
                    );
                } else {
                    assert_eq!(
                        response.error_code(),
                        "NOT_FOUND",
                        "{context}: {}",
                        response.body
                    );
                    assert!(
                        response.body["data"].is_null(),
                        "{context}: {}",
                        response.body
                    );
                    let id = model.patients[target].id.clone();
                    assert_eq!(
                        owner_view(&app, &users[owner], &id).await,
                        before,
                        "{context}: a refused update changed the patient"
                    );
                }
            }
            Op::DeletePatient { user, target } => {
                let Some(target) = model.pick_patient(target) else {
                    app.gql(
                        users[*user].token(),
                        "mutation($id: ID!) { deletePatient(id: $id) }",
                        json!({ "id": missing_id() }),
                    )
                    .await
                    .assert_code("NOT_FOUND");
                    continue;
                };
                let id = model.patients[target].id.clone();
                let owner = model.patients[target].owner;
                let before = owner_view(&app, &users[owner], &id).await;
                let response = app
                    .gql(
                        users[*user].token(),
                        "mutation($id: ID!) { deletePatient(id: $id) }",
                        json!({ "id": id }),
                    )
                    .await;
                if model.owns(*user, target) {
                    assert_eq!(response.data()["deletePatient"], id.as_str(), "{context}");
                    model.patients[target].alive = false;
                    for mapping in model.mappings.iter_mut().filter(|m| m.patient == target) {
                        mapping.alive = false;
                    }
                } else {
                    assert_eq!(
                        response.error_code(),
                        "NOT_FOUND",
                        "{context}: {}",
                        response.body
                    );
                    assert_eq!(
                        owner_view(&app, &users[owner], &id).await,
                        before,
                        "{context}: a refused delete changed the patient"
                    );
                }
            }
            Op::CreateDoctor { user } => {
                let id = app
                    .create_doctor(
                        &users[*user].access,
                        doctor_input("Doc", &format!("D{step}"), "General practice"),
                    )
                    .await;
                model.doctors.push(id);
            }
            Op::Assign {
                user,
                patient,
                doctor,
            } => {
                let patient = model.pick_patient(patient);
                let doctor = model.pick_doctor(doctor);
                let patient_id = patient.map_or_else(missing_id, |p| model.patients[p].id.clone());
                let doctor_id = doctor.map_or_else(missing_id, |d| model.doctors[d].clone());
                let response = app
                    .try_assign(&users[*user].access, &patient_id, &doctor_id)
                    .await;
                match (patient, doctor) {
                    (Some(p), Some(d)) if model.owns(*user, p) => {
                        let duplicate = model
                            .mappings
                            .iter()
                            .any(|m| m.alive && m.patient == p && m.doctor == d);
                        if duplicate {
                            assert_eq!(
                                response.error_code(),
                                "CONFLICT",
                                "{context}: {}",
                                response.body
                            );
                        } else {
                            let mapping = &response.data()["assignDoctor"];
                            assert_eq!(mapping["patient"]["id"], patient_id.as_str(), "{context}");
                            assert_eq!(mapping["doctor"]["id"], doctor_id.as_str(), "{context}");
                            model.mappings.push(MappingRecord {
                                id: string(&mapping["id"]),
                                patient: p,
                                doctor: d,
                                alive: true,
                            });
                        }
                    }
                    _ => {
                        assert_eq!(
                            response.error_code(),
                            "NOT_FOUND",
                            "{context}: {}",
                            response.body
                        );
                        assert!(
                            response.body["data"].is_null(),
                            "{context}: {}",
                            response.body
                        );
                    }
                }
            }
            Op::Unassign { user, mapping } => {
                let picked = model.pick_mapping(mapping);
                let mapping_id = picked.map_or_else(missing_id, |m| model.mappings[m].id.clone());
                let response = app
                    .gql(
                        users[*user].token(),
                        "mutation($id: ID!) { unassignDoctor(mappingId: $id) }",
                        json!({ "id": mapping_id }),
                    )
                    .await;
                match picked {
                    Some(m)
                        if model.mappings[m].alive
                            && model.owns(*user, model.mappings[m].patient) =>
                    {
                        assert_eq!(
                            response.data()["unassignDoctor"],
                            mapping_id.as_str(),
                            "{context}"
                        );
                        model.mappings[m].alive = false;
                    }
                    _ => {
                        assert_eq!(
                            response.error_code(),
                            "NOT_FOUND",
                            "{context}: {}",
                            response.body
                        );
                    }
                }
            }
            Op::ReadPatient { user, target } => {
                let picked = model.pick_patient(target);
                let id = picked.map_or_else(missing_id, |p| model.patients[p].id.clone());
                let response = app
                    .gql(users[*user].token(), READ_PATIENT, json!({ "id": id }))
                    .await;
                let patient = &response.data()["patient"];
                match picked {
                    Some(p) if model.owns(*user, p) => {
                        let record = &model.patients[p];
                        assert_eq!(patient["id"], record.id.as_str(), "{context}");
                        assert_eq!(
                            patient["firstName"],
                            record.first_name.as_str(),
                            "{context}"
                        );
                        assert_eq!(
                            patient["version"].as_i64(),
                            Some(record.version),
                            "{context}"
                        );
                    }
                    _ => assert!(patient.is_null(), "{context}: saw {patient}"),
                }
            }
            Op::ListPatients { user } => {
                let response = app
                    .gql(
                        users[*user].token(),
                        "{ patients(first: 100) { nodes { id } } }",
                        json!({}),
                    )
                    .await;
                assert_eq!(
                    sorted_ids(&response.data()["patients"]["nodes"]),
                    model.own_patients(*user),
                    "{context}"
                );
            }
            Op::ListMappings { user } => {
                let response = app
                    .gql(
                        users[*user].token(),
                        "{ mappings(first: 100) { nodes { id } } }",
                        json!({}),
                    )
                    .await;
                assert_eq!(
                    sorted_ids(&response.data()["mappings"]["nodes"]),
                    model.own_mappings(*user),
                    "{context}"
                );
            }
            Op::DoctorsForPatient { user, target } => {
                let picked = model.pick_patient(target);
                let id = picked.map_or_else(missing_id, |p| model.patients[p].id.clone());
                let response = app
                    .gql(
                        users[*user].token(),
                        "query($id: ID!) { doctorsForPatient(patientId: $id) { id } }",
                        json!({ "id": id }),
                    )
                    .await;
                match picked {
                    Some(p) if model.owns(*user, p) => {
                        assert_eq!(
                            sorted_ids(&response.data()["doctorsForPatient"]),
                            model.doctors_of(p),
                            "{context}"
                        );
                    }
                    _ => {
                        assert_eq!(
                            response.error_code(),
                            "NOT_FOUND",
                            "{context}: {}",
                            response.body
                        );
                        assert!(
                            response.body["data"].is_null(),
                            "{context}: {}",
                            response.body
                        );
                    }
                }
            }
        }
        check_views(&app, &users, &model, &context).await;
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 12,
        max_shrink_iters: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_calls_by_three_users_never_reveal_or_change_another_users_patients_or_mappings(
        ops in prop::collection::vec(op(), 1..=25)
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        runtime.block_on(run(ops));
    }
}
