//! Domain values that are parsed once at the edge and trusted afterwards ("parse, don't validate").

mod ids;
mod patient;
mod text;

pub use ids::{DoctorId, MappingId, PatientId, UserId};
pub use patient::{BirthDate, Gender, MAX_AGE as PATIENT_MAX_AGE, age_on, birth_date_for_age};
pub use text::{Email, OptionalText, PersonName, RequiredText};

/// What an account may do beyond its own data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "USER",
            Role::Admin => "ADMIN",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "USER" => Some(Role::User),
            "ADMIN" => Some(Role::Admin),
            _ => None,
        }
    }
}
