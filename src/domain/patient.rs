//! Patient facts: gender (FHIR AdministrativeGender) and age / date of birth.
//!
//! A patient has either an exact date of birth or an age given at registration; the latter is stored
//! as an estimated birth date (today minus that many years), so the age keeps advancing and age
//! filters and ordering are plain date comparisons in SQL.

use chrono::{Datelike, Months, NaiveDate};

pub const MAX_AGE: i32 = 150;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gender {
    Male,
    Female,
    Other,
    Unknown,
}

impl Gender {
    pub fn as_str(self) -> &'static str {
        match self {
            Gender::Male => "MALE",
            Gender::Female => "FEMALE",
            Gender::Other => "OTHER",
            Gender::Unknown => "UNKNOWN",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "MALE" => Some(Gender::Male),
            "FEMALE" => Some(Gender::Female),
            "OTHER" => Some(Gender::Other),
            "UNKNOWN" => Some(Gender::Unknown),
            _ => None,
        }
    }
}

/// A stored birth date and whether it is exact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BirthDate {
    pub date: NaiveDate,
    pub estimated: bool,
}

impl BirthDate {
    /// Combines an age and/or a date of birth as given by a client. Errors are `(field, reason)`.
    pub fn from_input(
        age: Option<i32>,
        date_of_birth: Option<NaiveDate>,
        today: NaiveDate,
    ) -> Result<Self, (&'static str, String)> {
        if let Some(age) = age
            && !(0..=MAX_AGE).contains(&age)
        {
            return Err(("age", format!("must be between 0 and {MAX_AGE}")));
        }
        match (age, date_of_birth) {
            (_, Some(dob)) => {
                if dob > today {
                    return Err(("dateOfBirth", "must not be in the future".into()));
                }
                let actual = age_on(dob, today);
                if actual > MAX_AGE {
                    return Err(("dateOfBirth", format!("gives an age over {MAX_AGE}")));
                }
                if let Some(age) = age
                    && age != actual
                {
                    return Err((
                        "age",
                        format!("does not match dateOfBirth (which gives {actual})"),
                    ));
                }
                Ok(BirthDate {
                    date: dob,
                    estimated: false,
                })
            }
            (Some(age), None) => Ok(BirthDate {
                date: birth_date_for_age(age, today),
                estimated: true,
            }),
            (None, None) => Err(("age", "is required unless dateOfBirth is given".into())),
        }
    }

    pub fn date_of_birth(self) -> Option<NaiveDate> {
        (!self.estimated).then_some(self.date)
    }
}

/// Completed years between `birth` and `today`.
pub fn age_on(birth: NaiveDate, today: NaiveDate) -> i32 {
    let mut age = today.year() - birth.year();
    if (today.month(), today.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    age
}

/// The latest birth date that gives `age` on `today` (so age_on(result, today) == age).
pub fn birth_date_for_age(age: i32, today: NaiveDate) -> NaiveDate {
    let months = u32::try_from(age.clamp(0, 10_000)).unwrap_or(0) * 12;
    today
        .checked_sub_months(Months::new(months))
        .unwrap_or(NaiveDate::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid date")
    }

    #[test]
    fn age_counts_completed_years() {
        assert_eq!(age_on(d(1991, 4, 30), d(2026, 4, 29)), 34);
        assert_eq!(age_on(d(1991, 4, 30), d(2026, 4, 30)), 35);
        assert_eq!(age_on(d(2024, 2, 29), d(2025, 2, 28)), 0);
        assert_eq!(age_on(d(2024, 2, 29), d(2025, 3, 1)), 1);
    }

    #[test]
    fn an_age_round_trips_through_its_estimated_birth_date() {
        let today = d(2026, 11, 22);
        for age in [0, 1, 35, 150] {
            assert_eq!(age_on(birth_date_for_age(age, today), today), age);
        }
        assert_eq!(
            age_on(birth_date_for_age(3, d(2028, 2, 29)), d(2028, 2, 29)),
            3
        );
    }

    #[test]
    fn input_rules_name_the_bad_field() {
        let today = d(2026, 11, 22);
        assert_eq!(
            BirthDate::from_input(None, None, today)
                .expect_err("should be rejected")
                .0,
            "age"
        );
        assert_eq!(
            BirthDate::from_input(Some(151), None, today)
                .expect_err("should be rejected")
                .0,
            "age"
        );
        assert_eq!(
            BirthDate::from_input(Some(-1), None, today)
                .expect_err("should be rejected")
                .0,
            "age"
        );
        assert_eq!(
            BirthDate::from_input(None, Some(d(2027, 1, 1)), today)
                .expect_err("should be rejected")
                .0,
            "dateOfBirth"
        );
        assert_eq!(
            BirthDate::from_input(None, Some(d(1800, 1, 1)), today)
                .expect_err("should be rejected")
                .0,
            "dateOfBirth"
        );
        assert_eq!(
            BirthDate::from_input(Some(10), Some(d(1991, 4, 30)), today)
                .expect_err("should be rejected")
                .0,
            "age"
        );
        let exact =
            BirthDate::from_input(Some(35), Some(d(1991, 4, 30)), today).expect("consistent");
        assert_eq!(exact.date_of_birth(), Some(d(1991, 4, 30)));
        let estimated = BirthDate::from_input(Some(40), None, today).expect("age only");
        assert_eq!(estimated.date_of_birth(), None);
        assert_eq!(age_on(estimated.date, today), 40);
    }
}
