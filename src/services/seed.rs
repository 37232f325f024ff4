//! Demo data: users with patients, a doctors directory, and assignments. Deterministic per run id, and
//! idempotent: a run id that was seeded before is left as it is.

use std::fmt;

use chrono::{Duration, NaiveDate};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, Set};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    auth::Auth,
    domain::Role,
    entities::{doctor, patient, patient_doctor},
    error::AppResult,
    services::{
        accounts::{self, Registration},
        now, search_text,
    },
};

pub const DEFAULT_PASSWORD: &str = "medgraph demo password";

const FIRST_NAMES: &[&str] = &[
    "Olivia", "Liam", "Emma", "Noah", "Amelia", "Oliver", "Ava", "Elijah", "Sophia", "Mateo",
    "Isabella", "Lucas", "Mia", "Levi", "Aisha", "Kenji", "Priya", "Tomás", "Ingrid", "Kwame",
    "Fatima", "Yusuf", "Chen", "Ana", "Dmitri", "Leila", "Hiroshi", "Zara", "Mateus", "Nora",
];
const LAST_NAMES: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Nguyen",
    "Kim",
    "Patel",
    "Okafor",
    "Müller",
    "Rossi",
    "Kowalski",
    "Haddad",
    "Tanaka",
    "Silva",
    "Andersson",
    "O'Brien",
    "Novak",
    "Mensah",
    "Ivanova",
];
const SPECIALIZATIONS: &[&str] = &[
    "Cardiology",
    "Dermatology",
    "Endocrinology",
    "Family Medicine",
    "Gastroenterology",
    "Neurology",
    "Oncology",
    "Ophthalmology",
    "Orthopedics",
    "Pediatrics",
    "Psychiatry",
    "Pulmonology",
    "Radiology",
    "Rheumatology",
    "Urology",
];
const STREETS: &[&str] = &[
    "Maple Ave",
    "Oak St",
    "Harbor Rd",
    "Station Sq",
    "Mill Lane",
    "Park Blvd",
];
const NOTES: &[&str] = &[
    "Allergic to penicillin.",
    "Follow-up in three months.",
    "Prefers morning appointments.",
    "Hypertension, well controlled.",
    "Type 2 diabetes; HbA1c reviewed quarterly.",
];

pub struct SeedOptions {
    pub run_id: String,
    pub users: u32,
    pub patients_per_user: u32,
    pub first_user_patients: Option<u32>,
    pub doctors: u32,
    pub mappings_per_user: u32,
    pub password: String,
}

#[derive(Default)]
pub struct SeedReport {
    pub already_seeded: bool,
    pub users: Vec<String>,
    pub patients: usize,
    pub doctors: usize,
    pub mappings: usize,
    pub password: String,
}

impl fmt::Display for SeedReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.already_seeded {
            return write!(
                f,
                "this run id was seeded before; nothing changed (users: {})",
                self.users.join(", ")
            );
        }
        writeln!(
            f,
            "seeded {} users, {} patients, {} doctors, {} mappings",
            self.users.len(),
            self.patients,
            self.doctors,
            self.mappings
        )?;
        write!(
            f,
            "users (password {:?}): {}",
            self.password,
            self.users.join(", ")
        )
    }
}

fn slug(run_id: &str) -> String {
    run_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect::<String>()
        .to_lowercase()
}

pub fn user_email(run_id: &str, index: u32) -> String {
    format!("seed-{}-user{}@example.com", slug(run_id), index + 1)
}

pub async fn run(
    db: &DatabaseConnection,
    auth: &Auth,
    options: &SeedOptions,
) -> AppResult<SeedReport> {
    let emails: Vec<String> = (0..options.users)
        .map(|i| user_email(&options.run_id, i))
        .collect();
    if let Some(first) = emails.first()
        && accounts::find_by_email(db, first).await?.is_some()
    {
        return Ok(SeedReport {
            already_seeded: true,
            users: emails,
            ..SeedReport::default()
        });
    }

    let seed: [u8; 32] = Sha256::digest(options.run_id.as_bytes()).into();
    let mut rng = StdRng::from_seed(seed);
    let today = chrono::Utc::now().date_naive();
    let txn = crate::services::begin_write(db).await?;
    let mut report = SeedReport {
        password: options.password.clone(),
        ..SeedReport::default()
    };

    let mut doctor_ids = Vec::new();
    let mut doctors = Vec::new();
    let mut first_creator = None;
    let mut owners = Vec::new();
    for (i, email) in emails.iter().enumerate() {
        let first = *FIRST_NAMES.choose(&mut rng).unwrap_or(&"Alex");
        let last = *LAST_NAMES.choose(&mut rng).unwrap_or(&"Doe");
        let role = if i == 0 { Role::Admin } else { Role::User };
        let registration = Registration {
            name: format!("{first} {last}"),
            email: email.clone(),
            password: options.password.clone(),
        };
        let user = accounts::create_user(&txn, auth, registration, role).await?;
        first_creator.get_or_insert(user.id);
        owners.push(user.id);
        report.users.push(user.email);
    }

    for i in 0..options.doctors {
        let at = now();
        let id = Uuid::now_v7();
        doctor_ids.push(id);
        let first = *FIRST_NAMES.choose(&mut rng).unwrap_or(&"Sam");
        let last = *LAST_NAMES.choose(&mut rng).unwrap_or(&"Lee");
        let specialization = *SPECIALIZATIONS
            .choose(&mut rng)
            .unwrap_or(&"Family Medicine");
        doctors.push(doctor::ActiveModel {
            id: Set(id),
            created_by: Set(first_creator),
            first_name: Set(first.to_owned()),
            last_name: Set(last.to_owned()),
            specialization: Set(specialization.to_owned()),
            search_text: Set(search_text(&[first, last, specialization])),
            email: Set(format!(
                "seed-{}-doctor{}@clinic.example",
                slug(&options.run_id),
                i + 1
            )),
            phone: Set(Some(format!("+1-555-{:04}", rng.random_range(0..10_000)))),
            created_at: Set(at),
            updated_at: Set(at),
        });
    }
    report.doctors = doctors.len();
    for chunk in doctors.chunks(500) {
        doctor::Entity::insert_many(chunk.to_vec())
            .exec(&txn)
            .await?;
    }

    for (index, owner) in owners.iter().enumerate() {
        let count = match (index, options.first_user_patients) {
            (0, Some(n)) => n,
            _ => options.patients_per_user,
        };
        let mut patient_ids = Vec::new();
        let mut patients = Vec::new();
        for _ in 0..count {
            let at = now();
            let id = Uuid::now_v7();
            patient_ids.push(id);
            let age_days = rng.random_range(0..(95 * 365));
            let birth = today - Duration::days(age_days);
            let estimated = rng.random_bool(0.2);
            let first = *FIRST_NAMES.choose(&mut rng).unwrap_or(&"Alex");
            let last = *LAST_NAMES.choose(&mut rng).unwrap_or(&"Doe");
            patients.push(patient::ActiveModel {
                id: Set(id),
                owner_id: Set(*owner),
                first_name: Set(first.to_owned()),
                last_name: Set(last.to_owned()),
                search_text: Set(search_text(&[first, last])),
                birth_date: Set(if estimated {
                    estimated_birth(birth, today)
                } else {
                    birth
                }),
                birth_date_estimated: Set(estimated),
                gender: Set(
                    ["MALE", "FEMALE", "OTHER", "UNKNOWN"][rng.random_range(0..4)].to_owned(),
                ),
                address: Set(Some(format!(
                    "{} {}",
                    rng.random_range(1..400),
                    STREETS.choose(&mut rng).unwrap_or(&"Main St")
                ))),
                phone: Set(Some(format!("+1-555-{:04}", rng.random_range(0..10_000)))),
                notes: Set(rng
                    .random_bool(0.5)
                    .then(|| (*NOTES.choose(&mut rng).unwrap_or(&"")).to_owned())),
                version: Set(1),
                created_at: Set(at),
                updated_at: Set(at),
            });
        }
        report.patients += patients.len();
        for chunk in patients.chunks(500) {
            patient::Entity::insert_many(chunk.to_vec())
                .exec(&txn)
                .await?;
        }

        // Distinct (patient, doctor) pairs, as many as asked for and possible.
        let possible = patient_ids.len() * doctor_ids.len();
        let wanted = usize::try_from(options.mappings_per_user)
            .unwrap_or(usize::MAX)
            .min(possible);
        let mut pairs = std::collections::HashSet::new();
        while pairs.len() < wanted {
            let p = patient_ids[rng.random_range(0..patient_ids.len())];
            let d = doctor_ids[rng.random_range(0..doctor_ids.len())];
            pairs.insert((p, d));
        }
        let mut pairs: Vec<_> = pairs.into_iter().collect();
        pairs.sort();
        let mappings: Vec<patient_doctor::ActiveModel> = pairs
            .into_iter()
            .map(|(p, d)| patient_doctor::ActiveModel {
                id: Set(Uuid::now_v7()),
                patient_id: Set(p),
                doctor_id: Set(d),
                assigned_at: Set(now()),
                assigned_by: Set(Some(*owner)),
            })
            .collect();
        report.mappings += mappings.len();
        for chunk in mappings.chunks(500) {
            patient_doctor::Entity::insert_many(chunk.to_vec())
                .exec(&txn)
                .await?;
        }
    }
    txn.commit().await?;
    // A bulk load leaves PostgreSQL's planner without statistics and its visibility map unset until
    // autovacuum comes by (up to a minute later): plans made for near-empty tables, and counts that
    // visit every row's heap page. PostgreSQL's advice after populating a database is ANALYZE; VACUUM
    // also sets the visibility map.
    if db.get_database_backend() == DbBackend::Postgres {
        db.execute_unprepared("VACUUM (ANALYZE) users, patients, doctors, patient_doctors")
            .await?;
    }
    Ok(report)
}

/// An age-only record stores the latest birth date giving that age (see domain::BirthDate).
fn estimated_birth(birth: NaiveDate, today: NaiveDate) -> NaiveDate {
    crate::domain::birth_date_for_age(crate::domain::age_on(birth, today), today)
}
