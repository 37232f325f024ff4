//! Typed ids: a `PatientId` cannot be passed where a `DoctorId` is expected.

use std::fmt;

use uuid::Uuid;

macro_rules! typed_id {
    ($name:ident) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub Uuid);

        impl $name {
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Parses a client-supplied id; the error is the reason to show for that field.
            pub fn parse(s: &str) -> Result<Self, String> {
                Uuid::try_parse(s.trim())
                    .map(Self)
                    .map_err(|_| "is not a valid id".to_owned())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }
    };
}

typed_id!(UserId);
typed_id!(PatientId);
typed_id!(DoctorId);
typed_id!(MappingId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_uuids_and_reject_anything_else() {
        let id = PatientId::new();
        assert_eq!(PatientId::parse(&id.to_string()), Ok(id));
        assert!(PatientId::parse("42").is_err());
        assert!(PatientId::parse("' OR 1=1 --").is_err());
    }
}
